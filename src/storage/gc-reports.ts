/** Garbage collection reports in R2 (CONTRACTS.md 3): `_registry/gc/<run-id>.json`. */
import type { Env } from '../env'
import { keys } from './keys'

export interface Counted {
  count: number
  bytes: number
}

export interface RepoReport {
  manifests: Counted
  links: Counted
  /** Tags dropped by retention, each with the rule that dropped it. */
  tags: { tag: string; rule: string }[]
  /** Tags retention would drop but a pull clause kept (`pulledWithinDays`, `keepLastPulled`), with it. */
  retained?: { tag: string; rule: string }[]
}

export interface GcReport {
  id: string
  started: string
  finished: string | null
  dryRun: boolean
  untagged: boolean
  repo: string | null
  repositories: Record<string, RepoReport>
  /** Counts deleted (or that a dry run would delete); bytes freed. */
  totals: { manifests: number; links: number; blobs: number; uploads: number; bytes: number }
  /** Bytes of blobs and uploads freed, apart (totals.bytes = manifests + blobs + uploads). */
  freed: { manifests: number; blobs: number; uploads: number }
  /** Registry blobs left, and their bytes. */
  kept: { blobs: number; bytes: number }
  /** Repositories left for a later run because GC_MAX_KV_WRITES was spent (reports before this field lack it). */
  deferred?: number
  /**
   * Repositories with something deleted that `repositories` does not name (a shard names at most
   * ~200 KB of them, those freeing the most first; `totals` count everything). Absent when none.
   */
  repositoriesOmitted?: number
}

/** 1 R2 put. */
export async function putReport(env: Env, report: GcReport): Promise<void> {
  await env.BLOBS.put(keys.gcReport(report.id), JSON.stringify(report), { httpMetadata: { contentType: 'application/json' } })
}

/** 1 R2 get. */
export async function getReport(env: Env, id: string): Promise<GcReport | null> {
  const object = await env.BLOBS.get(keys.gcReport(id))
  return object ? ((await object.json()) as GcReport) : null
}

/**
 * The newest `limit` reports. Run ids start with the run's start time, so key order is time
 * order: 1 R2 list per 1,000 reports + 1 R2 get per report returned.
 */
export async function listReports(env: Env, limit: number): Promise<GcReport[]> {
  const names: string[] = []
  let cursor: string | undefined
  do {
    const page = await env.BLOBS.list({ prefix: keys.gcReports(), cursor })
    for (const o of page.objects) names.push(o.key.slice(keys.gcReports().length, -'.json'.length))
    cursor = page.truncated ? page.cursor : undefined
  } while (cursor)
  const newest = names.sort().reverse().slice(0, limit)
  return (await Promise.all(newest.map((id) => getReport(env, id)))).filter((r): r is GcReport => r !== null)
}
