/**
 * An upload session, as the spec's state machine (distribution-spec "Pushing blobs"):
 *
 *   open    POST                a new state; nothing stored
 *   append  PATCH, a PUT's body bytes at the session's offset
 *   close   PUT ?digest=        the bytes verified and indexed as a blob; the session is over
 *   cancel  DELETE              the session is over
 *   status  GET                 where the session truly stands
 *
 * The client holds the state (state.ts); storage holds the truth (storage/uploads.ts owns
 * where the bytes live, and states the invariants kept here). Each write is made at the offset
 * its request started at, once, and no object holding bytes is ever replaced or deleted while
 * the session can be named. So a state is current exactly while nothing holds its offset and
 * the session has not ended:
 *   - a first write (offset 0) is refused by R2 when offset 0 is taken;
 *   - a later chunk that lands as a piece is refused the same way at its offset;
 *   - a later chunk that folds the tail and pieces into multipart parts first claims its
 *     offset (`putClaim`): it touches no part, and reads nothing back, before it has won it;
 *   - a close of several writes, or with the other algorithm, first puts the end mark at its
 *     offset (the same claim: a concurrent PATCH or close there is refused);
 *   - the common close (one write, its own digest) makes no end mark: the blob index entry
 *     naming that write is how later requests find the session over (`spent`);
 *   - a cancel puts the end mark where the session truly stands.
 * A state found out of date costs one R2 list: `Moved` (416 with the true Range) while
 * the session lives, BLOB_UPLOAD_UNKNOWN once it has ended.
 *
 * What one PATCH may cost, whatever the chunk sizes and concurrency (P = PART_SIZE, 10 MiB;
 * L = the chunk's length, at most MAX_CHUNK_BYTES; see docs/performance.md):
 *   - a first write: 1 R2 put of L bytes; of unknown length or announced chunked beyond
 *     BUFFER_LIMIT: ⌈L/P⌉ uploadParts + 1 createMultipartUpload + 1 R2 put, L bytes written;
 *   - a later chunk that fits a piece (`fitsPiece`: the pieces stay under P bytes and
 *     MAX_PIECES; of unknown length, one that ends within PROBE_BYTES): 1 R2 put of L bytes (+1 R2
 *     head of the blob index after a single write);
 *   - any other later chunk (a fold): 1 R2 put (the claim) + 1 R2 get per tail/piece (at most
 *     1 + MAX_PIECES) + ⌈(T + p + L)/P⌉ uploadParts (+1 createMultipartUpload) + 1 R2 put (the new
 *     tail, under P), where the tail T is under P except a first write sent whole (≤ MAX_CHUNK_BYTES,
 *     read back once per session) and the pieces p are under P: at most 2·(MAX_CHUNK_BYTES + P) + L
 *     bytes moved and MAX_PIECES + 5 + ⌈(MAX_CHUNK_BYTES + P + L)/P⌉ calls;
 *   - refused (its offset held): +1 R2 head (+1 R2 put taking over a lapsed claim) + 1 R2 list.
 * Concurrent requests at one offset: only the one holding it reads back or uploads parts; the
 * others stop at their first write (a claim, a piece: the piece's L bytes at most).
 *
 * Hashing, only with the session's algorithm, natively (digest/native.ts) on the way: a first
 * write records its digest (`sum`), which covers the common flows (one PATCH, or a PUT with
 * the body). The hash's state cannot be saved with the session, so a request that records a
 * write keeps its hash in the isolate's memory for the next one (upload/kept.ts), and the
 * close compares that digest without reading the blob back. A request that finds none (it
 * runs in another isolate, or a request before it failed) hashes nothing, and then:
 *   - the first fold of a session whose bytes are all in its first write and the pieces after
 *     it starts a hash from them, as it reads them anyway to fold them into parts (no added call);
 *   - a session never folded (a first write and pieces) is hashed at the close as its bytes
 *     are joined into one object;
 *   - any other session (its bytes in multipart parts), or a close with the other algorithm, is
 *     hashed once at the close by reading the blob back (+1 R2 get of the whole blob).
 */
