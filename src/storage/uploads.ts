/**
 * R2 calls of an upload in progress: tails (bytes not yet in a part), multipart
 * parts, and the cancellation mark. The session state itself is client-held
 * (src/upload/state.ts). Each function makes the one call its name says.
 */
import type { Env } from '../env'
import type { UploadState } from '../upload/state'
import { isUploadKey, keys } from './keys'
import { toHex } from './streams'

/** Writes a new tail object (never overwriting one): its key. 1 R2 put. */
export async function putTail(
  env: Env,
  state: UploadState,
  body: ReadableStream<Uint8Array> | Uint8Array,
): Promise<string> {
  const key = keys.uploadTail(state.id, toHex(crypto.getRandomValues(new Uint8Array(8))))
  await env.BLOBS.put(key, body, { customMetadata: { repo: state.repo, started: String(state.started) } })
  return key
}

/** The current tail object, or null when it is gone (cancelled or completed). 1 R2 get. */
export function getTail(env: Env, state: UploadState): Promise<R2ObjectBody | null> {
  return env.BLOBS.get(state.at)
}

/** One piece written after the tail (see UploadState.more), or null when gone. 1 R2 get. */
export function getPiece(env: Env, key: string): Promise<R2ObjectBody | null> {
  return env.BLOBS.get(key)
}

/** Whether the tail object still exists. 1 R2 head. */
export async function tailExists(env: Env, state: UploadState): Promise<boolean> {
  return (await env.BLOBS.head(state.at)) !== null
}

/** Whether the session was cancelled. 1 R2 head. */
export async function isCancelled(env: Env, state: UploadState): Promise<boolean> {
  return (await env.BLOBS.head(keys.uploadCancelled(state.id))) !== null
}

/** Marks the session cancelled. 1 R2 put. */
export async function markCancelled(env: Env, state: UploadState): Promise<void> {
  await env.BLOBS.put(keys.uploadCancelled(state.id), null, { customMetadata: { cancelled: String(Date.now()) } })
}

/** Drops the bytes of an upload that will not complete (free: deletes and abort). */
export async function dropUpload(env: Env, state: UploadState): Promise<void> {
  const work: Promise<unknown>[] = []
  if (isUploadKey(state.at)) work.push(env.BLOBS.delete(state.at))
  for (const [key] of state.more ?? []) work.push(env.BLOBS.delete(key))
  if (state.mp) work.push(env.BLOBS.resumeMultipartUpload(keys.uploadParts(state.id), state.mp).abort().catch(() => {}))
  await Promise.all(work)
}

/** Aborts the session's multipart upload (free). */
export async function abortParts(env: Env, state: UploadState): Promise<void> {
  await env.BLOBS.resumeMultipartUpload(keys.uploadParts(state.id), state.mp).abort().catch(() => {})
}

/** Deletes a tail that has been superseded or moved into a part (free). */
export async function deleteTail(env: Env, key: string): Promise<void> {
  if (isUploadKey(key)) await env.BLOBS.delete(key)
}

/** 1 R2 createMultipartUpload. */
export async function startParts(env: Env, state: UploadState): Promise<string> {
  const mp = await env.BLOBS.createMultipartUpload(keys.uploadParts(state.id), {
    httpMetadata: { contentType: 'application/octet-stream' },
    customMetadata: { repo: state.repo, started: String(state.started) },
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
