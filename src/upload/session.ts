/**
 * An upload session, as the spec's state machine (distribution-spec "Pushing blobs"):
 *
 *   open    POST                a new state; nothing stored
 *   append  PATCH, a PUT's body bytes at the session's offset
 *   close   PUT ?digest=        the bytes verified and indexed as a blob; the session is over
 *   cancel  DELETE              the session is over, its bytes dropped
 *   status  GET                 where the session truly stands
 *
 * The client holds the state (state.ts); storage holds the truth (storage/uploads.ts owns
 * where the bytes live). Each write is made at the offset its request started at, once,
 * and no write is deleted while the session can be named (the collector removes what no
 * blob uses after the upload expiry). So a state is current exactly while nothing is
 * written at its offset and the session has not ended:
 *   - a first write (offset 0) is refused by R2 when offset 0 is taken;
 *   - a later write or a close heads its offset first (a later write must not touch the
 *     parts before it knows); a write continuing the only write so far also heads the
 *     blob index, which is how a session of one write that became a blob is recognised;
 *   - every other ending (cancel, a refused digest, a close of several writes) writes an
 *     end mark at the last offset.
 * A state found out of date costs one R2 list: `Moved` (416 with the true Range) while
 * the session lives, BLOB_UPLOAD_UNKNOWN once it has ended.
 *
 * Hashing, only with the session's algorithm: a first write is hashed natively on the way
 * (crypto.DigestStream), which covers the common flows (one PATCH, or a PUT with the body).
 * Its state cannot be saved, so a session that spans requests carries a resumable hash
 * (digest/hasher.ts, WebAssembly) in its state (`hs`), updated by every later chunk, and
 * its close compares that digest without reading the blob back:
 *   - a first write that announced more (Content-Range) is hashed resumably from the start;
 *   - otherwise the second chunk starts one from the first write's bytes, which it reads
 *     anyway to fold them into parts (no added call) when they are one object;
 *   - a first write of unknown length already in multipart parts (docker, podman: they send
 *     one PATCH) cannot be read again before the close: such a session, or a close with the
 *     other algorithm, is hashed once at the close by reading the blob back.
 */
import type { Algorithm } from '../digest/native'
import { ResumableHash } from '../digest/hasher'
import { hashStream, NativeHash } from '../digest/native'
import { RegistryError } from '../errors'
import { countBodyBytes } from '../log'
import type { Env } from '../env'
import { algorithmOf, hexOf, type Digest, type Repo } from '../names'
import { headBlob, indexBlob, putVerifiedBlob, type IndexedBlob } from '../storage/blobs'
import { isUploadKey } from '../storage/keys'
import { batched, concat, readAtMost } from '../storage/streams'
import {
  abortParts, completeParts, deleteParts, isEnded, isWritten, listSession, putEnd, putPart, putWrite, readPending,
  readUploaded, writeKey,
} from '../storage/uploads'
import { PART_SIZE, PartWriter } from './parts'
import {
  decodeHashState, encodeHashState, newUploadState, unknownUpload, withProgress, type Progress, type UploadState,
} from './state'

export { PART_SIZE } from './parts'
/** A first write up to this size that announces more chunks (Content-Range) stays one tail object. */
export const BUFFER_LIMIT = 8 * 1024 * 1024
/** Bytes hashed and written at a time (see streams.ts `batched`). */
const BATCH_SIZE = 1024 * 1024
/** Pieces a session keeps before its tail is folded into parts again (bounds the state's size). */
const MAX_PIECES = 32

/** A request body to append: `length` null when the client did not say (chunked encoding). */
export interface Body {
  stream: ReadableStream<Uint8Array> | null
  length: number | null
  /** The client sends the blob in several requests (it gave a Content-Range). */
  chunked: boolean
  /** MAX_CHUNK_BYTES. */
  limit: number
}

/** The request's state is not the session's latest: `truth` is (the session lives on). */
export class Moved extends Error {
  constructor(readonly truth: UploadState) {
    super('the upload session has moved on')
  }
}

