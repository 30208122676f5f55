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

/** Deletes the run's plans: 1 R2 list per 1,000 + deletes (free). */
export async function dropShardPlans(env: Env, run: string): Promise<void> {
  let cursor: string | undefined
  do {
    const page = await env.BLOBS.list({ prefix: keys.gcRun(run), cursor })
    if (page.objects.length) await env.BLOBS.delete(page.objects.map((o) => o.key))
    cursor = page.truncated ? page.cursor : undefined
  } while (cursor)
}
