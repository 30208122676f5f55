/**
 * The real run's writes, one batch per Workflow step. Every function may run again after a
 * crash (a step is retried or replayed): each call is safe to repeat, and a mark this run
 * already moved counts as this run's. Every delete of registry content is here, one function
 * per kind: dropTags, dropManifests, dropReferrers, sweepLinks, sweepBlobs, dropUploads.
 */
import type { Env } from '../env'
import { isObject } from '../manifests/handler'
import type { Digest, Repo, Tag } from '../names'
import { sameWrite } from '../storage/blobs'
import { blobMarkKey, linkMarkKey, moveMark, putMark } from '../storage/gc-marks'
import type { BlobEntry, ManifestEntry, ReferrerEntry, UploadObject } from '../storage/gc-scan'
import { keys } from '../storage/keys'
import { putEndOfCollected } from '../storage/uploads'
import { dropBlobLink, putStoredLink, type LinkMeta, type StoredLink } from '../storage/links'
import type { TagRecord } from '../storage/tags'
import type { Refs } from './plan'
import { BLOB_MEDIA_TYPE, newEvent, type EventTarget, type Origin } from '../events/event'
import { publish } from '../events/publish'

export interface MarkedLink { repo: string; digest: string; etag: string; link: StoredLink; t: number; size?: number }
export interface MarkedBlob extends BlobEntry { mark: string }

/**
 * Items per step for each function below: as many as its storage calls per item allow within
 * CALLS_PER_STEP (a quarter of the 1,000 storage operations a Worker invocation may make, on
 * every plan; small enough that a step's CPU stays within milliseconds). R2 deletes take 1,000 keys a call.
 */
const CALLS_PER_STEP = 250
export const BATCH = {
  readRefs: CALLS_PER_STEP,
  dropTags: CALLS_PER_STEP / 2,
  stampLinks: CALLS_PER_STEP / 2,
  markLinks: Math.floor(CALLS_PER_STEP / 3),
  markBlobs: CALLS_PER_STEP,
  unmarkLinks: Math.floor(CALLS_PER_STEP / 4),
  sweepLinks: Math.floor(CALLS_PER_STEP / 4),
  sweepBlobs: Math.floor(CALLS_PER_STEP / 5),
  dropUploads: CALLS_PER_STEP,
  dropManifests: 1000,
  dropReferrers: 1000,
  dropMarks: 1000,
}

/** The link's metadata as the collector writes it back (its time, and its size when it had one). */
const metaOf = (l: { t: number; size?: number }): LinkMeta => (l.size === undefined ? { t: l.t } : { t: l.t, size: l.size })

/** What each manifest names: 1 R2 get each. */
export async function readRefs(env: Env, manifestKeys: string[]): Promise<Record<string, Refs>> {
  const out: Record<string, Refs> = {}
  await Promise.all(manifestKeys.map(async (key) => {
    const object = await env.BLOBS.get(key)
    if (!object) return
    try {
      out[key] = refsOf(JSON.parse(await object.text()))
    } catch {
      out[key] = { blobs: [], children: [] }
    }
  }))
  return out
}

/** Blobs (config, layers, an artifact's blobs, schema 1 fsLayers) and child manifests a manifest names. */
export function refsOf(doc: unknown): Refs {
  const digests = (list: unknown, field = 'digest') =>
    Array.isArray(list) ? list.filter(isObject).map((d) => d[field]).filter((d): d is string => typeof d === 'string') : []
  if (!isObject(doc)) return { blobs: [], children: [] }
  const blobs = [...digests([doc.config]), ...digests(doc.layers), ...digests(doc.blobs), ...digests(doc.fsLayers, 'blobSum')]
  return { blobs: [...new Set(blobs)], children: digests(doc.manifests) }
}

/** The collector's deletes are `delete` events by actor `gc` (no request, no URL). */
const GC: Origin = { actor: 'gc', request: null, origin: null }

/**
 * Enqueues the events of deletes done (the step fails, and is retried, if the queue refuses:
 * a replayed step reports again what it finds done, so an event is never lost, at worst repeated).
 * No Queue call when no endpoint wants them.
 */
