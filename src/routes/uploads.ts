/**
 * /v2/<name>/blobs/uploads/: starting, mounting, feeding, finishing and cancelling
 * uploads (spec "Pushing blobs"). The session's steps are upload/session.ts; its state is
 * client-held (upload/state.ts) but storage's view is authoritative.
 */
import type { IRequest } from 'itty-router'
import { RegistryError } from '../errors'
import type { Ctx } from '../http/context'
import { contentLength, parseContentRange, progressRange } from '../http/ranges'
import { algorithmOf, parseDigest, parseRepo, tryDigest, type Digest, type Repo } from '../names'
import { headBlob, type BlobLocation } from '../storage/blobs'
import { readBlobLinkConfirmed } from '../storage/links'
import { localName } from '../proxy/layer'
import { uploadSecret } from '../storage/secrets'
import type { Algorithm } from '../digest/native'
import { storeWithDigest } from '../upload/monolithic'
import { discard } from '../storage/streams'
import {
  append, cancel as cancelSession, chunkMinLength, chunkTooLarge, close, closeWhole, moved, Moved, open, status as sessionStatus, type Body,
} from '../upload/session'
import { unknownUpload, uploadLocation, verifyState, type UploadState } from '../upload/state'

/**
 * POST: mount (1-2 reads + 1 KV put), monolithic (see storeWithDigest + 1 KV put),
 * or a new session (no storage call: its state is in the Location).
 */
export async function start(req: IRequest, c: Ctx): Promise<Response> {
  const repo = parseRepo(req.params.name)
  const url = new URL(req.url)
  const alg = digestAlgorithm(url.searchParams.get('digest-algorithm'))
  const mount = url.searchParams.get('mount')
  if (mount !== null) {
    const mounted = await tryMount(c, url, repo, tryDigest(mount), url.searchParams.get('from'))
    if (mounted) return mounted
  }
  const digestParam = url.searchParams.get('digest')
  if (digestParam !== null) {
    const digest = parseDigest(digestParam)
    const length = withinLimit(req, c, contentLength(req.headers))
    if (length !== null) return linked(c, repo, digest, await storeWithDigest(c.env, repo, digest, req.body, length))
    const state = open(repo, c.auth?.sub, algorithmOf(digest))
    const received = await readOrDiscard(bodyOf(req, c, null), (body) => append(c.env, state, body))
    return linked(c, repo, digest, await close(c.env, received, digest))
  }
  const opened = await progress(c, open(repo, c.auth?.sub, alg), 202)
  // Clients that know this header (Cloudflare's proposal to the OCI) keep each request under it.
  opened.headers.set('OCI-Chunk-Max-Length', String(c.settings.MAX_CHUNK_BYTES))
  // spec "Pushing a blob in chunks": every chunk but the last SHOULD be at least this long.
  const min = chunkMinLength(c.settings.MAX_CHUNK_BYTES)
  if (min !== null) opened.headers.set('OCI-Chunk-Min-Length', String(min))
  return opened
}

/** `?digest-algorithm=` (distribution-spec end-4c): the algorithm the session will be closed with. */
function digestAlgorithm(value: string | null): Algorithm {
  if (value === null || value === 'sha256') return 'sha256'
  if (value === 'sha512') return 'sha512'
  // spec "Pushing blobs": an unsupported algorithm SHOULD answer 400.
  throw new RegistryError('DIGEST_INVALID', { 'digest-algorithm': value.slice(0, 100), supported: ['sha256', 'sha512'] })
}

/**
 * A declared body length, refused with 413 before any byte is read when over MAX_CHUNK_BYTES.
 * The body is cancelled first: the runtime then stops taking it, and wrangler dev, which reads
 * an unread body to its end before answering, answers at once.
 */
function withinLimit(req: IRequest, c: Ctx, length: number | null): number | null {
  if (length === null || length <= c.settings.MAX_CHUNK_BYTES) return length
  req.body?.cancel().catch(() => {})
  throw chunkTooLarge(c.settings.MAX_CHUNK_BYTES)
}

/**
 * `work` on the request's body; a refusal of a body read in part (a PATCH that lost its offset,
 * a session ended meanwhile) is answered once the rest is read and dropped (storage/streams.ts
 * `discard`: the body stays within MAX_CHUNK_BYTES in all, while it keeps coming, ≤ 30 s), so the
 * answer is not lost to a reset; a body past the limit is cancelled (the 413 goes at once, as in
 * withinLimit).
 */
async function readOrDiscard<T>(body: Body, work: (body: Body) => Promise<T>): Promise<T> {
  try {
    return await work(body)
  } catch (err) {
    if (!body.stream) throw err
    if (err instanceof RegistryError && err.options.status === 413) body.stream.cancel().catch(() => {})
    else await discard(body.stream, body.limit - (body.received ?? 0), DISCARD_IDLE_MS, DISCARD_MAX_MS)
    throw err
  }
}

/** How long a refused body may pause, and take in all, before it is cancelled rather than read to its end. */
const DISCARD_IDLE_MS = 2_000
const DISCARD_MAX_MS = 30_000

function bodyOf(req: IRequest, c: Ctx, length: number | null, chunked = false): Body {
  return { stream: req.body, length, chunked, limit: c.settings.MAX_CHUNK_BYTES }
}
/**
 * Mount from `from`, or (no `from`) any blob the registry holds; null: fall back to an upload.
 * With auth on, the caller must be able to pull `from` (or, without `from`, the blob's first
 * repository): otherwise the same 202 as for an unknown blob, so a mount reveals nothing.
 */