import type { Algorithm } from '../digest/native'
import { hashStream, NativeHash } from '../digest/native'
import { RegistryError } from '../errors'
import { countBodyBytes } from '../log'
import type { Env } from '../env'
import { algorithmOf, hexOf, type Digest, type Repo } from '../names'
import { headBlob, headBlobOrSlot, indexBlob, putBlobIfAbsent, putVerifiedBlob, type IndexedBlob } from '../storage/blobs'
import { isUploadKey } from '../storage/keys'
import { batched, concat, readAtMost, type Carry } from '../storage/streams'
import {
  abortParts, completeParts, deleteParts, endClaim, hasParts, isWritten, listSession, partsKey, putClaim, putEnd, putJoined, putPart,
  putWrite, readPending, readUploaded, releaseClaim, writeKey, type Claim,
} from '../storage/uploads'
import { keep, peek, take } from './kept'
import { PART_SIZE, PartWriter } from './parts'
import {
  MAX_SESSION_AGE_MS, newUploadState, unknownUpload, withProgress, type Progress, type UploadState,
} from './state'

export { PART_SIZE } from './parts'
/** A first write up to this size that announces more chunks (Content-Range) stays one tail object. */
export const BUFFER_LIMIT = 8 * 1024 * 1024
/** Bytes hashed and written at a time (see streams.ts `batched`). */
const BATCH_SIZE = 1024 * 1024
/** Pieces a session keeps before the next chunk folds them (bounds the state's size and a fold's reads). */
export const MAX_PIECES = 32
/** A later chunk of unknown length is read up to this much before it is known to be small (a piece) or not. */
const PROBE_BYTES = 1024 * 1024
/**
 * A fold's claim on its offset lasts LEASE_BASE_MS plus its bytes (read back and received) at
 * LEASE_BYTES_PER_SECOND; the fold starts no part upload in the last LEASE_MARGIN_MS of it, and
 * another request may take the offset over once it has run out (a request that died holding it).
 */
export const LEASE_BASE_MS = 120_000
export const LEASE_BYTES_PER_SECOND = 64 * 1024
export const LEASE_MARGIN_MS = 60_000

/**
 * The chunk size this registry asks clients to send at least (OCI-Chunk-Min-Length, spec
 * "Pushing a blob in chunks": every chunk but the last SHOULD be at least this long): a
 * multipart part, so that each chunk fills whole parts and none re-reads a remainder. Smaller
 * chunks still work (pieces, `fitsPiece`). None when the request limit is under a part: no
 * chunk could fill one, and any size works as well as another.
 */
export const chunkMinLength = (maxChunkBytes: number): number | null => (maxChunkBytes >= PART_SIZE ? PART_SIZE : null)