async function reportDeletes(env: Env, targets: EventTarget[]): Promise<void> {
  if (targets.length) await publish(env, targets.map((t) => newEvent(GC, 'delete', t)))
}

/**
 * Retention: deletes each tag unless it was set again since the scan. 1 KV get + 1 KV delete each.
 * A tag found already gone is reported too (a replayed step deleted it before its report).
 */
export async function dropTags(env: Env, tags: { repo: string; tag: string; pushed?: number }[]): Promise<void> {
  const dropped = await Promise.all(tags.map(async ({ repo, tag, pushed }): Promise<EventTarget | null> => {
    const key = keys.tag(repo as Repo, tag as Tag)
    const { metadata } = await env.LINKS.getWithMetadata<TagRecord>(key)
    if (metadata && metadata.pushed !== pushed) return null
    if (metadata) await env.LINKS.delete(key)
    return { repository: repo, tag, ...(metadata ? { digest: metadata.digest, mediaType: metadata.mediaType } : {}) }
  }))
  await reportDeletes(env, dropped.filter((t): t is EventTarget => t !== null))
}

/** Links older than their timestamp: stamped now, collectable a grace period later. 1 KV get + 1 KV put each. */
export async function stampLinks(env: Env, links: { repo: string; digest: string }[]): Promise<void> {
  await Promise.all(links.map(async ({ repo, digest }) => {
    const { value, metadata } = await env.LINKS.getWithMetadata<StoredLink, LinkMeta>(keys.blobLink(repo as Repo, digest as Digest), "json")
    if (value && !metadata?.t) await putStoredLink(env, repo as Repo, digest as Digest, value, { t: Date.now(), size: value.size })
  }))
}

/** Marks each link (R2 mark + the link rewritten naming it). 1 KV get + 1 R2 put + 1 KV put each. */
export async function markLinks(env: Env, run: string, links: { repo: string; digest: string }[]): Promise<MarkedLink[]> {
  const out = await Promise.all(links.map(async ({ repo, digest }): Promise<MarkedLink | null> => {
    const { value, metadata } = await env.LINKS.getWithMetadata<StoredLink, LinkMeta>(keys.blobLink(repo as Repo, digest as Digest), "json")
    const link = value
    if (!link) return null
    const etag = await putMark(env, linkMarkKey(repo as Repo, digest as Digest), run)
    const marked: MarkedLink = { repo, digest, etag, link: { at: link.at, size: link.size }, t: metadata?.t ?? Date.now() }
    if (metadata?.size !== undefined) marked.size = metadata.size
    await putStoredLink(env, repo as Repo, digest as Digest, { ...marked.link, gc: etag }, metaOf(marked))
    return marked
  }))
  return out.filter((l): l is MarkedLink => l !== null)
}

/** Marks each blob. 1 R2 put each. */
export async function markBlobs(env: Env, run: string, blobs: BlobEntry[]): Promise<MarkedBlob[]> {
  return Promise.all(blobs.map(async (b) => ({ ...b, mark: await putMark(env, blobMarkKey(b.digest as Digest), run) })))
}

/**
 * Rescued links lose their mark, unless a push re-wrote them since (then they carry none).
 * 1 R2 put + 1 KV get (+1 KV put) each.
 */
export async function unmarkLinks(env: Env, links: MarkedLink[]): Promise<void> {
  await Promise.all(links.map(async (l) => {
    const repo = l.repo as Repo
    const digest = l.digest as Digest
    await moveMark(env, linkMarkKey(repo, digest), l.etag, 'kept')
    const current = await env.LINKS.get<StoredLink>(keys.blobLink(repo, digest), 'json')
    if (current?.gc === l.etag) await putStoredLink(env, repo, digest, l.link, metaOf(l))
  }))
}

/** Whether this run moved the mark to "swept" (now, or before a crash). 1 R2 put (+1 R2 head when it lost). */
async function sweepMark(env: Env, key: string, etag: string, run: string): Promise<boolean> {
  if (await moveMark(env, key, etag, 'swept', run)) return true
  const mark = await env.BLOBS.head(key)
  return mark?.customMetadata?.state === 'swept' && mark.customMetadata.run === run
}

