/**
 * The garbage collector's reports in R2, one JSON object per run (CONTRACTS 3; the collector on
 * branch `gc` writes them, the web UI's storage chart reads them). Run ids sort by start time.
 */
import type { Env } from '../env'
import { keys } from './keys'

interface Count {
  count: number
  bytes: number
}

/** What one collector run did (or, in a dry run, would have done). */
export interface GcReport {
  id: string
  /** ISO 8601. */
  started: string
  finished: string | null
  dryRun: boolean
  untagged: boolean
  repo: string | null
  repositories: Record<string, { manifests: Count; links: Count; tags: { tag: string; rule: string }[] }>
  /** Counts deleted (or that would be), and bytes freed. */
  totals: { manifests: number; links: number; blobs: number; uploads: number; bytes: number }
  /** Blobs kept, and their bytes. */
  kept: { blobs: number; bytes: number }
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
 * The newest `limit` reports, newest first. R2 lists in ascending key order, so every key is
 * listed: 1 R2 list per 1,000 reports, then 1 R2 get per report returned (in parallel).
 */
export async function listReports(env: Env, limit: number): Promise<GcReport[]> {
  const names: string[] = []
  let cursor: string | undefined
  do {
    const page = await env.BLOBS.list({ prefix: keys.gcReports(), cursor })
    names.push(...page.objects.map((o) => o.key))
    cursor = page.truncated ? page.cursor : undefined
  } while (cursor)
  const newest = names.sort().reverse().slice(0, limit)
  const reports = await Promise.all(newest.map(async (key) => (await env.BLOBS.get(key))?.json<GcReport>()))
  return reports.filter((r): r is GcReport => r !== undefined && r !== null)
}
