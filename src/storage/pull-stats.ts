/**
 * Pull statistics (PULL_STATS): one R2 object per repository, `_registry/pulls/<name>.json`,
 * `{"manifests": {"<digest>": {"pulls": n, "last": ms}}}`, `last` to the minute.
 *
 * R2 rather than KV: the consumer changes it by read-modify-write, which needs a strongly
 * consistent read and a conditional put (KV has neither: two batches would lose each other's
 * counts), and one object per repository is one write per repository per consumer batch, however
 * many pulls the batch counts. Entries of deleted manifests stay until they are the least
 * recently pulled of more than MAX_PULL_ENTRIES (about 100 bytes each: an object of at most
 * about 1 MB, read and rewritten once a batch, whatever a tenant pushes and pulls).
 */
import type { Env } from '../env'
import type { Repo } from '../names'
import { readJson, updateJson } from './json-object'
import { keys } from './keys'

export interface PullStat {
  pulls: number
  /** Last pull, ms since epoch, to the minute. */
  last: number
}

interface Stored {
  manifests: Record<string, PullStat>
}

const MINUTE = 60_000
/** Manifests a repository's statistics keep: past it, the least recently pulled go. */
export const MAX_PULL_ENTRIES = 10_000

/** A repository's statistics by manifest digest (empty when never pulled). 1 R2 get. */
export async function readPullStats(env: Env, repo: Repo): Promise<Map<string, PullStat>> {
  const stored = await readJson<Stored>(env, keys.pullStats(repo))
  return new Map(Object.entries(stored?.manifests ?? {}))
}

/** Adds counted pulls (per digest: how many, and the latest time). 1 R2 get + 1 R2 put (more on a conflict). */
export async function addPulls(env: Env, repo: Repo, pulls: Map<string, PullStat>): Promise<void> {
  await updateJson<Stored>(env, keys.pullStats(repo), () => ({ manifests: {} }), (stored) => {
    const manifests = stored.manifests && typeof stored.manifests === 'object' ? stored.manifests : {}
    for (const [digest, p] of pulls) {
      const had = manifests[digest]
      const last = Math.floor(p.last / MINUTE) * MINUTE
      manifests[digest] = { pulls: (had?.pulls ?? 0) + p.pulls, last: Math.max(had?.last ?? 0, last) }
    }
    const entries = Object.entries(manifests)
    if (entries.length <= MAX_PULL_ENTRIES) return { manifests }
    // The least recently pulled go first: those of deleted manifests, which nobody pulls any more.
    entries.sort(([, a], [, b]) => b.last - a.last)
    return { manifests: Object.fromEntries(entries.slice(0, MAX_PULL_ENTRIES)) }
  })
}

/** The last pull (ms) per manifest digest of each repository, for retention. 1 R2 get per repository. */
export async function lastPulls(env: Env, repos: string[]): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {}
  await Promise.all(repos.map(async (repo) => {
    const stats = await readPullStats(env, repo as Repo)
    out[repo] = Object.fromEntries([...stats].map(([digest, s]) => [digest, s.last]))
  }))
  return out
}