/** A request body to append: `length` null when the client did not say (chunked encoding). */
export interface Body {
  stream: ReadableStream<Uint8Array> | null
  length: number | null
  /** The client sends the blob in several requests (it gave a Content-Range). */
  chunked: boolean
  /** MAX_CHUNK_BYTES. */
  limit: number
  /** Bytes of the body read so far (what a refusal has left to drop: routes/uploads.ts `readOrDiscard`). */
  received?: number
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
/** R2's refusal of a put whose `sha256`/`sha512` checksum the bytes do not have: BadDigest, code 10037 ("The SHA-256 checksum you specified did not match what we received"). */
const isChecksumMismatch = (err: unknown) => !(err instanceof RegistryError) && /checksum|digest|10037/i.test(String(err))
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
 * reading that write again when neither it nor the asking Location recorded its digest, nor
 * this isolate kept its hash: a first write streamed with its length, asked about from the
 * POST's Location).
 */
async function truth(env: Env, state: UploadState): Promise<UploadState> {
  const stored = await listSession(env, state)
  if (stored.ended) throw unknownUpload(state.id)
  const latest = stored.latest ? withProgress(state, stored.latest.progress) : withProgress(state, fresh(state.alg))
  // A first write streamed with its length records no digest (it is known only once the bytes
  // are in), but the reply to that write carried it: a Location at that same state still knows
  // it (signed by us), so a storm of requests from it never reads the write back.
  if (latest.sum === undefined && firstOnly(latest) && firstOnly(state) && state.sum && state.offset === latest.offset && state.alg === latest.alg) {
    latest.sum = state.sum
  }
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

/**
 * After R2 refused or failed a call on the session's parts: `moved` when another request moved
 * the session on or ended it (it completed or aborted the parts), else R2's own `err` (500
 * UNKNOWN): the session stands where the client said, so a 416 or 404 would blame it. 1 R2 list.
 */
async function movedOr(env: Env, state: UploadState, err: unknown): Promise<unknown> {
  const truth = await moved(env, state)
  return truth instanceof Moved && truth.truth.offset === state.offset ? err : truth
}

const fresh = (alg: Algorithm): Progress => ({ offset: 0, alg, at: -1, size: 0, skip: 0, mp: '', parts: 0 })

/** Whether all bytes so far came in the first write, whose object (offset 0) is then the tail. */
const firstOnly = (s: UploadState): boolean => s.offset > 0 && s.at === 0 && !s.more?.length

/** Bytes received but not yet in a part: the tail and the pieces after it. */
const pendingBytes = (s: UploadState): number => s.size + (s.more ?? []).reduce((n, [, size]) => n + size, 0)

/**
 * Whether a session of one write is over: the index entry of its digest names that write (the
 * common close leaves no end mark; every other ending does, at the last offset, which the
 * caller finds by its own write or head there). 0 calls, or 1 R2 head (+1 R2 get when the
 * write recorded no digest and this isolate keeps no hash of it).
 */
async function spent(env: Env, s: UploadState): Promise<boolean> {
  if (!firstOnly(s)) return false
  let sum = s.sum ?? peek(s)?.hex()
  if (sum === undefined) {
    if (s.mp) return false // a first write through parts always records its digest
    const bytes = await readUploaded(env, writeKey(s, 0), 0)
    if (!bytes) return false
    sum = await hashStream(bytes, s.alg)
  }
  const blob = await headBlob(env, `${s.alg}:${sum}` as Digest)
  return blob !== null && isUploadKey(blob.at, s.id)
}

// ---------------------------------------------------------------------------------------
// append

/**
 * PATCH (or a PUT's body): appends the body at the state's offset; the new state. An empty
 * body touches no storage. The calls and bytes each kind of write may cost are at the top.
 * - first write, known length (one PATCH, as skopeo, crane): 1 R2 put, hashed on the way;
 * - first write of unknown length (docker, podman), or of a chunked upload beyond
 *   BUFFER_LIMIT: one uploadPart per PART_SIZE (+1 createMultipartUpload) + 1 R2 put;
 * - a later chunk that fits a piece: 1 R2 put (+1 R2 head of the blob index after a single write);
 * - other later chunks: a fold (`claimFold`, then `appendThroughParts`).
 */
export async function append(env: Env, state: UploadState, body: Body): Promise<UploadState> {
  if (body.length !== null && body.length > body.limit) throw chunkTooLarge(body.limit)
  const chunks = await nonEmpty(body)
  if (!chunks) return state
  if (state.offset === 0) {
    // A first write needs no look: its write at offset 0 is refused if that offset is taken
    // (a multipart upload it started meanwhile is then aborted; it is its own, no other's).
    if (body.length !== null && !(body.chunked && body.length > BUFFER_LIMIT)) {
      return appendFirst(env, state, chunks, body.length)
    }
    return appendThroughParts(env, state, chunks, null)
  }
  // A chunk of unknown length that turns out small is read whole first: it may land as a piece.
  const { length, rest } = body.length === null ? await probe(chunks, PROBE_BYTES) : { length: body.length, rest: chunks }
  if (length !== null && fitsPiece(state, length)) return appendPiece(env, state, rest, length)
  return appendThroughParts(env, state, rest, await claimFold(env, state, body))
}

/**
 * The body's length when it ends within `limit` bytes (read into memory), else null; and its
 * chunks, the ones read first included.
 */
async function probe(chunks: AsyncGenerator<Uint8Array>, limit: number): Promise<{ length: number | null; rest: AsyncGenerator<Uint8Array> }> {
  const read: Uint8Array[] = []
  let length = 0
  for (;;) {
    const next = await chunks.next()
    if (next.done) return { length, rest: (async function* () { yield* read })() }
    read.push(next.value)
    length += next.value.byteLength
    if (length > limit) break
  }
  return {
    length: null,
    rest: (async function* () {
      yield* read.splice(0)
      yield* chunks
    })(),
  }
}

/**
 * Whether a later chunk of `length` bytes is written once, as a piece, rather than folding the
 * tail and pieces into parts: while the pieces stay under MAX_PIECES and a part's worth of bytes,
 * and either the bytes not yet in parts stay under a part (a fold would fill none) or the tail
 * alone is a part or more (a first write sent whole: folding it for a small chunk would read
 * all of it back). So a small chunk never re-reads nor re-writes the tail (issue 20).
 */
function fitsPiece(s: UploadState, length: number): boolean {
  const pieces = s.more ?? []
  const after = pieces.reduce((n, [, size]) => n + size, 0) + length
  return pieces.length < MAX_PIECES && after < PART_SIZE && (s.size + after < PART_SIZE || s.size >= PART_SIZE)
}

/**
 * Claims the state's offset for a fold (storage/uploads.ts `putClaim`) and, meanwhile, checks
 * whether a state continuing the only write so far is a blob already (`spent`: the session
 * then ends here). The lease covers the bytes the fold reads back and receives. 1 R2 put (+1 R2 head).
 */
async function claimFold(env: Env, state: UploadState, body: Body): Promise<Claim> {
  const bytes = pendingBytes(state) + (body.length ?? body.limit)
  const until = Date.now() + LEASE_BASE_MS + Math.ceil((bytes / LEASE_BYTES_PER_SECOND) * 1000)
  const claiming = putClaim(env, state, state.offset, until)
  const [claim, over] = await Promise.all([claiming, spent(env, state)]).catch(async (err) => {
    // R2 failed the look: give the claim up, or it holds the offset (every retry 416) for its lease.
    const held = await claiming.catch(() => null)
    if (held) await releaseClaim(env, state, held)
    throw err
  })
  if (!claim) throw await moved(env, state)
  if (over) {
    await endClaim(env, state, claim, 'closed')
    throw unknownUpload(state.id)
  }
  return claim
}

/** The body's chunks, counted against its length and the limit; null for an empty body (nothing read from storage). */
async function nonEmpty(body: Body): Promise<AsyncGenerator<Uint8Array> | null> {
  if (!body.stream || body.length === 0) return null
  const chunks = counted(batched(body.stream, BATCH_SIZE), body)
  const first = await chunks.next()
  if (first.done) return null
  return (async function* () {
    yield first.value
    yield* chunks
  })()
}

/** The client's body in chunks; how it fails is always a RegistryError (a body that broke off: BLOB_UPLOAD_INVALID). */
async function* counted(chunks: AsyncIterable<Uint8Array>, body: Body): AsyncGenerator<Uint8Array> {
  let received = 0
  try {
    for await (const chunk of chunks) {
      received += chunk.byteLength
      body.received = received
      countBodyBytes(chunk.byteLength)   // the log line's bytesIn when the body has no Content-Length
      if (body.length !== null && received > body.length) throw new RegistryError('SIZE_INVALID', 'body longer than Content-Length')
      // A body of unknown length is refused as soon as it passes the limit; the session
      // still stands where it was (nothing is written at its offset yet).
      if (received > body.limit) throw chunkTooLarge(body.limit)
      yield chunk
    }
  } catch (err) {
    throw err instanceof RegistryError ? err : cutOff()
  }
  if (body.length !== null && received !== body.length) throw new RegistryError('SIZE_INVALID', 'body shorter than Content-Length')
}

/**
 * `chunks` as they come, and whether they themselves failed (the client's body, or the
 * session's bytes read back from R2), as against what consumed them. A write R2 failed to take
 * while its bytes came whole is the registry's failure: rethrown as it is, it answers 500
 * UNKNOWN (as distribution answers a storage driver's error) with R2's error on the log line,
 * never a 4xx that blames the client; the session stays where it was.
 */
function watched(chunks: AsyncIterable<Uint8Array>): { chunks: AsyncGenerator<Uint8Array>; broke: () => boolean } {
  let broke = false
  return {
    chunks: (async function* () {
      try {
        yield* chunks
      } catch (err) {
        broke = true
        throw err
      }
    })(),
    broke: () => broke,
  }
}

/**
 * A first write of known length: streamed into one object at offset 0, hashed on the way.
 * 1 R2 put. (Its recorded progress has no digest: a state read back from it goes on unhashed.)
 */
async function appendFirst(env: Env, state: UploadState, chunks: AsyncIterable<Uint8Array>, length: number): Promise<UploadState> {
  const hash = new NativeHash(state.alg)
  const after: Progress = { ...fresh(state.alg), offset: length, at: 0, size: length }
  const written = await streamInto(length, chunks, (piece) => hash.update(piece), (readable) => putWrite(env, state, 0, readable, after))
  if (!written) throw await moved(env, state)
  keep(state, length, hash)
  return withProgress(state, { ...after, sum: hash.hex() })
}

/**
 * Streams `chunks` (exactly `length` bytes) into the write `put` makes; false when R2
 * refused the write (its offset was taken). Chunks that fail throw their own error (a client's
 * body: its RegistryError, see counted); a write R2 failed while the chunks came whole throws
 * R2's error (see watched).
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
  const source = watched(chunks)
  const feeding = (async () => {
    try {
      for await (const piece of source.chunks) {
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
  if (fed.status === 'rejected' && (source.broke() || wrote.status === 'fulfilled')) throw fed.reason
  if (wrote.status === 'rejected') throw wrote.reason
  return true
}

/**
 * A later chunk that fits a piece (`fitsPiece`) is written once, at its offset, as it came;
 * the kept hash goes on with it once the write holds the offset. 1 R2 put (+1 R2 head of the
 * blob index after a single write).
 */
async function appendPiece(env: Env, state: UploadState, chunks: AsyncIterable<Uint8Array>, length: number): Promise<UploadState> {
  const pieces: Uint8Array[] = []
  for await (const chunk of chunks) pieces.push(chunk)
  const bytes = concat(pieces)
  // Continuing the only write so far, which may be a blob already: the session is over then.
  // Looked at once the body is in, just before the write: a close of that one write (which
  // marks no end) while a slow body came would otherwise be followed by this piece.
  if (await spent(env, state)) throw unknownUpload(state.id)
  const after: Progress = {
    ...later(state),
    offset: state.offset + length,
    more: [...(state.more ?? []), [state.offset, length]],
  }
  if (!(await putWrite(env, state, state.offset, bytes, after))) throw await moved(env, state)
  const hash = take(state)
  if (hash) {
    hash.update(bytes)
    keep(state, after.offset, hash)
  }
  return withProgress(state, after)
}

/** The progress of a state about to take bytes from another request: its digest no longer covers them. */
function later(state: UploadState): Progress {
  const { offset, alg, at, size, skip, mp, parts, more } = state
  return { offset, alg, at, size, skip, mp, parts, ...(more ? { more } : {}) }
}

/**
 * The bytes not yet in a part (tail and pieces), then the body, through PART_SIZE parts; what
 * fills no part becomes the new tail, written at the state's offset (after the etag list). A
 * later chunk holds `claim` on that offset (`claimFold`) before it reads back or touches a part,
 * and its tail replaces the claim; a first write (no claim) streams into a multipart upload of
 * its own. The body is hashed on the way: a first write with a new hash, a later one with the
 * kept hash of the bytes before it (taken once the claim is held); without one, a state whose
 * bytes so far are all in the first write and the pieces after it (no parts) starts one from
 * them as they are read.
 */
async function appendThroughParts(
  env: Env, state: UploadState, chunks: AsyncIterable<Uint8Array>, claim: Claim | null,
): Promise<UploadState> {
  // R2 failing to read the pending bytes must not leave the claim holding the offset for its lease.
  const pending = await readPending(env, state).catch(async (err) => {
    if (claim) await releaseClaim(env, state, claim)
    throw err
  })
  if (!pending) {
    if (claim) await releaseClaim(env, state, claim)
    throw await moved(env, state)
  }
  const first = state.offset === 0
  const kept = first ? null : take(state)
  const rehash = !first && !kept && state.at === 0 && !state.mp
  const hash = first || rehash ? new NativeHash(state.alg) : kept
  const parts = new PartWriter(env, state, pending.etags, claim ? claim.until - LEASE_MARGIN_MS : Infinity)
  let received = 0
  const body = watched(chunks)
  try {
    let stored = 0
    for await (const chunk of pending.chunks) {
      stored += chunk.byteLength
      if (rehash) hash!.update(chunk)
      await parts.push(chunk)
    }
    // A kept hash covers the bytes as they came: what goes into parts must be all of them.
    if (stored !== pendingBytes(state)) throw new Error(`the session's stored bytes read back as ${stored} bytes, not ${pendingBytes(state)}`)
    for await (const chunk of body.chunks) {
      hash?.update(chunk)
      received += chunk.byteLength
      await parts.push(chunk)
    }
    await parts.settle()
  } catch (err) {
    // A part still uploading (the body broke off while the next one filled) must land before the
    // claim is given up: landing after a retry's upload of the same part number, it would replace
    // that part, whose recorded etag then no longer matches (a session that can never complete).
    await parts.settle().catch(() => {})
    // A multipart upload this request started is named by no state: abort it (free).
    if (parts.started) await abortParts(env, { ...state, mp: parts.mp })
    if (claim) await releaseClaim(env, state, claim)
    // The body's own failure, the chunk's deadline, or (with no upload of the session's yet to
    // be refused) R2 failing to take what came whole (see watched).
    if (err instanceof RegistryError || body.broke() || !state.mp) throw err
    // R2 refused a part of the session's upload: a close or cancel completed or aborted it
    // meanwhile (however much of the body had arrived: reads of 1 MiB often hold it all by then),
    // or R2 itself failed (the tail's read, a part upload) with the session where it was.
    throw await movedOr(env, state, err)
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
    ...(first ? { sum: hash!.hex() } : {}),
  }
  delete after.more // the pieces are in the new tail or parts now
  const wrote = await putWrite(env, state, state.offset, concat([list, rest]), after, { claim }).catch(async (err) => {
    // R2 failed to record the write: free the offset, and abort the parts this request started
    // (named by no state), unless the write landed after all (the claim is gone, offset 0 taken).
    const free = claim ? await releaseClaim(env, state, claim) : !(await isWritten(env, state, state.offset))
    if (free && parts.started) await abortParts(env, { ...state, mp: parts.mp })
    throw err
  })
  if (!wrote) {
    // Offset 0 was taken, or a cancel (or, past its lease, another request) took the claim over.
    if (parts.started) await abortParts(env, { ...state, mp: parts.mp })
    throw await moved(env, state)
  }
  if (hash) keep(state, after.offset, hash)
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
      putWrite(env, state, 0, readable, after, { checksum: alg === 'sha256' ? { sha256: hexOf(digest) } : { sha512: hexOf(digest) } }))
  } catch (err) {
    // R2 checks the checksum before the condition: a replayed or out-of-date state is told so first (+1 R2 head).
    if (await isWritten(env, state, 0)) throw await moved(env, state)
    // The whole body arrived and R2 refused it for its checksum; any other failure of R2's is the registry's (see watched).
    if (received === length && isChecksumMismatch(err)) throw digestInvalid(digest)
    throw err
  }
  if (!written) throw await moved(env, state)
  return publish(env, withProgress(state, after), digest, writeKey(state, 0), false)
}