/**
 * 413 for a request body over MAX_CHUNK_BYTES. The message (which clients print) says the
 * limit and how to push a bigger blob: in chunks no larger, as `npx edge-registry push` does.
 * The code is DENIED, one both docker (moby `retryOnError`) and podman/buildah
 * (containers/common `retry`) take as final: with a code of our own they sent the same layer
 * again, up to five times. The push tool reads the status and OCI-Chunk-Max-Length.
 */
export function chunkTooLarge(limit: number): RegistryError {
  return new RegistryError(
    'DENIED',
    { limit, push: 'npx edge-registry push <source> <destination>' },
    { 'OCI-Chunk-Max-Length': String(limit) },
    {
      message: `request body over this registry's limit of ${limit} bytes (MAX_CHUNK_BYTES): send blobs in chunks ` +
      `of at most ${limit} bytes (OCI-Chunk-Max-Length); to push layers this large, use \`npx edge-registry push\``,
      status: 413,
    },
  )
}

const cutOff = () => new RegistryError('BLOB_UPLOAD_INVALID', 'the request body was cut off')
const digestInvalid = (digest: Digest) => new RegistryError('DIGEST_INVALID', { digest })

// ---------------------------------------------------------------------------------------
// open, status

/** POST: a new session, hashing `alg`. No storage call. */
export function open(repo: Repo, sub = '', alg: Algorithm = 'sha256'): UploadState {
  return newUploadState(repo, Date.now(), sub, alg)
}

/** GET: the session's true state (1 R2 list; see `truth`). */
export function status(env: Env, state: UploadState): Promise<UploadState> {
  return truth(env, state)
}

/**
 * The session as storage knows it, whatever Location asked: the progress its latest write
 * recorded. BLOB_UPLOAD_UNKNOWN once it has ended (an end mark, completed parts, or its
 * only write indexed as a blob). 1 R2 list, +1 R2 head for a session of one write (+1 get
 * reading that write again when it recorded no digest: a first write streamed with its length).
 */
async function truth(env: Env, state: UploadState): Promise<UploadState> {
  const stored = await listSession(env, state)
  if (stored.ended) throw unknownUpload(state.id)
  const latest = stored.latest ? withProgress(state, stored.latest.progress) : withProgress(state, fresh(state.alg))
  if (await spent(env, latest)) throw unknownUpload(state.id)
  return latest
}

/** The error for a state that is not the latest: Moved, or BLOB_UPLOAD_UNKNOWN when the session is over. */
export async function moved(env: Env, state: UploadState): Promise<Error> {
  try {
    return new Moved(await truth(env, state))
  } catch (err) {
    return err as Error
  }
}

const fresh = (alg: Algorithm): Progress => ({ offset: 0, alg, at: -1, size: 0, skip: 0, mp: '', parts: 0 })

/** Whether all bytes so far came in the first write, whose object (offset 0) is then the tail. */
const firstOnly = (s: UploadState): boolean => s.offset > 0 && s.at === 0 && !s.more?.length

/** Bytes received but not yet in a part: the tail and the pieces after it. */
const pendingBytes = (s: UploadState): number => s.size + (s.more ?? []).reduce((n, [, size]) => n + size, 0)

/**
 * Whether a session of one write is over: the index entry of its digest points at its
 * bytes, or (+1 R2 head) at another upload's, this session's first write having been
 * dropped for an end mark. (Every other ending leaves an end mark at the last offset.)
 * 0 calls, or 1 R2 head (+1 R2 get when the write recorded no digest).
 */
async function spent(env: Env, s: UploadState): Promise<boolean> {
  if (!firstOnly(s)) return false
  let sum = s.sum
  if (sum === undefined) {
    if (s.mp) return false // a first write through parts always records its digest
    const bytes = await readUploaded(env, writeKey(s, 0), 0)
    if (!bytes) return false
    sum = await hashStream(bytes, s.alg)
  }
  const blob = await headBlob(env, `${s.alg}:${sum}` as Digest)
  if (!blob) return false
  return isUploadKey(blob.at, s.id) || isEnded(env, s, 0)
}

/**
 * Throws unless the state is current: nothing written at its offset (1 R2 head) and, for a
 * state continuing the only write so far (`spentToo`), that write not a blob already (+1 R2 head).
 */
