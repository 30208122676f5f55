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
import { chunksOf, inStep, pumpTo } from './streams'

/** A single range of a blob's bytes (http/ranges.ts parses it from a request's Range header). */
export interface ByteRange {
  offset: number
  length: number
}

/** Cloudflare caches objects up to 512 MB (non-Enterprise); larger ones stream from R2 every time. */
export const CACHE_MAX_BYTES = 512 * 1024 * 1024

/**
 * A blob's bytes (the whole or one range): cache hit free; miss 1 R2 get, streamed to the
 * client while it fills the cache. Null if R2 lost them, or holds something else than the
 * recorded size.
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
  // The client and the cache fill read one R2 body in step: the answer starts at once (filling
  // the cache first held a 300 MiB answer back until all of it was cached), and the fill never
  // holds more than a piece ahead of a slow client (a tee would buffer the blob).
  // Each branch is cut to the recorded size, which also gives both a known length (the client's
  // Content-Length; the cached copy's, which a warm read checks).
  const [answer, fill] = inStep(object.body, FILL_PIECE_BYTES)
  c.waitUntil(fillCache(key, digest, blob, exactlyPumped(fill, blob.size)))
  return exactlyPumped(answer, blob.size)
}

/**
 * Deletes what a failed put may have left. The local simulator stores what it was sent even
 * when the body failed, and does so after the put has already failed here (a delete right after
 * it finds nothing, the copy lands ~0.1 s later): watched for a second and deleted when it
 * lands. Cloudflare's cache keeps nothing of a failed put; there the watch finds nothing.
 */
async function dropPartialCopy(key: string): Promise<void> {
  await caches.default.delete(key)
  for (let i = 0; i < 10; i++) {
    await scheduler.wait(100)
    if (await caches.default.delete(key)) return
  }
}

/** Pieces the client and the cache fill take together (see inStep). */
const FILL_PIECE_BYTES = 1024 * 1024

/**
 * Puts a blob's bytes in the location's cache (free). A body that broke off or fell short fails
 * the put, and what it took is dropped (dropPartialCopy). A client
 * that leaves does not end the fill: the rest is read for the cache alone (within waitUntil), so
 * the next pull here is warm. Where there is no cache (workers.dev) the put resolves without
 * reading: the fill's branch is then let go, and the client goes on alone.
 */
async function fillCache(key: string, digest: Digest, blob: BlobLocation, body: ReadableStream<Uint8Array>): Promise<void> {
  const headers = { 'Content-Length': String(blob.size), 'Content-Type': 'application/octet-stream', 'Cache-Control': 'public, max-age=31536000, immutable' }
  const copy = new Response(body, { headers })
  try {
    await caches.default.put(key, copy)
  } catch (err) {
    logEvent('error', { event: 'blob.read-broke', digest, at: blob.at, error: String(err) }) // while caching it: the partial copy is dropped
    await dropPartialCopy(key)
  } finally {
    if (!copy.bodyUsed) await copy.body?.cancel().catch(() => {})
  }
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

/**
 * `exactly` for a stream made in JavaScript (an inStep branch), pumped here: workerd's own pipe
 * from such a stream logs an uncaught "Stream was cancelled" when the client cancels after the
 * last byte and before the end of the stream.
 */
function exactlyPumped(body: ReadableStream<Uint8Array>, length: number): ReadableStream {
  const fixed = new FixedLengthStream(length)
  void pumpTo(chunksOf(body), fixed.writable, () => {}).catch(() => body.cancel().catch(() => {}))
  return fixed.readable
}

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
