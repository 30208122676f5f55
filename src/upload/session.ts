/**
 * Moving an upload's bytes into R2, once each, with the digest computed on the way.
 *
 * - A blob whose digest is known before its bytes (monolithic POST, PUT with the
 *   whole body) goes straight to blobs/<alg>/<hex>, R2 checking the checksum.
 * - The first write of a session, when it fits BUFFER_LIMIT, is hashed in memory
 *   and stored under its digest too: small blobs need no index entry.
 * - A larger first write with a known length streams into one tail object.
 * - Anything else (unknown length, later chunks) goes through a PART_SIZE buffer
 *   into an R2 multipart upload; what is left over becomes the new tail, which
 *   the next write re-reads. Memory per request is bounded by PART_SIZE.
 */
import { RegistryError } from '../errors'
import { ResumableHash, type Algorithm } from '../digest/hasher'
import type { Env } from '../env'
import { algorithmOf, hexOf, type Digest, type Repo } from '../names'
import { headBlob, indexBlob, putVerifiedBlob, type IndexedBlob } from '../storage/blobs'
import { isUploadKey, keys } from '../storage/keys'
import { batched, chunksOf, concat, pumpTo, readAtMost, toHex, type Carry } from '../storage/streams'
import {
  abortParts, completeParts, deleteTail, dropUpload, getPiece, getTail, isCancelled, markCancelled, putPart, putTail, startParts,
  tailExists,
} from '../storage/uploads'
import { decodeHashState, encodeHashState, type UploadState } from './state'

/** R2 multipart parts must be equal (but the last) and ≥ 5 MiB; this is the memory bound. */
export const PART_SIZE = 10 * 1024 * 1024
/** Largest first write held in memory to be stored under its own digest. */
export const BUFFER_LIMIT = 8 * 1024 * 1024
/** Bytes hashed and written at a time (see streams.ts `batched`). */
const BATCH_SIZE = 1024 * 1024
/** Pieces a session keeps before its tail is folded into one object again (bounds the state's size). */
const MAX_PIECES = 32

/** Bytes received but not yet in a part: the tail and the pieces after it. */
const pending = (state: UploadState): number => state.tail + (state.more ?? []).reduce((n, [, size]) => n + size, 0)

const unknown = (s: UploadState) => new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid: s.id })

/**
 * 413 for a request body over MAX_CHUNK_BYTES. The message (which clients print) says the
 * limit and how to push a bigger blob: in chunks no larger, as `npx edge-registry push` does.
 */
export function chunkTooLarge(limit: number): RegistryError {
  return new RegistryError(
    'CHUNK_TOO_LARGE',
    { limit, push: 'npx edge-registry push <source> <destination>' },
    { 'OCI-Chunk-Max-Length': String(limit) },
    `request body over this registry's limit of ${limit} bytes (MAX_CHUNK_BYTES): send blobs in chunks ` +
      `of at most ${limit} bytes (OCI-Chunk-Max-Length); to push layers this large, use \`npx edge-registry push\``,
  )
}

class Hashes {
  readonly sha256: ResumableHash
  readonly sha512: ResumableHash
  constructor(state: UploadState) {
    this.sha256 = new ResumableHash('sha256', decodeHashState(state.h256))
    this.sha512 = new ResumableHash('sha512', decodeHashState(state.h512))
  }
  update(chunk: Uint8Array): void {
    this.sha256.update(chunk)
    this.sha512.update(chunk)
  }
  digest(alg: Algorithm): Digest {
    return `${alg}:${this[alg].hex()}` as Digest
  }
  saved(): Pick<UploadState, 'h256' | 'h512'> {
    return { h256: encodeHashState(this.sha256.save()), h512: encodeHashState(this.sha512.save()) }
  }
}

/**
 * Whether the session's tail object has become a blob's bytes: a completed upload's
 * Location can be replayed, and its tail must then never be deleted. Only a tail
 * without parts can be one. 0 calls, or 2 R2 heads (the index under both digests).
 */
async function spent(env: Env, state: UploadState): Promise<boolean> {
  if (!isUploadKey(state.at) || state.mp) return false
  const hashes = new Hashes(state)
  const indexed = await Promise.all([headBlob(env, hashes.digest('sha256')), headBlob(env, hashes.digest('sha512'))])
  return indexed.some((blob) => blob?.at === state.at)
}