async function assertCurrent(env: Env, state: UploadState, spentToo: boolean): Promise<void> {
  const [taken, over] = await Promise.all([
    isWritten(env, state, state.offset),
    spentToo && firstOnly(state) ? spent(env, state) : Promise.resolve(false),
  ])
  if (taken || over) throw await moved(env, state)
}

// ---------------------------------------------------------------------------------------
// append

/**
 * PATCH (or a PUT's body): appends the body at the state's offset; the new state.
 * An empty body touches no storage.
 * - first write, known length (one PATCH, as skopeo, crane): 1 R2 put, hashed on the way;
 * - first write of unknown length (docker, podman), or of a chunked upload beyond
 *   BUFFER_LIMIT: one uploadPart per PART_SIZE (+1 createMultipartUpload) + 1 R2 put;
 * - a later chunk that fills no part once parts exist: 1 R2 head + 1 R2 put (a piece);
 * - other later chunks: 1 R2 head + 1 R2 get per tail object/piece (never more than a
 *   part's remainder) + one uploadPart per PART_SIZE + 1 R2 put;
 * - a chunk continuing the only write so far: +1 R2 head (the blob index).
 */
export async function append(env: Env, state: UploadState, body: Body): Promise<UploadState> {
  if (body.length !== null && body.length > body.limit) throw chunkTooLarge(body.limit)
  const chunks = await nonEmpty(body)
  if (!chunks) return state
  if (state.offset === 0 && body.length !== null && !(body.chunked && body.length > BUFFER_LIMIT)) {
    return appendFirst(env, state, chunks, body.length, body.chunked)
  }
  // A first write needs no look: its write at offset 0 is refused if that offset is taken
  // (a multipart upload it started meanwhile is then aborted).
  if (state.offset > 0) await assertCurrent(env, state, true)
  if (state.mp && body.length !== null && pendingBytes(state) + body.length < PART_SIZE && (state.more?.length ?? 0) < MAX_PIECES) {
    return appendPiece(env, state, chunks, body.length)
  }
  return appendThroughParts(env, state, chunks, body.chunked)
}

/** The body's chunks, counted against its length and the limit; null for an empty body (nothing read from storage). */
async function nonEmpty(body: Body): Promise<AsyncGenerator<Uint8Array> | null> {
  if (!body.stream || body.length === 0) return null
  const chunks = counted(batched(body.stream, BATCH_SIZE), body)
  const first = await chunks.next().catch(rethrowAsBodyError)
  if (first.done) return null
  return (async function* () {
    yield first.value
    yield* chunks
  })()
}

async function* counted(chunks: AsyncIterable<Uint8Array>, body: Body): AsyncGenerator<Uint8Array> {
  let received = 0
  for await (const chunk of chunks) {
    received += chunk.byteLength
    countBodyBytes(chunk.byteLength)   // the log line's bytesIn when the body has no Content-Length
    if (body.length !== null && received > body.length) throw new RegistryError('SIZE_INVALID', 'body longer than Content-Length')
    // A body of unknown length is refused as soon as it passes the limit; the session
    // still stands where it was (nothing is written at its offset yet).
    if (received > body.limit) throw chunkTooLarge(body.limit)
    yield chunk
  }
  if (body.length !== null && received !== body.length) throw new RegistryError('SIZE_INVALID', 'body shorter than Content-Length')
}

function rethrowAsBodyError(err: unknown): never {
  throw err instanceof RegistryError ? err : cutOff()
}

/**
 * A first write's hash: native, or resumable when the client announced more chunks.
 * (The recorded progress of a first write streamed with its length has neither digest nor
 * hash state; a state read back from it continues as a session without `hs`.)
 */
const firstHash = (state: UploadState, chunked: boolean): NativeHash | ResumableHash =>
  chunked ? new ResumableHash(state.alg) : new NativeHash(state.alg)

/** What a write records of its hash: the digest of a first write, the saved state of a resumable one. */
async function hashed(hash: NativeHash | ResumableHash | null, first: boolean): Promise<Pick<Progress, 'sum' | 'hs'>> {
  if (!hash) return {}
  return {
    ...(first ? { sum: await hash.hex() } : {}),
    ...(hash instanceof ResumableHash ? { hs: encodeHashState(hash.save()) } : {}),
  }
}

