/**
 * Blob bytes through the location's Cache API (free): blobs are immutable, so a
 * warm pull at a location costs no R2 read. Ranges are served from cached bytes.
 */
import type { Env } from '../env'
import type { Digest } from '../names'
import { readBlob, type BlobLocation } from './blobs'
import { keys } from './keys'
import type { LinkContext } from './links'

/** A single range of a blob's bytes (http/ranges.ts parses it from a request's Range header). */
export interface ByteRange {
  offset: number
  length: number
}

/** Cloudflare caches objects up to 512 MB (non-Enterprise); larger ones stream from R2 every time. */
export const CACHE_MAX_BYTES = 512 * 1024 * 1024

/** A blob's bytes (the whole or one range): cache hit free; miss 1 R2 get. Null if R2 lost them. */
export async function blobBytes(
  env: Env,
  c: LinkContext,
  digest: Digest,
  blob: BlobLocation,
  range: ByteRange | null,
): Promise<ReadableStream | null> {
  const key = keys.cachedBlob(c.origin, digest)
  const cached = await caches.default.match(rangeRequest(key, range))
  if (cached?.body) return cached.body
  if (range || blob.size > CACHE_MAX_BYTES || blob.size === 0) {
    return (await readBlob(env, blob, range ? { offset: range.offset, length: range.length } : undefined))?.body ?? null
  }
  const object = await readBlob(env, blob)
  if (!object) return null
  // Fill the cache first, then answer from it: a tee would buffer without bound
  // when the client reads slower than the cache writes.
  const headers = { 'Content-Length': String(blob.size), 'Content-Type': 'application/octet-stream', 'Cache-Control': 'public, max-age=31536000, immutable' }
  await caches.default.put(key, new Response(object.body, { headers }))
  const filled = await caches.default.match(key)
  if (filled?.body) return filled.body
  // No cache here (e.g. workers.dev): read again.
  return (await readBlob(env, blob))?.body ?? null
}

/** Drops a blob's cached bytes at this location (free). */
export async function forgetBlobBytes(c: LinkContext, digest: Digest): Promise<void> {
  await caches.default.delete(keys.cachedBlob(c.origin, digest))
}

function rangeRequest(key: string, range: ByteRange | null): Request {
  if (!range) return new Request(key)
  return new Request(key, { headers: { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } })
}
