/**
 * A real collection's per-shard plans between its mark and its sweep (`_registry/gc-runs/<run>/`):
 * what a shard marked is kept in R2, not in Workflow step state, so an instance's state stays
 * small whatever the registry's size. A dry run writes none. Deleted when the run ends.
 */
import type { Env } from '../env'
import { keys } from './keys'

/** 1 R2 put. */
export async function putShardPlan(env: Env, run: string, shard: string, plan: unknown): Promise<void> {
  await env.BLOBS.put(keys.gcRunShard(run, shard), JSON.stringify(plan), { httpMetadata: { contentType: 'application/json' } })
}

/** 1 R2 get. Throws when absent: a sweep never runs without its mark's plan. */
export async function getShardPlan<T>(env: Env, run: string, shard: string): Promise<T> {
  const object = await env.BLOBS.get(keys.gcRunShard(run, shard))
  if (!object) throw new Error(`collection ${run}: the plan of shard ${shard} is missing`)
  return (await object.json()) as T
}

/** A run that has not ended this long after it started has failed (a shard waits at most 7 days): its plans go. */
const ABANDONED_MS = 30 * 86_400_000

/**
 * Deletes the run's plans, and those of runs that started over 30 days ago (a failed run leaves
 * its own). 1 R2 list per 1,000 runs + 1 R2 list per 1,000 plans dropped + deletes (free).
 */
export async function dropShardPlans(env: Env, run: string, now = Date.now()): Promise<void> {
  const root = keys.gcRuns()
  const runs: string[] = []
  let cursor: string | undefined
  do {
    const page = await env.BLOBS.list({ prefix: root, delimiter: '/', cursor })
    for (const p of page.delimitedPrefixes) {
      const id = p.slice(root.length, -1)
      const started = startOf(id)
      if (id === run || (started !== null && now - started > ABANDONED_MS)) runs.push(id)
    }
    cursor = page.truncated ? page.cursor : undefined
  } while (cursor)
  for (const id of runs) {
    do {
      const page = await env.BLOBS.list({ prefix: keys.gcRun(id), cursor })
      if (page.objects.length) await env.BLOBS.delete(page.objects.map((o) => o.key))
      cursor = page.truncated ? page.cursor : undefined
    } while (cursor)
  }
}

/** When a run started, from its id (gc-YYYYMMDDTHHMMSSZ-…, workflow.ts newRunId); null for other ids. */
function startOf(id: string): number | null {
  const m = /^gc-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(id)
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : null
}
