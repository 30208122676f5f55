/**
 * Where an upload's bytes live, and the only module that reads or writes them
 * (keys.ts draws the layout):
 *
 *   tail    data/<id>/<offset>  the bytes not yet in a multipart part, after a JSON list of
 *                               the part etags so far (`skip` bytes)
 *   pieces  data/<id>/<offset>  chunks written after the tail (UploadState.more), each once
 *   claims  data/<id>/<offset>  empty, customMetadata.claim: a request holds this offset while it
 *                               folds the tail and pieces into parts (see `putClaim`)
 *   parts   data/<id>/parts     the R2 multipart upload, or the session's bytes joined at its close
 *   ends    data/<id>/<offset>  empty, customMetadata.ended: the session ended at that offset
 *
 * The invariants the upload path keeps (docs/storage.md, "What is promised"):
 * 1. A write is made once, at the offset its request started at (R2 `onlyIf`), so a second
 *    write at an offset already written, which only a replayed or out-of-date Location can ask
 *    for, is refused by R2 itself.
 * 2. An object holding a session's bytes (a tail, a piece, the joined or completed parts) is
 *    never replaced, and never deleted while any Location of its session verifies: only the
 *    collector deletes it, after the upload expiry, and never one a live blob index entry names.
 *    Only claims (no bytes) are ever replaced: by their holder (with its tail), or once lapsed.
 *    So an index entry that names a session's object always finds the bytes it was given.
 * 3. Every write records the session's progress after it (customMetadata.state): listing a
 *    session gives its true state. Claims and end marks record none.
 * Each function makes the one call its name says, unless its doc line says more.
 */
import type { Algorithm } from '../digest/native'
import type { Env } from '../env'
import { sameWrite } from './blobs'
import { keys, offsetOfUploadKey, uploadIdOf } from './keys'
import { chunksOf, readAtMost, type Carry } from './streams'

/**
 * Where the session's bytes are; also kept with each write (customMetadata), to be read back.
 * Defined here, not in upload/ (which signs the state into every Location): storage knows no session logic.
 */
export interface Progress {
  /** Bytes received so far. */
  offset: number
  /** The algorithm the session hashes (POST `?digest-algorithm=`, sha256 by default). */
  alg: Algorithm
  /** Hex digest (`alg`) of all bytes so far, while one request has sent them all; else absent. */
  sum?: string
  /** A saved hash state, as earlier versions wrote (their WebAssembly hash): now dropped, unread. */
  hs?: string
  /** Offset of the write holding the tail (bytes not yet in a part), -1 when none. */
  at: number
  /** Upload bytes in that tail, after `skip` bytes of part etags (a JSON list). */
  size: number
  skip: number
  /** R2 multipart upload id ('' when none) and the parts it holds. */
  mp: string
  parts: number
  /**
   * Writes after the tail, each its own object, in order ([offset, size]): once there are
   * parts, a chunk that fills none is written once as a piece instead of re-written with
   * the whole tail. Absent when none.
   */
  more?: [number, number][]
}

export interface UploadState extends Progress {
  /** Random session id (the `<uuid>` of the spec's URLs). */
  id: string
  repo: string
  /** Start time, ms since epoch: abandoned sessions are purged by age. */
  started: number
  /** Who opened the session ('' = anonymous, or auth off); only they may continue it. */
  sub?: string
}

/** What every object of a session carries (the collector reads `started`; `mp` lets it abort the parts). */
function metadata(state: UploadState, extra: Record<string, string>): Record<string, string> {
  return { repo: state.repo, started: String(state.started), ...(state.mp ? { mp: state.mp } : {}), ...extra }
}

/** A request's hold on an offset: its claim object's etag (unique: the body is a nonce) and lease end (ms). */
export interface Claim {
  offset: number
  etag: string
  until: number
}

/** The lease end of a claim object, or null for any other object (a released claim has lease 0). */
const leaseOf = (object: R2Object | null): number | null =>
  object?.customMetadata?.claim === undefined ? null : Number(object.customMetadata.claim)

