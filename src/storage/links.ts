/**
 * A repository's right to a blob: a KV link, read through a short-lived copy in
 * the location's Cache API. The copy also gives read-your-writes at the writing
 * location, where KV may still serve a cached miss for up to a minute.
 */
import type { Env } from '../env'
import type { Digest, Repo } from '../names'
import type { BlobLocation } from './blobs'
import { keys } from './keys'

/** Per request: where cache copies live and how long they last. */
export interface LinkContext {
  origin: string
  ttl: number
  waitUntil(p: Promise<unknown>): void
}

/** Cache match, then on a miss 1 KV get. */
export async function readBlobLink(env: Env, c: LinkContext, repo: Repo, digest: Digest): Promise<BlobLocation | null> {
  const cacheKey = keys.cachedLink(c.origin, repo, digest)
  const cached = await caches.default.match(cacheKey)
  if (cached) return (await cached.json()) as BlobLocation
  const link = await env.LINKS.get<BlobLocation>(keys.blobLink(repo, digest), 'json')
  if (link) c.waitUntil(cacheLink(c, cacheKey, link))
  return link
}

/** 1 KV put (+ the cache copy, free). */
export async function writeBlobLink(env: Env, c: LinkContext, repo: Repo, digest: Digest, link: BlobLocation): Promise<void> {
  const value: BlobLocation = { at: link.at, size: link.size }
  await Promise.all([
    env.LINKS.put(keys.blobLink(repo, digest), JSON.stringify(value)),
    cacheLink(c, keys.cachedLink(c.origin, repo, digest), value),
  ])
}

/** 1 KV get + 1 KV delete; false when there was no link. */
export async function deleteBlobLink(env: Env, c: LinkContext, repo: Repo, digest: Digest): Promise<boolean> {
  const key = keys.blobLink(repo, digest)
  const [existing, cached] = await Promise.all([
    env.LINKS.get(key),
    caches.default.delete(keys.cachedLink(c.origin, repo, digest)),
  ])
  // Where the link was just written KV may still serve a cached miss; the location's copy proves it.
  if (existing === null && !cached) return false
  await env.LINKS.delete(key)
  return true
}

function cacheLink(c: LinkContext, cacheKey: string, link: BlobLocation): Promise<void> {
  if (c.ttl <= 0) return Promise.resolve()
  const headers = { 'Content-Type': 'application/json', 'Cache-Control': `max-age=${c.ttl}` }
  return caches.default.put(cacheKey, new Response(JSON.stringify(link), { headers }))
}