/**
 * PUT ?digest=: verifies the bytes received against `digest`, makes them a blob (or finds
 * the copy that already is one) and ends the session. The caller links it.
 * - one write, closed with its own digest (`closeFirst`): 1 R2 head + 1 R2 put (index);
 *   through parts: + 1 R2 get (tail) + 1 uploadPart + 1 complete;
 * - any other close first puts the end mark at the offset (1 R2 put: the session is over,
 *   and no concurrent request at this offset can touch its parts or name its bytes), then
 *   makes one object of the bytes: the tail as it is, the parts completed (1 R2 get per
 *   tail/piece + uploadParts for the bytes not yet in a part, under 2 parts + 1 complete), or
 *   the tail and pieces of a session without parts joined (1 R2 get each + 1 R2 put); then
 *   indexes it (1 R2 put). Verified by the state's resumable hash; without one (see the top),
 *   as the bytes are joined, or (closed with the other algorithm, or in parts) +1 R2 get
 *   reading them back once to hash them.
 */
export async function close(env: Env, state: UploadState, digest: Digest): Promise<IndexedBlob> {
  if (state.offset === 0) return closeEmpty(env, state, digest)
  const alg = algorithmOf(digest)
  const sum = state.alg !== alg ? undefined : state.sum ?? peek(state)?.hex()
  if (firstOnly(state) && sum === hexOf(digest)) return closeFirst(env, state, digest)
  // The only write so far may be a blob already, whatever digest this request names: a replay.
  if (await spent(env, state)) throw unknownUpload(state.id)
  if (!(await putEnd(env, state, state.offset, 'closed'))) throw await moved(env, state)
  take(state) // the session is over: its kept hash is of no more use
  if (sum !== undefined && sum !== hexOf(digest)) {
    await abortParts(env, state)
    throw digestInvalid(digest)
  }
  const bytes = await gather(env, state, sum === undefined ? alg : null)
  if (sum === undefined) {
    const actual = bytes.sum ?? (await hashUploaded(env, bytes.at, alg))
    if (actual !== hexOf(digest)) {
      if (bytes.at === partsKey(state)) await deleteParts(env, state)
      throw digestInvalid(digest)
    }
    // A session's first write may be named by one index entry only, its own algorithm's
    // (`closeFirst` may be naming it right now, unclaimed): under another digest, a copy.
    if (alg !== state.alg && bytes.at === writeKey(state, 0)) return copyAsBlob(env, state, digest, bytes.at)
  }
  return publish(env, state, digest, bytes.at, true)
}