/** Drops what the session wrote (tail, parts), unless a replayed Location names a completed upload. */
async function dropUnlessSpent(env: Env, state: UploadState): Promise<void> {
  if (!(await spent(env, state))) await dropUpload(env, state)
}

/** Cancels the session (DELETE): marked cancelled (1 R2 put), its bytes dropped (free, after the check above). */
export async function cancel(env: Env, state: UploadState): Promise<void> {
  await Promise.all([markCancelled(env, state), dropUnlessSpent(env, state)])
}

/** Throws BLOB_UPLOAD_UNKNOWN unless the session's bytes are still there. 1 R2 head. */
export async function assertLive(env: Env, state: UploadState): Promise<void> {
  const live = isUploadKey(state.at) ? await tailExists(env, state) : !(await isCancelled(env, state))
  if (!live) throw unknown(state)
}

/**
 * Appends a request body to the upload; `length` is null when the client did
 * not say (chunked transfer encoding). `chunked`: the client sends the blob in
 * several PATCHes (it gave a Content-Range), so a first write is a tail, not a
 * blob of its own that later chunks would leave behind. Returns the new state.
 * Fresh session: 1 R2 head + 1 R2 put (+ parts for an unknown length).
 * A later chunk that fills no part, once parts exist: 1 R2 head + 1 R2 put (a piece).
 * Other later chunks: 1 R2 get per tail object/piece + 1 R2 put + one uploadPart per PART_SIZE.
 */
export async function append(
  env: Env,
  state: UploadState,
  body: ReadableStream<Uint8Array> | null,
  length: number | null,
  chunked = false,
  limit = Infinity,
): Promise<UploadState> {
  if (!body || length === 0) return state
  if (length !== null && length > limit) throw chunkTooLarge(limit)
  const hashes = new Hashes(state)
  if (state.offset === 0) {
    if (await isCancelled(env, state)) throw unknown(state)
    if (length !== null && length <= BUFFER_LIMIT) return appendFirstSmall(env, state, hashes, body, length, chunked)
    if (length !== null) return appendFirstStream(env, state, hashes, body, length)
  }
  if (state.mp && length !== null && pending(state) + length < PART_SIZE && (state.more?.length ?? 0) < MAX_PIECES) {
    return appendPiece(env, state, hashes, body, length)
  }
  return appendThroughParts(env, state, hashes, body, length, chunked, limit)
}

/**
 * Once there are parts, a chunk that completes none is written once, as a piece after
 * the tail, instead of re-writing the tail with it. 1 R2 head + 1 R2 put.
 */
async function appendPiece(env: Env, state: UploadState, hashes: Hashes, body: ReadableStream<Uint8Array>, length: number) {
  if (await isCancelled(env, state)) throw unknown(state)
  const bytes = await readExactly(body, length)
  hashes.update(bytes)
  const key = await putTail(env, state, bytes)
  const more: [string, number][] = [...(state.more ?? []), [key, length]]
  return { ...state, ...hashes.saved(), offset: state.offset + length, more }
}

/**
 * The bytes received but not yet in a part, in order (the tail object after its etag
 * list, then each piece), and the part etags. 1 R2 get per object; BLOB_UPLOAD_UNKNOWN
 * when one is gone (cancelled, or completed).
 */
async function openTail(env: Env, state: UploadState): Promise<{ etags: string[]; chunks: AsyncGenerator<Uint8Array> }> {
  const tail = await getTail(env, state)
  if (!tail || (!isUploadKey(state.at) && (await isCancelled(env, state)))) throw unknown(state)
  const first = chunksOf(tail.body)
  const carry: Carry = { pending: null }
  const etags: string[] = state.skip ? JSON.parse(new TextDecoder().decode(await readAtMost(first, state.skip, carry))) : []
  async function* chunks(): AsyncGenerator<Uint8Array> {
    if (carry.pending) yield carry.pending
    yield* first
    for (const [key] of state.more ?? []) {
      const piece = await getPiece(env, key)
      if (!piece) throw unknown(state)
      yield* chunksOf(piece.body)
    }
  }
  return { etags, chunks: chunks() }
}

/** Deletes the tail and pieces a new state no longer names (free; the tail only if no blob is made of it). */
async function dropSuperseded(env: Env, state: UploadState): Promise<void> {
  const pieces = (state.more ?? []).map(([key]) => deleteTail(env, key))
  const tail = (async () => {
    if (!(await spent(env, state))) await deleteTail(env, state.at)
  })()
  await Promise.all([...pieces, tail])
}