/** The resumable hash of the bytes before this request, when the state carries one. */
const resumed = (state: UploadState): ResumableHash | null =>
  state.hs ? new ResumableHash(state.alg, decodeHashState(state.hs)) : null

/** A first write of known length: streamed into one object at offset 0, hashed on the way. 1 R2 put. */
async function appendFirst(
  env: Env, state: UploadState, chunks: AsyncIterable<Uint8Array>, length: number, chunked: boolean,
): Promise<UploadState> {
  const hash = firstHash(state, chunked)
  const after: Progress = { ...fresh(state.alg), offset: length, at: 0, size: length }
  const written = await streamInto(length, chunks, (piece) => hash.update(piece), (readable) => putWrite(env, state, 0, readable, after))
  if (!written) throw await moved(env, state)
  return withProgress(state, { ...after, ...(await hashed(hash, true)) })
}

/**
 * Streams `chunks` (exactly `length` bytes) into the write `put` makes; false when R2
 * refused the write (its offset was taken). A failed body or write is BLOB_UPLOAD_INVALID
 * (or the RegistryError the body raised).
 */
async function streamInto(
  length: number,
  chunks: AsyncIterable<Uint8Array>,
  each: (piece: Uint8Array) => unknown,
  put: (readable: ReadableStream<Uint8Array>) => Promise<boolean>,
): Promise<boolean> {
  const fixed = new FixedLengthStream(length)
  const writer = fixed.writable.getWriter()
  const stop = (why?: unknown) => void writer.abort(why).catch(() => {})
  const writing = put(fixed.readable)
  // R2 may refuse a conditional write before reading the whole body: stop feeding it then.
  writing.then((ok) => ok || stop(), stop)
  const feeding = (async () => {
    try {
      for await (const piece of chunks) {
        await each(piece)
        await writer.write(piece)
      }
      await writer.close()
    } catch (err) {
      stop(err)
      throw err
    }
  })()
  const [wrote, fed] = await Promise.allSettled([writing, feeding])
  if (wrote.status === 'fulfilled' && !wrote.value) return false
  if (fed.status === 'rejected') rethrowAsBodyError(fed.reason)
  if (wrote.status === 'rejected') throw cutOff()
  return true
}

/** Once there are parts, a chunk that completes none is written once, as a piece. 1 R2 put. */
async function appendPiece(env: Env, state: UploadState, chunks: AsyncIterable<Uint8Array>, length: number): Promise<UploadState> {
  const hash = resumed(state)
  const pieces: Uint8Array[] = []
  for await (const chunk of chunks) {
    hash?.update(chunk)
    pieces.push(chunk)
  }
  const bytes = concat(pieces)
  const after: Progress = {
    ...later(state),
    offset: state.offset + length,
    more: [...(state.more ?? []), [state.offset, length]],
    ...(await hashed(hash, false)),
  }
  if (!(await putWrite(env, state, state.offset, bytes, after))) throw await moved(env, state)
  return withProgress(state, after)
}

/** The progress of a state about to take bytes from another request: its digest and hash state no longer cover them. */
function later(state: UploadState): Progress {
  const { offset, alg, at, size, skip, mp, parts, more } = state
  return { offset, alg, at, size, skip, mp, parts, ...(more ? { more } : {}) }
}

/**
 * The bytes not yet in a part, then the body, through PART_SIZE parts; what fills no
 * part becomes the new tail, written at the state's offset (after the etag list).
 * The body is hashed on the way: a first write as `firstHash` says, a later one with the
 * state's resumable hash; a state without one whose bytes so far are all in the tail (the
 * first write, one object) starts one from them as they are read.
 */