async function tryMount(c: Ctx, url: URL, repo: Repo, digest: Digest | null, from: string | null): Promise<Response | null> {
  if (!digest) return null
  const mayPull = (source: string) => !c.auth || c.auth.can(source, 'pull')
  let blob: BlobLocation | null
  if (from !== null) {
    let source: Repo
    try {
      // The name the client knows it by: a proxied one stands for its local repository.
      source = parseRepo(localName(c.env, url, parseRepo(from)))
    } catch {
      return null
    }
    if (!mayPull(source)) return null
    blob = await readBlobLinkConfirmed(c.env, c, source, digest)          // cache or KV get, R2 head on a miss
    return blob ? linked(c, repo, digest, blob, source) : null
  }
  const indexed = await headBlob(c.env, digest)                            // R2 head
  blob = indexed && mayPull(indexed.repo) ? indexed : null
  return blob ? linked(c, repo, digest, blob, indexed!.repo as Repo) : null
}

/** GET: where the session truly stands, whichever of its Locations asks (1 R2 list). */
export async function status(req: IRequest, c: Ctx): Promise<Response> {
  return answer(c, async () => progress(c, await sessionStatus(c.env, await session(req, c)), 204))
}

/** PATCH: see upload/session.ts `append`. */
export async function patch(req: IRequest, c: Ctx): Promise<Response> {
  return answer(c, async () => {
    const state = await session(req, c)
    const length = withinLimit(req, c, await chunkLength(req, c, state))
    const chunked = req.headers.has('content-range')
    return progress(c, await readOrDiscard(bodyOf(req, c, length, chunked), (body) => append(c.env, state, body)), 202)
  })
}

/** PUT ?digest=: the last chunk (optional), then verify, index and link (1 KV put). */
export async function finish(req: IRequest, c: Ctx): Promise<Response> {
  return answer(c, async () => {
    const state = await session(req, c)
    const digest = parseDigest(new URL(req.url).searchParams.get('digest'))
    const length = withinLimit(req, c, await chunkLength(req, c, state))
    const repo = state.repo as Repo
    if (state.offset === 0 && length !== null && length > 0 && req.body) {
      return linked(c, repo, digest, await readOrDiscard(bodyOf(req, c, length), (body) => closeWhole(c.env, state, digest, body)))
    }
    const received = await readOrDiscard(bodyOf(req, c, length), (body) => append(c.env, state, body))
    return linked(c, repo, digest, await close(c.env, received, digest))
  })
}

/** DELETE: ends the session wherever it stands (1 R2 list + 1-2 R2 puts marking the end); its bytes are deleted (free). */
export async function cancel(req: IRequest, c: Ctx): Promise<Response> {
  return answer(c, async () => {
    await cancelSession(c.env, await session(req, c))
    return new Response(null, { status: 204, headers: { 'Content-Length': '0' } })
  })
}

/** Runs a step; a state that is not the session's latest answers 416 with the true Range and Location. */
async function answer(c: Ctx, step: () => Promise<Response>): Promise<Response> {
  try {
    return await step()
  } catch (err) {
    if (!(err instanceof Moved)) throw err
    throw await outOfOrder(c, err.truth, `the upload is at ${err.truth.offset}`)
  }
}

/**
 * An upload URL whose id is `.` or `..`: URL normalization (WHATWG, and Cloudflare's edge)
 * turns it into …/blobs/uploads/ or …/blobs/ before the worker sees it. No session is there.
 */
export function noSession(req: IRequest): Response {
  parseRepo(req.params.name)
  throw unknownUpload('')
}

async function session(req: IRequest, c: Ctx): Promise<UploadState> {
  const repo = parseRepo(req.params.name)
  const token = new URL(req.url).searchParams.get('_state')
  return verifyState(await uploadSecret(c.env, c.settings.UPLOAD_SECRET), repo, req.params.uuid ?? '', token, c.auth?.sub)
}

/**
 * The chunk's length from Content-Length or Content-Range; 416 with the session's true
 * progress when it does not start at the offset (1 R2 list, on that rare path).
 */
async function chunkLength(req: IRequest, c: Ctx, state: UploadState): Promise<number | null> {
  const length = contentLength(req.headers)
  const range = parseContentRange(req.headers.get('content-range'))
  if (range === 'invalid') throw await moved(c.env, state)
  if (!range) return length
  if (range.start !== state.offset) throw await moved(c.env, state)
  const size = range.end - range.start + 1
  if (length !== null && length !== size) throw new RegistryError('SIZE_INVALID', 'Content-Length does not match Content-Range')
  return size
}

/** 416 with the session's true Range and latest Location (spec: "the client SHOULD resume from the last valid range"). */
async function outOfOrder(c: Ctx, truth: UploadState, detail: string): Promise<RegistryError> {
  return new RegistryError('RANGE_INVALID', detail, {
    Location: await uploadLocation(await uploadSecret(c.env, c.settings.UPLOAD_SECRET), truth),
    Range: progressRange(truth.offset),
    'Docker-Upload-UUID': truth.id,
  })
}

async function progress(c: Ctx, state: UploadState, status: 202 | 204): Promise<Response> {
  return new Response(null, {
    status,
    headers: {
      Location: await uploadLocation(await uploadSecret(c.env, c.settings.UPLOAD_SECRET), state),
      Range: progressRange(state.offset),
      'Docker-Upload-UUID': state.id,
      'Content-Length': '0',
    },
  })
}

/**
 * Links the blob into the repository (1 KV put) and answers 201 Created: a `push` event, or a
 * `mount` from the repository named (`from`, or the blob's first repository).
 */
async function linked(c: Ctx, repo: Repo, digest: Digest, blob: BlobLocation, mountedFrom: Repo | null = null): Promise<Response> {
  await c.store.linkBlob(repo, digest, blob, mountedFrom)
  return new Response(null, {
    status: 201,
    headers: { Location: `/v2/${repo}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': '0' },
  })
}
