/**
 * An upload session's state travels with the client, signed, in the `_state` query
 * parameter of every Location we send (as CNCF distribution does), so that a PATCH or
 * PUT knows where the upload stands without a storage read. It is a claim, not the
 * truth: every write the session makes is keyed by the offset it starts at and written
 * once (storage/uploads.ts), so a state that is no longer the latest is found out by its
 * first write, and the truth is then read back from storage (session.ts `truth`).
 * The signature binds the state to its repository and to the identity that opened it
 * (`sub`, when auth is on).
 */
import type { Algorithm } from '../digest/native'
import { RegistryError } from '../errors'
import type { Repo } from '../names'
import { toHex } from '../storage/streams'
import type { Progress, UploadState } from '../storage/uploads'

/** What the session records (storage/uploads.ts keeps it with each write): defined there, where storage reads it back. */
export type { Progress, UploadState }

/** Sessions older than this are unknown: R2 aborts unfinished multipart uploads after 7 days. */
export const MAX_SESSION_AGE_MS = 6 * 24 * 3600 * 1000
/**
 * The collector deletes a session's objects only once it is this much older than
 * MAX_SESSION_AGE_MS (gc/plan.ts `planUploads`), and a close names them as a blob only while
 * the session is younger than it (upload/session.ts `publish`, checked just before the index
 * write): a close that began in time cannot name bytes an upload sweep already decided to delete.
 */
export const EXPIRY_MARGIN_MS = 60 * 60 * 1000

/** A session id: what newUploadState makes. Anything else names no session. */
export const isSessionId = (id: string): boolean => /^[0-9a-f]{32}$/.test(id)

export function newUploadState(repo: Repo, now = Date.now(), sub = '', alg: Algorithm = 'sha256'): UploadState {
  const random = crypto.getRandomValues(new Uint8Array(16))
  const state: UploadState = { id: toHex(random), repo, started: now, offset: 0, alg, at: -1, size: 0, skip: 0, mp: '', parts: 0 }
  // Only when set: an open registry's Locations stay as short as before.
  if (sub) state.sub = sub
  return state
}

/** The progress part of a state (what a write records), and a state from a recorded one. */
export function progressOf(state: UploadState): Progress {
  const { id: _id, repo: _repo, started: _started, sub: _sub, ...progress } = state
  return progress
}
export const withProgress = (state: UploadState, progress: Progress): UploadState => {
  const { more: _more, sum: _sum, hs: _hs, ...base } = state
  return { ...base, ...progress }
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

/** BLOB_UPLOAD_UNKNOWN for session `id` (shortened: ids from the URL may be anything). */
export const unknownUpload = (id: string): RegistryError =>
  new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid: id.slice(0, 100).replace(/[^\x20-\x7e]/g, '?') })

/**
 * The state of session `id` in `repo` opened by `sub`, from its signed token. Anything
 * forged, foreign (another repository or identity), stale or malformed is BLOB_UPLOAD_UNKNOWN.
 */
export async function verifyState(secret: string, repo: Repo, id: string, token: string | null, sub = ''): Promise<UploadState> {
  const unknown = unknownUpload(id)
  if (!isSessionId(id)) throw unknown
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
  return state
}

/** The Location of a session: where the client sends its next request. */
export async function uploadLocation(secret: string, state: UploadState): Promise<string> {
  return `/v2/${state.repo}/blobs/uploads/${state.id}?_state=${await signState(secret, state)}`
}