async function appendThroughParts(env: Env, state: UploadState, chunks: AsyncIterable<Uint8Array>, chunked: boolean): Promise<UploadState> {
  const pending = await readPending(env, state)
  if (!pending) throw await moved(env, state)
  const first = state.offset === 0
  const rehash = !first && !state.hs && state.at === 0 && !state.mp && !state.more?.length
  const hash = first ? firstHash(state, chunked) : rehash ? new ResumableHash(state.alg) : resumed(state)
  const parts = new PartWriter(env, state, pending.etags)
  let received = 0
  try {
    for await (const chunk of pending.chunks) {
      if (rehash) hash!.update(chunk)
      await parts.push(chunk)
    }
    for await (const chunk of chunks) {
      await hash?.update(chunk)
      received += chunk.byteLength
      await parts.push(chunk)
    }
    await parts.settle()
  } catch (err) {
    // A multipart upload this request started is named by no state: abort it (free).
    if (parts.started) await abortParts(env, { ...state, mp: parts.mp })
    if (err instanceof RegistryError || !state.mp || received > 0) rethrowAsBodyError(err)
    // R2 refused a part before the body was read: the parts were completed or aborted meanwhile.
    throw await moved(env, state)
  }
  const rest = parts.remainder()
  const list = parts.etags.length ? new TextEncoder().encode(JSON.stringify(parts.etags)) : new Uint8Array(0)
  const after: Progress = {
    ...later(state),
    offset: state.offset + received,
    at: state.offset,
    size: rest.byteLength,
    skip: list.byteLength,
    mp: parts.mp,
    parts: parts.etags.length,
    ...(await hashed(hash, first)),
  }
  delete after.more // the pieces are in the new tail or parts now
  if (!(await putWrite(env, state, state.offset, concat([list, rest]), after))) {
    if (parts.started) await abortParts(env, { ...state, mp: parts.mp })
    throw await moved(env, state)
  }
  return withProgress(state, after)
}

// ---------------------------------------------------------------------------------------
// close

/**
 * PUT ?digest= with the whole blob as its body, on a fresh session: written at offset 0 with
 * R2 checking the digest (nothing stored on a mismatch), then indexed. 2 R2 puts.
 */
export async function closeWhole(env: Env, state: UploadState, digest: Digest, body: Body): Promise<IndexedBlob> {
  const length = body.length!
  if (length > body.limit) throw chunkTooLarge(body.limit)
  const alg = algorithmOf(digest)
  const chunks = counted(batched(body.stream ?? new Response('').body!, BATCH_SIZE), body)
  const after: Progress = { ...fresh(alg), offset: length, at: 0, size: length, sum: hexOf(digest) }
  let received = 0
  let written: boolean
  try {
    written = await streamInto(length, chunks, (piece) => (received += piece.byteLength), (readable) =>
      putWrite(env, state, 0, readable, after, alg === 'sha256' ? { sha256: hexOf(digest) } : { sha512: hexOf(digest) }))
  } catch (err) {
    // R2 checks the checksum before the condition: a replayed or out-of-date state is told so first (+1 R2 head).
    if (await isWritten(env, state, 0)) throw await moved(env, state)
    // The whole body arrived and R2 refused it: its checksum did not match.
    if (received === length && err instanceof RegistryError && err.code === 'BLOB_UPLOAD_INVALID') throw digestInvalid(digest)
    throw err
  }
  if (!written) throw await moved(env, state)
  return publish(env, withProgress(state, after), digest, writeKey(state, 0), true)
}

/**
 * PUT ?digest=: verifies the bytes received against `digest`, makes them a blob (or finds
 * the copy that already is one) and ends the session. The caller links it.
 * - one write, closed with the session's algorithm: 1 R2 head + 1 R2 put (index);
 * - parts: 1 R2 head + 1 R2 get (tail) + 1 uploadPart + 1 complete + 1 R2 put (index);
 * - bytes from several requests: +1 R2 put marking the end; verified by the state's
 *   resumable hash, or, without one (see the top) or closed with the other algorithm,
 *   +1 R2 get reading them all back once to hash them.
 */
