/**
 * An upload session's state travels with the client, signed, in the `_state`
 * query parameter of every Location we send (as CNCF distribution does), so that
 * a PATCH or PUT needs no storage read to know where the upload stands. R2 keeps
 * only the bytes. The signature binds the state to its repository and to the
 * identity that opened it (`sub`, when auth is on).
 */
import { RegistryError } from '../errors'
import type { Repo } from '../names'
import { isBlobKey, isUploadKey } from '../storage/keys'
import { toHex } from '../storage/streams'

export interface UploadState {
  /** Random session id (the `<uuid>` of the spec's URLs). */
  id: string
  repo: string
  /** Start time, ms since epoch: abandoned sessions are purged by age. */
  started: number
  /** Bytes received so far. */
  offset: number
  /** Saved hash states (base64), empty before the first byte. */
  h256: string
  h512: string
  /** R2 key of the object holding the bytes not yet in a multipart part ('' when none). */
  at: string
  /** Bytes of the upload stored in `at` (after `skip` bytes of part etags). */
  tail: number
  skip: number
  /** Multipart upload id ('' when none) and parts uploaded. */
  mp: string
  parts: number
  /**
   * Chunks received after the tail, each its own object of bytes, in order ([key, size]):
   * once there are parts, a chunk that does not fill one is written once as a piece
   * rather than re-written with the whole tail. Absent when none.
   */
  more?: [string, number][]
  /** Who opened the session ('' = anonymous, or auth off); only they may continue it. */
  sub?: string
}

/** Sessions older than this are unknown: R2 aborts unfinished multipart uploads after 7 days. */
export const MAX_SESSION_AGE_MS = 6 * 24 * 3600 * 1000

export function newUploadState(repo: Repo, now = Date.now(), sub = ''): UploadState {
  const random = crypto.getRandomValues(new Uint8Array(16))
  const state: UploadState = { id: toHex(random), repo, started: now, offset: 0, h256: '', h512: '', at: '', tail: 0, skip: 0, mp: '', parts: 0 }
  // Only when set: an open registry's Locations stay as short as before.
  if (sub) state.sub = sub
  return state
}

const keyCache = new Map<string, Promise<CryptoKey>>()
function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret)
  if (!key) {
    const raw = new TextEncoder().encode(secret)
    key = crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])
    keyCache.set(secret, key)
  }
  return key
}

const b64url = (bytes: Uint8Array): string =>
  btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
const unb64url = (s: string): Uint8Array =>
  Uint8Array.from(atob(s.replaceAll('-', '+').replaceAll('_', '/')), (c) => c.charCodeAt(0))

export async function signState(secret: string, state: UploadState): Promise<string> {
  const payload = new TextEncoder().encode(JSON.stringify(state))
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), payload))
  return `${b64url(payload)}.${b64url(mac)}`
}

/**
 * The state of session `id` in `repo` opened by `sub`, from its signed token. Anything
 * forged, foreign (another repository or identity), stale or malformed is BLOB_UPLOAD_UNKNOWN.
 */
export async function verifyState(secret: string, repo: Repo, id: string, token: string | null, sub = ''): Promise<UploadState> {
  const unknown = new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid: id.slice(0, 100) })
  const [payload, mac, extra] = (token ?? '').split('.')
  if (!payload || !mac || extra !== undefined || token!.length > 8192) throw unknown
  let bytes: Uint8Array
  let state: UploadState
  try {
    bytes = unb64url(payload)
    const ok = await crypto.subtle.verify('HMAC', await hmacKey(secret), unb64url(mac), bytes)
    if (!ok) throw unknown
    state = JSON.parse(new TextDecoder().decode(bytes)) as UploadState
  } catch {
    throw unknown
  }
  if (state.id !== id || state.repo !== repo || Date.now() - state.started > MAX_SESSION_AGE_MS) throw unknown
  if ((state.sub ?? '') !== sub) throw unknown
  // Defence in depth: a state can only name this session's own objects or a registry blob.
  if (state.at && !isUploadKey(state.at, id) && !isBlobKey(state.at)) throw unknown
  if (state.more && !state.more.every(([key]) => isUploadKey(key, id))) throw unknown
  return state
}

/** The Location of a session: where the client sends its next request. */
export async function uploadLocation(secret: string, state: UploadState): Promise<string> {
  return `/v2/${state.repo}/blobs/uploads/${state.id}?_state=${await signState(secret, state)}`
}

export const decodeHashState = (s: string): Uint8Array | undefined => (s ? unb64url(s) : undefined)
export const encodeHashState = (bytes: Uint8Array): string => b64url(bytes)
