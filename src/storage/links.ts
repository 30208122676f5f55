/**
 * A repository's right to a blob: a KV link, read through a short-lived copy in
 * the location's Cache API. The copy also gives read-your-writes at the writing
 * location, where KV may still serve a cached miss for up to a minute.
 */
import type { Env } from '../env'
import type { Digest, Repo } from '../names'
import { headBlob, type BlobLocation } from './blobs'
import { keepMarked, linkMarkKey } from './gc-marks'
import { keys } from './keys'

/** A link as KV stores it: "gc" is the etag of a collection's mark on it (gc-marks.ts). */
export interface StoredLink extends BlobLocation {
  gc?: string
}

/** A link's KV metadata: when it was written (ms), for the collector's grace period. */
export interface LinkMeta {
  t: number
  /** The blob's size (links written before this field lack it): the collector reports freed bytes from the listing alone. */
  size?: number
}

/** Per request: where cache copies live and how long they last. */
export interface LinkContext {
  origin: string
  ttl: number
  waitUntil(p: Promise<unknown>): void
}

/** The location's copy of a link deleted here: KV may still serve the old value for a while. */
const DELETED = { deleted: true } as const
type Deleted = typeof DELETED
const isDeleted = (v: BlobLocation | Deleted | null): v is Deleted => v !== null && 'deleted' in v

/** Cache match, then on a miss 1 KV get. */
export async function readBlobLink(env: Env, c: LinkContext, repo: Repo, digest: Digest): Promise<BlobLocation | null> {
  const link = await lookup(env, c, repo, digest)
  return isDeleted(link) ? null : link
}

async function lookup(env: Env, c: LinkContext, repo: Repo, digest: Digest): Promise<BlobLocation | Deleted | null> {
  const cacheKey = keys.cachedLink(c.origin, repo, digest)
  const cached = await caches.default.match(cacheKey)
  let link: StoredLink | Deleted | null
  if (cached) link = (await cached.json()) as StoredLink | Deleted
  else {
    link = await env.LINKS.get<StoredLink>(keys.blobLink(repo, digest), 'json')
    if (link) c.waitUntil(cacheLink(c, cacheKey, link))
  }
  // A collection marked this link: using it keeps it, unless the run swept it first (+1 R2 put, rare);
  // then it is deleted, not merely unseen (no fallback to the index may revive it).
  if (link && !isDeleted(link) && link.gc && !(await keepMarked(env, linkMarkKey(repo, digest), link.gc))) return DELETED
  return link
}

/**
 * KV may not yet show, at another location, a link written in the last minute or so.
 * Where a miss would fail a push, R2's index (strongly consistent) is asked: it knows
 * the blob's first repository, and is trusted for that only within this window, so
 * that a link deleted since (KV) is not revived by the index.
 */
export const KV_PROPAGATION_MS = 5 * 60 * 1000

/** `readBlobLink`, then on a miss 1 R2 head (see KV_PROPAGATION_MS). */
export async function readBlobLinkConfirmed(env: Env, c: LinkContext, repo: Repo, digest: Digest): Promise<BlobLocation | null> {
  const link = await lookup(env, c, repo, digest)                          // cache, else KV get
  if (link) return isDeleted(link) ? null : link
  const indexed = await headBlob(env, digest)                              // R2 head
  const recent = indexed && Date.now() - indexed.indexed < KV_PROPAGATION_MS
  return recent && indexed.repo === repo ? indexed : null
}

/** 1 KV put (+ the cache copy, free). */
export async function writeBlobLink(env: Env, c: LinkContext, repo: Repo, digest: Digest, link: BlobLocation): Promise<void> {
  const value: BlobLocation = { at: link.at, size: link.size }
  const metadata: LinkMeta = { t: Date.now(), size: link.size }
  await Promise.all([
    env.LINKS.put(keys.blobLink(repo, digest), JSON.stringify(value), { metadata }),
    cacheLink(c, keys.cachedLink(c.origin, repo, digest), value),
  ])
}

/** 1 KV get + 1 KV delete; false when there was no link. */
export async function deleteBlobLink(env: Env, c: LinkContext, repo: Repo, digest: Digest): Promise<boolean> {
  const key = keys.blobLink(repo, digest)
  const cacheKey = keys.cachedLink(c.origin, repo, digest)
  const [existing, cached] = await Promise.all([env.LINKS.get(key), caches.default.match(cacheKey)])
  const copy = cached ? ((await cached.json()) as BlobLocation | Deleted) : null
  if (isDeleted(copy)) return false
  // Where the link was just written KV may still serve a cached miss; the location's copy proves it.
  if (existing === null && !copy) return false
  await Promise.all([
    env.LINKS.delete(key),
    // Until KV forgets the link everywhere, this location answers from the mark (free).
    putCached(cacheKey, DELETED, KV_PROPAGATION_MS / 1000),
  ])
  return true
}

function cacheLink(c: LinkContext, cacheKey: string, link: BlobLocation): Promise<unknown> {
  return c.ttl > 0 ? putCached(cacheKey, link, c.ttl) : caches.default.delete(cacheKey)
}

function putCached(cacheKey: string, value: unknown, seconds: number): Promise<void> {
  const headers = { 'Content-Type': 'application/json', 'Cache-Control': `max-age=${seconds}` }
  return caches.default.put(cacheKey, new Response(JSON.stringify(value), { headers }))
}

/** The collector writes a link as it was, with (mark) or without (restore) its mark. 1 KV put. */
export async function putStoredLink(env: Env, repo: Repo, digest: Digest, link: StoredLink, meta: LinkMeta): Promise<void> {
  const value: StoredLink = { at: link.at, size: link.size }
  if (link.gc) value.gc = link.gc
  await env.LINKS.put(keys.blobLink(repo, digest), JSON.stringify(value), { metadata: meta })
}

/** The collector's delete of a link (no cache copy to mark: it runs outside any location's traffic). Free-ish: 1 KV delete. */
export async function dropBlobLink(env: Env, repo: Repo, digest: Digest): Promise<void> {
  await env.LINKS.delete(keys.blobLink(repo, digest))
}