/** Whether an object at an offset holds it: anything but a claim whose lease has run out. */
const holds = (object: R2Object | null): boolean => {
  const lease = leaseOf(object)
  return object !== null && (lease === null || lease > Date.now())
}

/**
 * Puts `body` at the session's offset `offset` unless something holds it (invariant 1); a lapsed
 * claim there (its request gone: released, or past its lease) is replaced, as is a live one when
 * `force` (a cancel). The new object, or null. 1 R2 put; refused: +1 R2 head (+1 R2 put replacing
 * a claim). A stream body cannot be sent twice: it is never retried (no claim is ever at offset 0,
 * the only offset written from a stream).
 */
async function putAt(
  env: Env, state: UploadState, offset: number, body: Uint8Array | string | ReadableStream<Uint8Array> | null, options: R2PutOptions,
  force = false,
): Promise<R2Object | null> {
  const key = keys.uploadWrite(state.id, offset)
  const put = await env.BLOBS.put(key, body, { ...options, onlyIf: { etagDoesNotMatch: '*' } })
  if (put || body instanceof ReadableStream) return put
  const there = await env.BLOBS.head(key)
  if (!there || leaseOf(there) === null || (holds(there) && !force)) return null
  return env.BLOBS.put(key, body, { ...options, onlyIf: sameWrite(there.etag, there.uploaded.getTime()) })
}

/**
 * Writes the session's bytes at `offset` (a tail or a piece), unless something holds it: false
 * then. `after` is the progress once this write is accepted. `claim`: this request's own claim
 * there, which the write replaces (nothing else may). 1 R2 put (see `putAt` when refused).
 * `checksum` lets R2 verify the bytes against a digest the client gave (nothing stored on a mismatch).
 */
export async function putWrite(
  env: Env,
  state: UploadState,
  offset: number,
  body: ReadableStream<Uint8Array> | Uint8Array,
  after: Progress,
  options: { checksum?: { sha256: string } | { sha512: string }; claim?: Claim | null } = {},
): Promise<boolean> {
  const put: R2PutOptions = {
    customMetadata: metadata({ ...state, mp: after.mp }, { state: JSON.stringify(after) }),
    httpMetadata: { contentType: 'application/octet-stream' },
    ...options.checksum,
  }
  if (options.claim) {
    return (await env.BLOBS.put(keys.uploadWrite(state.id, offset), body, { ...put, onlyIf: { etagMatches: options.claim.etag } })) !== null
  }
  return (await putAt(env, state, offset, body, put)) !== null
}

/**
 * Marks the session ended at `offset` (an empty write): no request from a state at that
 * offset can append, close or cancel any more. `force` (a cancel) replaces a live claim there:
 * the request holding it then fails to record its write. Never replaces anything else
 * (invariant 2). 1 R2 put (see `putAt` when refused); false when `offset` is held.
 */
export async function putEnd(env: Env, state: UploadState, offset: number, ended: string, force = false): Promise<boolean> {
  return (await putAt(env, state, offset, null, { customMetadata: metadata(state, { ended }) }, force)) !== null
}

/**
 * Claims the session's `offset` for a write that will touch the multipart parts (or read more
 * than a part's worth back) before it can record itself: no other request can then write
 * there, so no two requests ever upload the same part number at once (a loser's part would
 * replace the winner's, whose recorded etag then no longer matches: a session that can never
 * complete). The claim lasts until `until`; its holder stops touching parts a margin before
 * that (upload/session.ts), after which another request may take the offset over. Null when
 * the offset is held. 1 R2 put (see `putAt` when refused).
 */
export async function putClaim(env: Env, state: UploadState, offset: number, until: number): Promise<Claim | null> {
  const put = await putAt(env, state, offset, crypto.randomUUID(), { customMetadata: metadata(state, { claim: String(until) }) })
  return put ? { offset, etag: put.etag, until } : null
}

/** Gives a claim up (its request failed): the offset is free again; false when it was no longer this claim. 1 R2 put (conditional). */
export async function releaseClaim(env: Env, state: UploadState, claim: Claim): Promise<boolean> {
  return null !== await env.BLOBS.put(keys.uploadWrite(state.id, claim.offset), crypto.randomUUID(), {
    customMetadata: metadata(state, { claim: '0' }),
    onlyIf: { etagMatches: claim.etag },
  })
}