/**
 * The common close (skopeo, crane, docker, podman: one PATCH, then PUT): the session's only
 * write holds its bytes, and their digest, recorded as they came, is the one asked. 1 R2 head
 * (nothing at the offset) + 1 R2 put (the index entry); in parts (docker): + 1 R2 get (the tail)
 * + 1 uploadPart + 1 complete. No end mark: the index entry naming the write is how later
 * requests find the session over (`spent`), and since no write holding bytes is ever replaced
 * (storage/uploads.ts, invariant 2), nothing another request does can empty what it names.
 */
async function closeFirst(env: Env, state: UploadState, digest: Digest): Promise<IndexedBlob> {
  take(state) // the digest is the state's own: the kept hash is of no more use
  if (await isWritten(env, state, state.offset)) throw await moved(env, state)
  let at = writeKey(state, 0)
  if (state.mp) {
    try {
      at = await completeUpload(env, state)
    } catch (err) {
      throw await movedOr(env, state, err) // the parts were completed, or taken on, by a request before this one
    }
  }
  return publish(env, state, digest, at, false)
}

/**
 * The session's bytes as one object (its end mark is placed: no other request touches them):
 * the tail as it is, the parts completed, or the tail and pieces joined under the parts key,
 * hashed with `alg` on the way when given (`sum`).
 */