async function appendFirstSmall(env: Env, state: UploadState, hashes: Hashes, body: ReadableStream<Uint8Array>, length: number, chunked: boolean) {
  const bytes = await readExactly(body, length)
  hashes.update(bytes)
  const at = chunked ? await putTail(env, state, bytes) : await storeFirstWrite(env, state, hashes.digest('sha256'), bytes)
  return { ...state, ...hashes.saved(), offset: length, at, tail: length }
}

/**
 * A session's first bytes, under their digest. When the registry already indexes that
 * digest as a pointer to another upload's object, the session keeps its own copy (a tail)
 * instead: a session never names, nor later deletes, another upload's objects.
 */
async function storeFirstWrite(env: Env, state: UploadState, digest: Digest, bytes: Uint8Array): Promise<string> {
  const stored = await putVerifiedBlob(env, digest, state.repo as Repo, bytes)
  return stored.at === keys.blob(digest) ? stored.at : putTail(env, state, bytes)
}

async function appendFirstStream(env: Env, state: UploadState, hashes: Hashes, body: ReadableStream<Uint8Array>, length: number) {
  const fixed = new FixedLengthStream(length)
  const [at] = await Promise.all([
    putTail(env, state, fixed.readable),
    pumpTo(batched(body, BATCH_SIZE), fixed.writable, (piece) => hashes.update(piece)),
  ]).catch(() => {
    throw new RegistryError('BLOB_UPLOAD_INVALID', 'the request body ended before Content-Length bytes')
  })
  return { ...state, ...hashes.saved(), offset: length, at, tail: length }
}

async function appendThroughParts(
  env: Env,
  state: UploadState,
  hashes: Hashes,
  body: ReadableStream<Uint8Array>,
  length: number | null,
  chunked: boolean,
  limit: number,
): Promise<UploadState> {
  const next = { ...state }
  let etags: string[] = []
  const buffer = new Uint8Array(PART_SIZE)
  let filled = 0
  const flush = async () => {
    if (!next.mp) next.mp = await startParts(env, next)
    etags.push(await putPart(env, next, etags.length + 1, buffer))
    filled = 0
  }
  const push = async (chunk: Uint8Array) => {
    for (let at = 0; at < chunk.byteLength; ) {
      const take = Math.min(PART_SIZE - filled, chunk.byteLength - at)
      buffer.set(chunk.subarray(at, at + take), filled)
      filled += take
      at += take
      if (filled === PART_SIZE) await flush()
    }
  }

  if (state.at) {
    const tail = await openTail(env, state)
    etags = tail.etags
    for await (const chunk of tail.chunks) await push(chunk)
  }
  let received = 0
  try {
    for await (const chunk of batched(body, BATCH_SIZE)) {
      if (length !== null && received + chunk.byteLength > length) throw new RegistryError('SIZE_INVALID', 'body longer than Content-Length')
      // A body of unknown length is refused as soon as it passes the limit; the session's
      // state (the client's Location) still names only what it had before this request.
      if (received + chunk.byteLength > limit) throw chunkTooLarge(limit)
      hashes.update(chunk)
      received += chunk.byteLength
      await push(chunk)
    }
  } catch (err) {
    // A multipart upload this request started is not named by the session: abort it (free).
    if (next.mp && !state.mp) await abortParts(env, next)
    if (err instanceof RegistryError) throw err
    throw new RegistryError('BLOB_UPLOAD_INVALID', 'the request body was cut off')
  }
  if (length !== null && received !== length) throw new RegistryError('SIZE_INVALID', 'body shorter than Content-Length')
  if (received === 0) return state

  const rest = buffer.subarray(0, filled)
  let at: string
  let skip = 0
  if (next.mp) {
    const list = new TextEncoder().encode(JSON.stringify(etags))
    skip = list.byteLength
    at = await putTail(env, next, concat([list, rest]))
  } else if (state.offset === 0 && !chunked) {
    at = await storeFirstWrite(env, next, hashes.digest('sha256'), rest.slice())
  } else {
    at = await putTail(env, next, rest.slice())
  }
  await dropSuperseded(env, state)
  const { more: _pieces, ...folded } = next // the pieces are in the new tail or parts now
  return { ...folded, ...hashes.saved(), offset: state.offset + received, at, tail: filled, skip, parts: etags.length }
}

