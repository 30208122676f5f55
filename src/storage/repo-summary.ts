/**
 * A repository at a glance, for the web UI's repositories page: its tags, newest push and
 * stored bytes, from KV listings alone (tag records and blob links carry what it needs in
 * their metadata). Bounded: at most 2 KV lists, whatever the repository holds.
 */
import type { Env } from '../env'
import type { Repo } from '../names'
import { keys } from './keys'
import type { LinkMeta } from './links'
import type { TagRecord } from './tags'

export interface RepoSummary {
  tags: number
  /** More tags than one listing returns (1,000): `tags` and `lastPush` cover the first 1,000 by name. */
  moreTags: boolean
  /** Newest tag push, ms since epoch (null when no tag records it). */
  lastPush: number | null
  /** Bytes of the blobs the repository links, each once however many manifests name it. */
  bytes: number
  /** More links than one listing returns: `bytes` covers the first 1,000 by digest. */
  moreBytes: boolean
}

/**
 * 1 KV list of the repository's keys (links sort before tags: "blobs/" < "tags/"), + 1 KV
 * list of its tags when the first did not reach them all. Links written before links recorded
 * their size count 0 bytes.
 */
export async function repoSummary(env: Env, repo: Repo): Promise<RepoSummary> {
  const out: RepoSummary = { tags: 0, moreTags: false, lastPush: null, bytes: 0, moreBytes: false }
  const first = await env.LINKS.list<TagRecord | LinkMeta>({ prefix: keys.repoKeys(repo) })       // KV list
  const tagPrefix = keys.tags(repo)
  const count = (name: string, meta: TagRecord | LinkMeta | null | undefined) => {
    if (name.startsWith(tagPrefix)) {
      out.tags++
      const pushed = (meta as TagRecord | undefined)?.pushed
      if (pushed && (out.lastPush === null || pushed > out.lastPush)) out.lastPush = pushed
    } else out.bytes += (meta as LinkMeta | undefined)?.size ?? 0
  }
  for (const k of first.keys) count(k.name, k.metadata)
  if (first.list_complete) return out
  // The listing stopped inside the links or the tags: the tags, again from their first.
  out.moreBytes = !first.keys.some((k) => k.name.startsWith(tagPrefix))
  out.tags = 0
  out.lastPush = null
  const tags = await env.LINKS.list<TagRecord>({ prefix: tagPrefix })                              // KV list
  for (const k of tags.keys) count(k.name, k.metadata)
  out.moreTags = !tags.list_complete
  return out
}