async function gather(env: Env, state: UploadState, alg: Algorithm | null): Promise<{ at: string; sum?: string }> {
  if (state.mp) {
    try {
      return { at: await completeUpload(env, state) }
    } catch (err) {
      await abortParts(env, state)
      // Completed by a close before this one (BLOB_UPLOAD_UNKNOWN), else R2's own failure (500, logged).
      throw (await hasParts(env, state)) ? await moved(env, state) : err
    }
  }
  if (!state.more?.length) return { at: writeKey(state, state.at) }
  const pending = await readPending(env, state)
  if (!pending) throw await moved(env, state)
  const hash = alg ? new NativeHash(alg) : null
  const joined = await streamInto(state.offset, pending.chunks, (piece) => hash?.update(piece), (readable) => putJoined(env, state, readable))
  if (!joined) throw await moved(env, state)
  return { at: partsKey(state), ...(hash ? { sum: hash.hex() } : {}) }
}

/** Hex digest (`alg`) of an object the session made. 1 R2 get, its bytes read once. */
async function hashUploaded(env: Env, at: string, alg: Algorithm): Promise<string | null> {
  const bytes = await readUploaded(env, at, 0)
  return bytes ? hashStream(bytes, alg) : null
}

/**
 * The bytes not yet in a part, as parts of PART_SIZE (the last shorter), then the multipart
 * upload completed: its key. 1 R2 get per tail/piece, 1 uploadPart per part (at most 2: a
 * session with parts keeps less than a part pending), 1 complete.
 */