/**
 * Finishes the upload as `digest`: verifies it against the hashed bytes, makes the
 * bytes a registry blob (or finds the copy that already is one). The caller links it.
 * Tail upload: 1 R2 head + 1 R2 put (index). Parts: 1 get, 1 uploadPart, 1 complete, 1 put.
 */
export async function complete(env: Env, state: UploadState, digest: Digest): Promise<IndexedBlob> {
  const alg = algorithmOf(digest)
  if (new Hashes(state).digest(alg) !== digest) {
    await dropUnlessSpent(env, state)
    throw new RegistryError('DIGEST_INVALID', { digest })
  }
  const repo = state.repo as Repo
  if (state.offset === 0) {
    if (await isCancelled(env, state)) throw unknown(state)
    return putVerifiedBlob(env, digest, repo, new Uint8Array(0))
  }
  let at = state.at
  if (state.mp) {
    const tail = await openTail(env, state)
    const etags = tail.etags
    if (pending(state) > 0) {
      const last = await readAtMost(tail.chunks, pending(state), { pending: null })
      etags.push(await putPart(env, state, etags.length + 1, last))
    }
    at = await completeParts(env, state, etags)
    await dropSuperseded(env, state)
  } else {
    await assertLive(env, state)
  }
  if (at === keys.blob(digest)) return { at, size: state.offset, repo, indexed: Date.now() }
  const indexed = await indexBlob(env, digest, repo, { at, size: state.offset })
  // Lost to another upload of the same bytes: ours go (unless a replay made them a blob already).
  if (indexed.at !== at && (at !== state.at || !(await spent(env, state)))) await deleteTail(env, at)
  return indexed
}

/**
 * Stores a blob whose digest the client gave before its bytes (monolithic POST,
 * PUT with the whole body). Known already: the bytes are hashed and compared,
 * not stored again (1 R2 head). New: streamed to blobs/ with R2's checksum check
 * (1 R2 head + 1 R2 put). A mismatch stores nothing.
 */
export async function storeWithDigest(
  env: Env,
  repo: Repo,
  digest: Digest,
  body: ReadableStream<Uint8Array> | null,
  length: number,
): Promise<IndexedBlob> {
  const existing = await headBlob(env, digest)
  const hash = new crypto.DigestStream(algorithmOf(digest) === 'sha256' ? 'SHA-256' : 'SHA-512')
  const hashing = hash.getWriter()
  let received = 0
  const feed = (piece: Uint8Array) => {
    received += piece.byteLength
    return hashing.write(piece)
  }
  const pieces = batched(body ?? new Response('').body!, BATCH_SIZE)
  let stored: IndexedBlob | null = existing
  try {
    if (existing) {
      for await (const piece of pieces) await feed(piece)
    } else {
      // One pass feeds both the digest and R2, which checks the checksum itself.
      const fixed = new FixedLengthStream(length)
      ;[stored] = await Promise.all([putVerifiedBlob(env, digest, repo, fixed.readable), pumpTo(pieces, fixed.writable, feed)])
    }
  } catch {
    stored = null // R2 refused the checksum, or the body was not `length` bytes.
  }
  await hashing.close().catch(() => {})
  if (received !== length) throw new RegistryError('SIZE_INVALID', { expected: length, received })
  const actual = toHex(new Uint8Array(await hash.digest))
  if (actual !== hexOf(digest) || !stored) throw new RegistryError('DIGEST_INVALID', { digest })
  if (existing && existing.size !== length) throw new RegistryError('SIZE_INVALID', { expected: existing.size, received })
  return stored
}

async function readExactly(body: ReadableStream<Uint8Array>, length: number): Promise<Uint8Array> {
  try {
    const chunks = chunksOf(body)
    const carry: Carry = { pending: null }
    const bytes = await readAtMost(chunks, length, carry)
    const more = carry.pending ?? (await chunks.next()).value
    if (bytes.byteLength !== length || more) throw new RegistryError('SIZE_INVALID', { expected: length })
    return bytes
  } catch (err) {
    if (err instanceof RegistryError) throw err
    throw new RegistryError('BLOB_UPLOAD_INVALID', 'the request body was cut off')
  }
}