/** Ends the session where this request holds the claim (it found the session over). 1 R2 put (conditional). */
export async function endClaim(env: Env, state: UploadState, claim: Claim, ended: string): Promise<void> {
  await env.BLOBS.put(keys.uploadWrite(state.id, claim.offset), null, {
    customMetadata: metadata(state, { ended }),
    onlyIf: { etagMatches: claim.etag },
  })
}

/**
 * The collector swept a blob whose bytes were a session's first write (offset 0) or its
 * completed parts: marks that session ended where its bytes ended (a session of one write
 * leaves no end mark of its own, see session.ts `closeFirst`), so a replay of its close, or a
 * chunk after it, finds it over (BLOB_UPLOAD_UNKNOWN) instead of indexing bytes that are gone
 * or answering 416 forever. Nothing for other keys. 1 R2 put (conditional: an end mark there stays).
 */
export async function putEndOfCollected(env: Env, at: string, size: number, run: string): Promise<void> {
  if (offsetOfUploadKey(at) !== 0 && at !== keys.uploadParts(uploadIdOf(at))) return
  await env.BLOBS.put(keys.uploadWrite(uploadIdOf(at), size), null, {
    customMetadata: { ended: 'collected', run },
    onlyIf: { etagDoesNotMatch: '*' },
  })
}

/** Whether something holds `offset` (a write, an end mark, a live claim). 1 R2 head. */
export async function isWritten(env: Env, state: UploadState, offset: number): Promise<boolean> {
  return holds(await env.BLOBS.head(keys.uploadWrite(state.id, offset)))
}

/** The write at `offset` (bytes and metadata), or null. 1 R2 get. */
export function getWrite(env: Env, state: UploadState, offset: number): Promise<R2ObjectBody | null> {
  return env.BLOBS.get(keys.uploadWrite(state.id, offset))
}

/** What a session has stored, read back from a listing (see `listSession`). */
export interface Stored {
  /** The progress recorded by the latest write, and the offset it was written at. */
  latest: { offset: number; progress: Progress; size: number } | null
  /** An end mark, or completed parts: the session is over. */
  ended: boolean
}

/**
 * Everything the session wrote from the asking state's own write on, as its latest progress.
 * Writes are keyed by their offset, in order, so nothing before `state.at` can be later: the
 * list starts there (an end mark is always written at or after it, the parts object sorts after
 * every offset). 1 R2 list per 1,000 objects from there: 1 for the latest Location, whatever
 * the session's length; a replayed old Location pays for the writes made since it.
 */
export async function listSession(env: Env, state: UploadState): Promise<Stored> {
  let latest: Stored['latest'] = null
  let ended = false
  let cursor: string | undefined
  const startAfter = state.at > 0 ? keys.uploadWrite(state.id, state.at - 1) : undefined
  do {
    const options: Record<string, unknown> = { prefix: keys.upload(state.id), include: ['customMetadata'] }
    if (cursor) options.cursor = cursor
    else if (startAfter) options.startAfter = startAfter
    const page = await env.BLOBS.list(options as R2ListOptions)
    for (const object of page.objects) {
      const meta = object.customMetadata ?? {}
      if (object.key === keys.uploadParts(state.id) || meta.ended) ended = true
      const offset = offsetOfUploadKey(object.key)
      if (offset === null || !meta.state || (latest && latest.offset > offset)) continue
      latest = { offset, progress: JSON.parse(meta.state) as Progress, size: object.size }
    }
    cursor = page.truncated ? page.cursor : undefined
  } while (cursor)
  return { latest, ended }
}

/**
 * The bytes received but not yet in a part, in order (the tail after its etag list, then
 * each piece), and the part etags; null when the tail or a piece is gone (the session
 * moved on, or ended). 1 R2 get per object, each read as the previous one ends.
 */
