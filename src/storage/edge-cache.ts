/**
 * Blob bytes through the location's Cache API (free): blobs are immutable, so a
 * warm pull at a location costs no R2 read. Ranges are served from cached bytes.
 *
 * Never bytes that are not the digest's (issue 19, defence in depth): an object whose size is
 * not the one its index entry recorded is treated as absent and logged as corrupt, a cached
 * copy of another length is dropped, and every body read from R2 is cut to exactly the length
 * announced, so a read that ends early or breaks off fails the response (and the cache fill,
 * whose partial copy is dropped) instead of serving fewer bytes.
 */
import type { Env } from '../env'
import type { Digest } from '../names'
import { headAt, readBlob, type BlobLocation } from './blobs'
import { keys } from './keys'
import type { LinkContext } from './links'
import { logEvent } from '../log'

/** A single range of a blob's bytes (http/ranges.ts parses it from a request's Range header). */
export interface ByteRange {
  offset: number
  length: number
}

/** Cloudflare caches objects up to 512 MB (non-Enterprise); larger ones stream from R2 every time. */
export const CACHE_MAX_BYTES = 512 * 1024 * 1024

/**
 * A blob's bytes (the whole or one range): cache hit free; miss 1 R2 get (+1 more when the
 * location has no cache, or the read broke while filling it). Null if R2 lost them, or holds
 * something else than the recorded size.
 */
export async function blobBytes(
  env: Env,
  c: LinkContext,
  digest: Digest,
  blob: BlobLocation,
  range: ByteRange | null,
): Promise<ReadableStream | null> {
  const key = keys.cachedBlob(c.origin, digest)
  const length = range ? range.length : blob.size
  const cached = await caches.default.match(rangeRequest(key, range))
  if (cached?.body) {
    // A cached copy was filled only through `exactly` below, at the recorded size: served as it is
    // (cutting it again would cost the warm pull a quarter of its speed; measured in the report).
    if (isWhole(cached, blob.size, range)) return cached.body
    await cached.body.cancel()
    // A whole copy of another length is dropped; a range the cache did not answer as asked is read from R2.
    if (!range) {
      logEvent('error', { event: 'blob.cache-mismatch', digest, origin: c.origin, expected: blob.size }) // the cached copy is dropped
      await caches.default.delete(key)
    }
  }
  if (range || blob.size > CACHE_MAX_BYTES || blob.size === 0) return readExactly(env, digest, blob, range)
  const object = await readChecked(env, digest, blob)
  if (!object) return null
  // Fill the cache first, then answer from it: a tee would buffer without bound
  // when the client reads slower than the cache writes.
  const headers = { 'Content-Length': String(blob.size), 'Content-Type': 'application/octet-stream', 'Cache-Control': 'public, max-age=31536000, immutable' }
  try {
    await caches.default.put(key, new Response(exactly(object.body, blob.size), { headers }))
  } catch (err) {
    // The read broke off or fell short. The put failed, but what it took may be kept (the local
    // simulator keeps it): drop it, then stream from R2 instead.
    logEvent('error', { event: 'blob.read-broke', digest, at: blob.at, error: String(err) }) // while caching it
    await caches.default.delete(key)
    return readExactly(env, digest, blob, null)
  }
  const filled = await caches.default.match(key)
  if (filled?.body) return filled.body
  // No cache here (e.g. workers.dev): read again.
  return readExactly(env, digest, blob, null)
}

/**
 * The object at the blob's location, unless its size is not the recorded one (logged: corrupt).
 * 1 R2 get (+1 R2 head when a ranged get fails: R2 refuses a range past the end of a shorter object).
 */
async function readChecked(env: Env, digest: Digest, blob: BlobLocation, range?: ByteRange | null): Promise<R2ObjectBody | null> {
  let object: R2ObjectBody | null
  try {
    object = await readBlob(env, blob, range ? { offset: range.offset, length: range.length } : undefined)
  } catch (err) {
    const there = range ? await headAt(env, blob) : null
    if (!there || there.size === blob.size) throw err
    return corrupt(digest, blob, there.size)
  }
  if (!object || object.size === blob.size) return object
  await object.body.cancel()
  return corrupt(digest, blob, object.size)
}

function corrupt(digest: Digest, blob: BlobLocation, size: number): null {
  logEvent('error', { event: 'blob.corrupt', digest, at: blob.at, size, expected: blob.size }) // served as absent
  return null
}

/** `readChecked`, the body cut to exactly the bytes asked for. 1 R2 get. */
async function readExactly(env: Env, digest: Digest, blob: BlobLocation, range: ByteRange | null): Promise<ReadableStream | null> {
  const object = await readChecked(env, digest, blob, range)
  return object ? exactly(object.body, range ? range.length : blob.size) : null
}

/** The stream, failing unless it carries exactly `length` bytes (the response is then cut, never short). */
const exactly = (body: ReadableStream, length: number): ReadableStream => body.pipeThrough(new FixedLengthStream(length))

/** Whether a cached reply is the blob (or the range asked of it) at its recorded size. */
function isWhole(cached: Response, size: number, range: ByteRange | null): boolean {
  const length = cached.headers.get('Content-Length')
  if (!range) return length === String(size)
  return length === String(range.length) && (cached.headers.get('Content-Range') ?? '').endsWith(`/${size}`)
}

/** Drops a blob's cached bytes at this location (free). */
export async function forgetBlobBytes(c: LinkContext, digest: Digest): Promise<void> {
  await caches.default.delete(keys.cachedBlob(c.origin, digest))
}

function rangeRequest(key: string, range: ByteRange | null): Request {
  if (!range) return new Request(key)
  return new Request(key, { headers: { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } })
}