async function completeUpload(env: Env, state: UploadState): Promise<string> {
  const pending = await readPending(env, state)
  if (!pending) throw new Error('the tail is gone')
  const etags = pending.etags
  const carry: Carry = { pending: null }
  for (let left = pendingBytes(state); left > 0; left -= PART_SIZE) {
    const part = await readAtMost(pending.chunks, Math.min(left, PART_SIZE), carry)
    etags.push(await putPart(env, state, etags.length + 1, part))
  }
  return completeParts(env, state, etags)
}

/**
 * A session of one write closed with the other algorithm's digest (verified): the bytes are
 * copied under the blob's own key (R2 checking the checksum) rather than named where they are,
 * or the live blob of that digest is used. 1 R2 head (+1 R2 get + 1 R2 put: the copy).
 */
async function copyAsBlob(env: Env, state: UploadState, digest: Digest, at: string): Promise<IndexedBlob> {
  const { blob, onlyIf } = await headBlobOrSlot(env, digest)
  if (blob) return blob
  const bytes = await readUploaded(env, at, 0)
  if (!bytes) throw await moved(env, state)
  const copied = await putBlobIfAbsent(env, digest, state.repo as Repo, bytes.pipeThrough(new FixedLengthStream(state.offset)), onlyIf)
  const winner = copied ?? (await headBlob(env, digest))
  if (!winner) throw await moved(env, state)
  return winner
}

