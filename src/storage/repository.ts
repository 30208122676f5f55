/**
 * A repository's visible changes to manifests and tags, each in the order that never shows a
 * half-written state:
 *   - a manifest (and the pins of what an immutable tag reaches) is stored before any tag or
 *     referrers entry names it; everything those writes need (the tag record's metadata, the
 *     referrers entry) is built and checked by the caller before the first write;
 *   - a manifest's tags are deleted before the manifest, so no tag ever names a deleted one
 *     (the caller bounds how many: past that, the untag Workflow does it, src/gc/untag.ts).
 * The routes and the pull-through cache make them through the events layer (src/events/layer.ts),
 * which reports each one once it is stored. Blob links are in links.ts.
 */
import type { Env } from '../env'
import type { Digest, Repo, Tag } from '../names'
import { deleteManifest, putManifest, type StoredManifest } from './manifests'
import { putPins } from './pins'
import { deleteReferrer, putReferrer, type ReferrerEntry } from './referrers'
import { deleteTag, readTag, writeTag, type TagRecord } from './tags'

export interface ManifestPush {
  repo: Repo
  digest: Digest
  bytes: Uint8Array
  mediaType: string
  /** The tags it sets (none: pushed by digest). */
  tags: Tag[]
  /** The tag records' metadata (tags.ts `tagMetadata`, checked against KV's limit). */
  record: TagRecord
  /** The manifest's `subject`, if it has one. */
  subject: Digest | null
  /** Its referrers entry (with a subject), unless its referrers are listed elsewhere (a proxied repository's upstream). */
  referrer: ReferrerEntry | null
  /** What an immutable tag it sets reaches, pinned with it (src/gc/immutable.ts), or null. */
  pins?: { reach: Digest[]; tag: Tag } | null
}

/** 1 R2 put (+1 R2 put per pin), then 1 KV put per tag (+1 R2 put: the referrers entry), those at once. */
export async function pushManifest(env: Env, m: ManifestPush): Promise<void> {
  await Promise.all([
    putManifest(env, m.repo, m.digest, m.bytes, m.mediaType, m.subject),                                  // R2 put
    m.pins && putPins(env, m.repo, m.pins.reach, { root: m.digest, tag: m.pins.tag }),                       // R2 put per pin
  ])
  await Promise.all([
    ...m.tags.map((tag) => writeTag(env, m.repo, tag, m.record, m.bytes)),                                 // KV put each
    m.subject && m.referrer && putReferrer(env, m.repo, m.subject, m.referrer),                            // R2 put
  ])
}

/** A tag moved or set to an already stored manifest. 1 KV put. */
export async function setTag(env: Env, repo: Repo, tag: Tag, record: TagRecord, bytes: Uint8Array): Promise<void> {
  await writeTag(env, repo, tag, record, bytes)
}

/** The tag's record, once deleted; null when there was none. 1 KV get (+1 R2 get past TAG_MANIFEST_MAX) + 1 KV delete. */
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
 * Deletes the tags naming a manifest (`tags`, all of them: the caller read them), then the
 * manifest (`stored`, as the caller found it) and its referrers entry. 1 KV delete per tag, then
 * free R2 deletes.
 */
export async function removeManifest(env: Env, repo: Repo, digest: Digest, stored: StoredManifest, tags: Tag[]): Promise<RemovedManifest> {
  await Promise.all(tags.map((tag) => deleteTag(env, repo, tag)))                                        // KV delete each
  await Promise.all([
    deleteManifest(env, repo, digest),
    stored.subject ? deleteReferrer(env, repo, stored.subject, digest) : Promise.resolve(),
  ])
  return { mediaType: stored.mediaType, size: stored.size, tags }
}