export async function readPending(env: Env, state: UploadState): Promise<{ etags: string[]; chunks: AsyncGenerator<Uint8Array> } | null> {
  if (state.at < 0) return { etags: [], chunks: (async function* () {})() }
  const tail = await getWrite(env, state, state.at)
  if (!tail || tail.customMetadata?.ended) return null
  const first = chunksOf(tail.body)
  const carry: Carry = { pending: null }
  const etags: string[] = state.skip ? JSON.parse(new TextDecoder().decode(await readAtMost(first, state.skip, carry))) : []
  async function* chunks(): AsyncGenerator<Uint8Array> {
    if (carry.pending) yield carry.pending
    yield* first
    for (const [offset] of state.more ?? []) {
      const piece = await getWrite(env, state, offset)
      if (!piece) throw new Error('an upload piece is gone')
      yield* chunksOf(piece.body)
    }
  }
  return { etags, chunks: chunks() }
}

/**
 * Deletes the session's completed (or joined) parts object (free): only the close that made it
 * does, before any index entry names it (a digest it refused, or another upload's blob won).
 */
export async function deleteParts(env: Env, state: UploadState): Promise<void> {
  await env.BLOBS.delete(keys.uploadParts(state.id))
}

/** Whether the session's parts were completed or joined (the session is over). 1 R2 head. */
export async function hasParts(env: Env, state: UploadState): Promise<boolean> {
  return (await env.BLOBS.head(keys.uploadParts(state.id))) !== null
}

/** 1 R2 createMultipartUpload: its id. */
export async function startParts(env: Env, state: UploadState): Promise<string> {
  const mp = await env.BLOBS.createMultipartUpload(keys.uploadParts(state.id), {
    httpMetadata: { contentType: 'application/octet-stream' },
    customMetadata: metadata(state, {}),
  })
  return mp.uploadId
}

/** 1 R2 uploadPart: the part's etag. */
export async function putPart(env: Env, state: UploadState, partNumber: number, bytes: Uint8Array): Promise<string> {
  const mp = env.BLOBS.resumeMultipartUpload(keys.uploadParts(state.id), state.mp)
  return (await mp.uploadPart(partNumber, bytes)).etag
}

/** Completes the multipart upload: the key now holding all its bytes. 1 R2 complete. */
export async function completeParts(env: Env, state: UploadState, etags: string[]): Promise<string> {
  const mp = env.BLOBS.resumeMultipartUpload(keys.uploadParts(state.id), state.mp)
  const object = await mp.complete(etags.map((etag, i) => ({ partNumber: i + 1, etag })))
  return object.key
}

/**
 * A session without multipart parts whose bytes are in several objects (its tail and pieces),
 * joined at its close into one object under the parts key (which, like completed parts, ends
 * the session). Made once (conditional): false when the key was taken. 1 R2 put.
 */
export async function putJoined(env: Env, state: UploadState, body: ReadableStream<Uint8Array>): Promise<boolean> {
  const put = await env.BLOBS.put(keys.uploadParts(state.id), body, {
    httpMetadata: { contentType: 'application/octet-stream' },
    customMetadata: metadata(state, {}),
    onlyIf: { etagDoesNotMatch: '*' },
  })
  return put !== null
}

/** Aborts the session's multipart upload (free). */
export async function abortParts(env: Env, state: UploadState): Promise<void> {
  if (state.mp) await env.BLOBS.resumeMultipartUpload(keys.uploadParts(state.id), state.mp).abort().catch(() => {})
}

/** The bytes of an object the session made (a tail, the completed parts), to be hashed again. 1 R2 get. */
export async function readUploaded(env: Env, key: string, skip: number): Promise<ReadableStream<Uint8Array> | null> {
  const object = await env.BLOBS.get(key, skip ? { range: { offset: skip } } : undefined)
  return object?.body ?? null
}

/** The key of a write (for the blob index, which points at where bytes are). */
export const writeKey = (state: UploadState, offset: number): string => keys.uploadWrite(state.id, offset)

/** The key of the session's completed (or joined) parts: a blob's bytes once the session closed. */
export const partsKey = (state: UploadState): string => keys.uploadParts(state.id)