export async function close(env: Env, state: UploadState, digest: Digest): Promise<IndexedBlob> {
  if (state.offset === 0) return closeEmpty(env, state, digest)
  const sum = state.alg !== algorithmOf(digest) ? undefined : state.sum ?? resumed(state)?.hex()
  const trusted = sum !== undefined
  if (trusted && sum !== hexOf(digest)) {
    await assertCurrent(env, state, true)
    await end(env, state, 'refused')
    throw digestInvalid(digest)
  }
  await assertCurrent(env, state, false)
  let at: string
  if (state.mp) {
    try {
      at = await completeUpload(env, state)
    } catch {
      throw await moved(env, state) // the tail was read, or the parts completed, by a request before this one
    }
  } else {
    at = writeKey(state, state.at)
  }
  if (!trusted) {
    const bytes = await readUploaded(env, at, 0)
    if (!bytes || (await hashStream(bytes, algorithmOf(digest))) !== hexOf(digest)) {
      if (state.mp) await deleteParts(env, state)
      await end(env, state, 'refused')
      throw digestInvalid(digest)
    }
  }
  return publish(env, state, digest, at, trusted)
}

/** The pending bytes as the last part, then the multipart upload completed: its key. 1 R2 get per tail/piece, 1 uploadPart, 1 complete. */
async function completeUpload(env: Env, state: UploadState): Promise<string> {
  const pending = await readPending(env, state)
  if (!pending) throw new Error('the tail is gone')
  const etags = pending.etags
  if (pendingBytes(state) > 0) {
    const last = await readAtMost(pending.chunks, pendingBytes(state), { pending: null })
    etags.push(await putPart(env, state, etags.length + 1, last))
  }
  return completeParts(env, state, etags)
}

/**
 * Indexes the session's bytes at `at` as `digest` (1 R2 put, conditional). The index had
 * it already (+1 R2 head): a replay of this close (the blob is this session's:
 * BLOB_UPLOAD_UNKNOWN), or another upload of the same bytes won (ours are dropped for an
 * end mark, +1 R2 head +1 R2 put for a session of one write, else +2 R2 puts; the winner is linked).
 * The end is marked (+1 R2 put) unless later steps can tell it otherwise: a session of one
 * write closed with its own algorithm is found in the blob index.
 */
async function publish(env: Env, state: UploadState, digest: Digest, at: string, trusted: boolean): Promise<IndexedBlob> {
  const created = await indexBlob(env, digest, state.repo as Repo, { at, size: state.offset })
  if (!created) {
    const existing = await headBlob(env, digest)
    if (!existing || isUploadKey(existing.at, state.id)) throw unknownUpload(state.id)
    if (state.mp) await deleteParts(env, state)
    if (!(firstOnly(state) && trusted)) {
      await end(env, state, 'duplicate')
    } else {
      // One write, lost to another upload: its bytes become the end mark (`spent` reads it).
      // A replay of this close finds that mark instead of its bytes (+1 R2 head).
      if (await isEnded(env, state, 0)) throw unknownUpload(state.id)
      await putEnd(env, state, 0, 'duplicate', true)
    }
    return existing
  }
  if (!(firstOnly(state) && trusted)) await putEnd(env, state, state.offset, 'closed')
  return created
}

/**
 * Closing a session that received nothing: the empty blob. The end is marked at offset 0
 * first (a replayed or out-of-date state finds it taken), then the blob stored. 2 R2 puts.
 */
async function closeEmpty(env: Env, state: UploadState, digest: Digest): Promise<IndexedBlob> {
  if (!(await putEnd(env, state, 0, 'closed'))) throw await moved(env, state)
  const empty = await hashStream(new Response('').body!, algorithmOf(digest))
  if (empty !== hexOf(digest)) throw digestInvalid(digest)
  return putVerifiedBlob(env, digest, state.repo as Repo, new Uint8Array(0))
}

// ---------------------------------------------------------------------------------------
// cancel

/** DELETE: ends the session wherever it truly stands (1 R2 list), dropping its bytes. */
export async function cancel(env: Env, state: UploadState): Promise<void> {
  await end(env, await truth(env, state), 'cancelled')
}

/**
 * Ends a session that made no blob of its own: the end mark at its offset (1 R2 put), its
 * first write's bytes replaced by one too (+1 R2 put), its parts aborted (free). Later tails
 * (each under a part) are left to the collector: deleting one would free its offset again.
 */
async function end(env: Env, state: UploadState, why: string): Promise<void> {
  await putEnd(env, state, state.offset, why)
  await Promise.all([state.offset > 0 ? putEnd(env, state, 0, why, true) : Promise.resolve(), abortParts(env, state)])
}
