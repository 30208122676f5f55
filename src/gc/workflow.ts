/**
 * The collector as Cloudflare Workflows: a run is a parent instance that starts one child
 * instance per shard (collector.ts), each within Workflows' limits per instance (steps, state,
 * a step's storage calls and CPU). Every step of collector.ts is a `step.do` (its result
 * stored, retried on failure, replayed when the instance resumes), the settle time a
 * `step.sleep`; a child hands its result to the parent as an event (`step.waitForEvent`).
 * Started by the admin endpoint (routes/admin.ts) and the Cron Trigger (index.ts).
 */
import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from 'cloudflare:workers'
import type { Env } from '../env'
import { logEvent } from '../log'
import type { GcReport } from '../storage/gc-reports'
import { collect, runShard, type Fleet, type Runner, type ShardTask } from './collector'
import type { GcPayload, RunParams } from './params'

const RETRIES = { retries: { limit: 5, delay: '5 seconds', backoff: 'exponential' }, timeout: '5 minutes' } as const
/** How long a parent waits for one shard (a shard's steps are bounded; this only ends a run whose shard died). */
const SHARD_TIMEOUT = '7 days'

export class GcWorkflow extends WorkflowEntrypoint<Env, GcPayload> {
  override async run(event: Readonly<WorkflowEvent<GcPayload>>, step: WorkflowStep): Promise<GcReport | unknown> {
    const runner: Runner = {
      // Workflows store a step's result; `undefined` is stored as null.
      do: (name, fn) => step.do(name, RETRIES, async () => ((await fn()) ?? null) as never),
      sleep: async (name, ms) => {
        if (ms > 0) await step.sleep(name, ms)
      },
    }
    const payload = event.payload
    if ('shard' in payload) return this.shard(payload.shard, runner, step)
    const report = await collect(this.env, event.instanceId, payload, runner, workflowFleet(this.env, event.instanceId, step))
    logEvent('log', { event: 'gc.finished', run: report.id, dryRun: report.dryRun, deleted: { ...report.totals }, kept: report.kept })
    return report
  }

  /** A child: its shard, then its result (or its failure) sent to the parent. */
  private async shard(task: ShardTask & { name?: string }, runner: Runner, step: WorkflowStep): Promise<unknown> {
    const name = task.name!
    const tell = (payload: unknown) =>
      step.do('tell the parent', RETRIES, async () => {
        const parent = await this.env.GC_WORKFLOW!.get(task.run)
        await parent.sendEvent({ type: name, payload })
        return null
      })
    try {
      const result = await runShard(this.env, task, runner)
      await tell({ result })
      return result
    } catch (err) {
      await tell({ error: err instanceof Error ? err.message : String(err) })
      throw err
    }
  }
}

/** Shards as child instances `<run>-<shard>`; their results arrive as events named for the shard. */
function workflowFleet(env: Env, run: string, step: WorkflowStep): Fleet {
  return {
    async start(name, task) {
      await step.do(`start ${name}`, RETRIES, async () => {
        const id = `${run}-${name}`
        try {
          await env.GC_WORKFLOW!.create({ id, params: { shard: { ...task, name } as ShardTask } })
        } catch (err) {
          // A retried step whose create went through: the instance exists, which is what we want.
          const existing = await env.GC_WORKFLOW!.get(id).then((i) => i.status()).catch(() => null)
          if (!existing) throw err
        }
        return null
      })
    },
    async result<T>(name: string): Promise<T> {
      const event = await step.waitForEvent<Record<string, string>>(`await ${name}`, { type: name, timeout: SHARD_TIMEOUT })
      const payload = event.payload as unknown as { result?: T; error?: string }
      if (payload.error !== undefined) throw new Error(`shard ${name} failed: ${payload.error}`)
      return payload.result as T
    },
  }
}

/** A run id that sorts by start time (reports are listed newest first by key). */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  const random = [...crypto.getRandomValues(new Uint8Array(4))].map((b) => b.toString(16).padStart(2, '0')).join('')
  return `gc-${stamp}-${random}`
}

/** Starts a run: its id. */
export async function startRun(env: Env, params: RunParams): Promise<string> {
  if (!env.GC_WORKFLOW) throw new Error('GC_WORKFLOW binding missing (wrangler.toml [[workflows]])')
  const id = newRunId()
  await env.GC_WORKFLOW.create({ id, params })
  return id
}
