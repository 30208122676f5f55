/**
 * A repository's visible changes to manifests and tags, each in the order that never shows a
 * half-written state: a manifest is stored before any tag names it; a manifest is deleted before
 * the tags that named it (a tag naming nothing answers MANIFEST_UNKNOWN, as a deleted one does).
 * The routes and the pull-through cache make them through the events layer (src/events/layer.ts),
 * which reports each one once it is stored. Blob links are in links.ts.
 */
import type { Env } from '../env'
import type { Descriptor } from '../manifests/handler'
import type { Digest, Repo, Tag } from '../names'
import { deleteManifest, headManifest, putManifest } from './manifests'
import { deleteReferrer, putReferrer } from './referrers'
import { allTags, deleteTag, readTag, writeTag, type TagRecord } from './tags'

export interface ManifestPush {
  repo: Repo
  digest: Digest
  bytes: Uint8Array
  mediaType: string
  /** The tags it sets (none: pushed by digest). */
  tags: Tag[]
  /** The manifest's `subject`, if it has one. */
  subject: Digest | null
  /** Its referrers entry (with a subject), unless its referrers are listed elsewhere (a proxied repository's upstream). */
  referrer: Descriptor | null
  /** For the tag records (tags.ts TagRecord). */
  size?: number
  platforms?: string
}

/** 1 R2 put, then 1 KV put per tag (+1 R2 put: the referrers entry), those at once. */
export async function pushManifest(env: Env, m: ManifestPush): Promise<void> {
  await putManifest(env, m.repo, m.digest, m.bytes, m.mediaType, m.subject)                            // R2 put
  const record: TagRecord = { digest: m.digest, mediaType: m.mediaType, size: m.size, platforms: m.platforms }
  await Promise.all([
    ...m.tags.map((tag) => writeTag(env, m.repo, tag, record, m.bytes)),                                 // KV put each
    m.subject && m.referrer && putReferrer(env, m.repo, m.subject, m.referrer),                            // R2 put
  ])
}

/** A tag moved or set to an already stored manifest. 1 KV put. */
export async function setTag(env: Env, repo: Repo, tag: Tag, record: TagRecord, bytes: Uint8Array): Promise<void> {
  await writeTag(env, repo, tag, record, bytes)
}

/** The tag's record, once deleted; null when there was none. 1 KV get + 1 KV delete. */
export async function removeTag(env: Env, repo: Repo, tag: Tag): Promise<TagRecord | null> {
  const record = await readTag(env, repo, tag)                                                          // KV get
  if (!record) return null
  await deleteTag(env, repo, tag)                                                                       // KV delete
  const { bytes: _, ...metadata } = record
  return metadata
}

export interface RemovedManifest {
  mediaType: string
  size: number
  /** The tags that named it, deleted with it. */
  tags: Tag[]
}

/**
 * Deletes a manifest, its referrers entry and the tags naming it; null when absent. 1 R2 head,
 * free R2 deletes, 1 KV list per 1,000 tags + 1 KV delete per tag naming it.
 */
export async function removeManifest(env: Env, repo: Repo, digest: Digest): Promise<RemovedManifest | null> {
  const stored = await headManifest(env, repo, digest)                                                  // R2 head
  if (!stored) return null
  await deleteManifest(env, repo, digest)
  const work: Promise<void>[] = []
  const tags: Tag[] = []
  if (stored.subject) work.push(deleteReferrer(env, repo, stored.subject, digest))
  for await (const t of allTags(env, repo)) {                                                           // KV list per 1,000
    if (t.digest !== digest) continue
    tags.push(t.tag)
    work.push(deleteTag(env, repo, t.tag))                                                              // KV delete each
  }
  await Promise.all(work)
  return { mediaType: stored.mediaType, size: stored.size, tags }
}