/**
 * Deletes each link, then claims its mark; a push that claimed it first ("kept") gets the link
 * back (docs/garbage-collection.md: the protocol). Returns the links kept, as `repo+digest`.
 * 1 KV delete + 1 R2 put each (+1 R2 head and 1 KV put for a kept one).
 */
export async function sweepLinks(env: Env, run: string, links: MarkedLink[]): Promise<string[]> {
  const kept = await Promise.all(links.map(async (l) => {
    const repo = l.repo as Repo
    const digest = l.digest as Digest
    await dropBlobLink(env, repo, digest)
    if (await sweepMark(env, linkMarkKey(repo, digest), l.etag, run)) return null
    await putStoredLink(env, repo, digest, l.link, metaOf(l))
    return `${l.repo}+${l.digest}`
  }))
  // Swept (now, or by this run before a replay): each a blob deleted from its repository.
  await reportDeletes(env, links.filter((_, i) => kept[i] === null).map((l) => (
    { repository: l.repo, digest: l.digest, mediaType: BLOB_MEDIA_TYPE, size: l.link.size, length: l.link.size })))
  return kept.filter((k): k is string => k !== null)
}

/**
 * Claims each blob's mark, then replaces its index entry by a tombstone (conditional on the
 * entry the scan saw: a blob re-uploaded since stays), then deletes the bytes it pointed at.
 * The index goes first: never an index entry without its bytes. Bytes that were an upload
 * session's (its first write, or its parts) get that session's end mark first: its close
 * replayed must find it over, not index them again.
 * Returns the digests swept. 1 R2 put (mark) + 1 R2 put (tombstone) each (+1 R2 put: the end
 * mark), deletes free; +1 R2 head when a put lost.
 */
export async function sweepBlobs(env: Env, run: string, blobs: MarkedBlob[]): Promise<string[]> {
  const swept = await Promise.all(blobs.map(async (b) => {
    if (!(await sweepMark(env, blobMarkKey(b.digest as Digest), b.mark, run))) return null
    // `was`: where the bytes were, so that no replayed close names them again (storage/blobs.ts claimIndex).
    const tomb = await env.BLOBS.put(b.key, null, { customMetadata: { gone: run, was: b.at }, onlyIf: sameWrite(b.etag, b.uploaded) })
    if (!tomb) {
      const current = await env.BLOBS.head(b.key)
      if (current?.customMetadata?.gone !== run) return null
    }
    if (b.at !== b.key) {
      await putEndOfCollected(env, b.at, b.size, run)
      await env.BLOBS.delete(b.at)
    }
    return b.digest
  }))
  return swept.filter((d): d is string => d !== null)
}

/** Abandoned upload objects and markers: deleted (free), their multipart uploads aborted (free). */
export async function dropUploads(env: Env, uploads: UploadObject[]): Promise<void> {
  await env.BLOBS.delete(uploads.map((u) => u.key))
  await Promise.all(uploads.filter((u) => u.mp).map((u) =>
    env.BLOBS.resumeMultipartUpload(keys.uploadParts(u.id), u.mp!).abort().catch(() => {})))
}

/**
 * Manifests no tag reaches (indexes before their children), reported with the tags retention
 * dropped from them. Free (R2 deletes, up to 1,000 keys per call), + Queue writes when an endpoint wants deletes.
 */
export async function dropManifests(env: Env, manifests: (ManifestEntry & { tags?: string[] })[]): Promise<void> {
  if (manifests.length) await env.BLOBS.delete(manifests.map((m) => m.key))
  await reportDeletes(env, manifests.map((m) => ({ repository: m.repo, digest: m.digest, size: m.size, length: m.size, ...(m.tags ? { tags: m.tags } : {}) })))
}

/** Referrer entries of deleted manifests (or naming none). Free (1 R2 delete per 1,000). */
export async function dropReferrers(env: Env, referrers: ReferrerEntry[]): Promise<void> {
  if (referrers.length) await env.BLOBS.delete(referrers.map((r) => r.key))
}

/** Marks of earlier runs (not registry content). Free (1 R2 delete per 1,000). */
export async function dropMarks(env: Env, markKeys: string[]): Promise<void> {
  if (markKeys.length) await env.BLOBS.delete(markKeys)
}

