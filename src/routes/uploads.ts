/**
 * /v2/<name>/blobs/uploads/: starting, mounting, feeding, finishing and cancelling
 * uploads (spec "Pushing blobs"). Session state is client-held (upload/state.ts).
 */
import type { IRequest } from 'itty-router'
import { RegistryError } from '../errors'
import type { Ctx } from '../http/context'
import { contentLength, parseContentRange, progressRange } from '../http/ranges'
import { parseDigest, parseRepo, tryDigest, type Digest, type Repo } from '../names'
import { headBlob, type BlobLocation } from '../storage/blobs'
import { readBlobLinkConfirmed, writeBlobLink } from '../storage/links'
import { uploadSecret } from '../storage/secrets'
import { append, assertLive, cancel as cancelSession, chunkTooLarge, complete, storeWithDigest } from '../upload/session'
import { newUploadState, uploadLocation, verifyState, type UploadState } from '../upload/state'

/**
 * POST: mount (1-2 reads + 1 KV put), monolithic (see storeWithDigest + 1 KV put),
 * or a new session (no storage call: its state is in the Location).
 */
export async function start(req: IRequest, c: Ctx): Promise<Response> {
  const repo = parseRepo(req.params.name)
  const url = new URL(req.url)
  const mount = url.searchParams.get('mount')
  if (mount !== null) {
    const mounted = await tryMount(c, repo, tryDigest(mount), url.searchParams.get('from'))
    if (mounted) return mounted
  }
  const digestParam = url.searchParams.get('digest')
  if (digestParam !== null) {
    const digest = parseDigest(digestParam)
    const length = withinLimit(c, contentLength(req.headers))
    const state = newUploadState(repo, Date.now(), c.auth?.sub)
    const blob = length !== null
      ? await storeWithDigest(c.env, repo, digest, req.body, length)
      : await complete(c.env, await append(c.env, state, req.body, null, false, c.settings.maxChunkBytes), digest)
    return linked(c, repo, digest, blob)
  }
  const opened = await progress(c, newUploadState(repo, Date.now(), c.auth?.sub), 202)
  // Clients that know this header (Cloudflare's proposal to the OCI) keep each request under it.
  opened.headers.set('OCI-Chunk-Max-Length', String(c.settings.maxChunkBytes))
  return opened
}

/** A declared body length, refused with 413 before any byte is read when over MAX_CHUNK_BYTES. */
function withinLimit(c: Ctx, length: number | null): number | null {
  if (length !== null && length > c.settings.maxChunkBytes) throw chunkTooLarge(c.settings.maxChunkBytes)
  return length
}

/**
 * Mount from `from`, or (no `from`) any blob the registry holds; null: fall back to an upload.
 * With auth on, the caller must be able to pull `from` (or, without `from`, the blob's first
 * repository): otherwise the same 202 as for an unknown blob, so a mount reveals nothing.
 */
async function tryMount(c: Ctx, repo: Repo, digest: Digest | null, from: string | null): Promise<Response | null> {
  if (!digest) return null
  const mayPull = (source: string) => !c.auth || c.auth.can(source, 'pull')
  let blob: BlobLocation | null
  if (from !== null) {
    let source: Repo
    try {
      source = parseRepo(from)
    } catch {
      return null
    }
    if (!mayPull(source)) return null
    blob = await readBlobLinkConfirmed(c.env, c, source, digest)          // cache or KV get, R2 head on a miss
  } else {
    const indexed = await headBlob(c.env, digest)                          // R2 head
    blob = indexed && mayPull(indexed.repo) ? indexed : null
  }
  return blob ? linked(c, repo, digest, blob) : null
}

/** GET: 1 R2 head (the session's bytes are still there). */
export async function status(req: IRequest, c: Ctx): Promise<Response> {
  const state = await session(req, c)
  await assertLive(c.env, state)
  return progress(c, state, 204)
}

/** PATCH: see upload/session.ts `append`. */
export async function patch(req: IRequest, c: Ctx): Promise<Response> {
  const state = await session(req, c)
  const length = withinLimit(c, chunkLength(req, state))
  const chunked = req.headers.has('content-range')
  return progress(c, await append(c.env, state, req.body, length, chunked, c.settings.maxChunkBytes), 202)
}

/** PUT ?digest=: the last chunk (optional), then verify, index and link (1 KV put). */
export async function finish(req: IRequest, c: Ctx): Promise<Response> {
  const state = await session(req, c)
  const digest = parseDigest(new URL(req.url).searchParams.get('digest'))
  const length = withinLimit(c, chunkLength(req, state))
  const repo = state.repo as Repo
  if (state.offset === 0 && length !== null && length > 0 && req.body) {
    await assertLive(c.env, state)
    return linked(c, repo, digest, await storeWithDigest(c.env, repo, digest, req.body, length))
  }
  const final = await append(c.env, state, req.body, length, false, c.settings.maxChunkBytes)
  return linked(c, repo, digest, await complete(c.env, final, digest))
}

/** DELETE: 1 R2 put (the cancellation mark); its bytes are deleted (free). */
export async function cancel(req: IRequest, c: Ctx): Promise<Response> {
  const state = await session(req, c)
  await cancelSession(c.env, state)
  return new Response(null, { status: 204, headers: { 'Content-Length': '0' } })
}

async function session(req: IRequest, c: Ctx): Promise<UploadState> {
  const repo = parseRepo(req.params.name)
  const token = new URL(req.url).searchParams.get('_state')
  return verifyState(await uploadSecret(c.env, c.settings.uploadSecret), repo, req.params.uuid ?? '', token, c.auth?.sub)
}

/** The chunk's length from Content-Length or Content-Range; 416 when it does not start at the offset. */
function chunkLength(req: IRequest, state: UploadState): number | null {
  const length = contentLength(req.headers)
  const range = parseContentRange(req.headers.get('content-range'))
  if (range === 'invalid') throw outOfOrder(state, 'malformed Content-Range')
  if (!range) return length
  if (range.start !== state.offset) throw outOfOrder(state, `chunk starts at ${range.start}, upload is at ${state.offset}`)
  const size = range.end - range.start + 1
  if (length !== null && length !== size) throw new RegistryError('SIZE_INVALID', 'Content-Length does not match Content-Range')
  return size
}

function outOfOrder(state: UploadState, detail: string): RegistryError {
  return new RegistryError('RANGE_INVALID', detail, {
    Range: progressRange(state.offset),
    'Docker-Upload-UUID': state.id,
  })
}

async function progress(c: Ctx, state: UploadState, status: 202 | 204): Promise<Response> {
  return new Response(null, {
    status,
    headers: {
      Location: await uploadLocation(await uploadSecret(c.env, c.settings.uploadSecret), state),
      Range: progressRange(state.offset),
      'Docker-Upload-UUID': state.id,
      'Content-Length': '0',
    },
  })
}

/** Links the blob into the repository (1 KV put) and answers 201 Created. */
async function linked(c: Ctx, repo: Repo, digest: Digest, blob: BlobLocation): Promise<Response> {
  await writeBlobLink(c.env, c, repo, digest, blob)
  return new Response(null, {
    status: 201,
    headers: { Location: `/v2/${repo}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': '0' },
  })
}