/**
 * Indexes the session's bytes at `at` as `digest` (1 R2 put, conditional). The index had
 * it already (+1 R2 head): a replay of this close (the blob is this session's:
 * BLOB_UPLOAD_UNKNOWN), or another upload of the same bytes won: the winner is linked, our
 * completed or joined parts are deleted (named by nothing), a first write is left to the
 * collector (never replaced: invariant 2), and the session ends (+1 R2 put, unless `claimed`:
 * its end mark is there already).
 */
async function publish(env: Env, state: UploadState, digest: Digest, at: string, claimed: boolean): Promise<IndexedBlob> {
  // A close that began before the upload expiry (its body, or storage, slow) names nothing after
  // it: the collector may be deleting the session's objects then (state.ts EXPIRY_MARGIN_MS).
  if (Date.now() - state.started > MAX_SESSION_AGE_MS) throw unknownUpload(state.id)
  const created = await indexBlob(env, digest, state.repo as Repo, { at, size: state.offset })
  if (created) return created
  const existing = await headBlob(env, digest)
  if (!existing || isUploadKey(existing.at, state.id)) throw unknownUpload(state.id)
  if (at === partsKey(state)) await deleteParts(env, state)
  if (!claimed) await putEnd(env, state, state.offset, 'duplicate')
  return existing
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

/**
 * DELETE: ends the session where it truly stands (1 R2 list + 1 R2 put, the end mark), and
 * aborts its multipart upload (free). A request holding the offset meanwhile (a fold's claim)
 * loses it: its write is refused. The bytes already written stay for the collector (never
 * deleted while a Location of the session verifies: that would free their offset again).
 */
export async function cancel(env: Env, state: UploadState): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const now = await truth(env, state)
    if (await putEnd(env, now, now.offset, 'cancelled', true)) {
      take(now)
      return abortParts(env, now)
    }
  }
  throw await moved(env, state) // a session moving on faster than it can be read: 416 with where it is
}
