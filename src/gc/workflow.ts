/**
 * The collector as a Cloudflare Workflow: every step of collector.ts is a `step.do` (its result
 * stored, retried on failure, replayed when the instance resumes), the settle time a `step.sleep`.
 * Started by the admin endpoint (routes/admin.ts) and the Cron Trigger (index.ts).
 */
import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from 'cloudflare:workers'
import type { Env } from '../env'
import { logEvent } from '../log'
import type { GcReport } from '../storage/gc-reports'
import { collect, type Runner } from './collector'
import type { RunParams } from './params'

const RETRIES = { retries: { limit: 5, delay: '5 seconds', backoff: 'exponential' }, timeout: '5 minutes' } as const

export class GcWorkflow extends WorkflowEntrypoint<Env, RunParams> {
  override async run(event: Readonly<WorkflowEvent<RunParams>>, step: WorkflowStep): Promise<GcReport> {
    const runner: Runner = {
      // Workflows store a step's result; `undefined` is stored as null.
      do: (name, fn) => step.do(name, RETRIES, async () => ((await fn()) ?? null) as never),
      sleep: async (name, ms) => {
        if (ms > 0) await step.sleep(name, ms)
      },
    }
    const report = await collect(this.env, event.instanceId, event.payload, runner)
    logEvent('log', { event: 'gc.finished', run: report.id, dryRun: report.dryRun, deleted: { ...report.totals }, kept: report.kept })
    return report
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
