/**
 * The hashes of sessions that span requests, kept in this isolate's memory between them.
 *
 * The runtime's hash (digest/native.ts) cannot be saved with the session's state, and hashing
 * in WebAssembly so that it could be costs about six times the CPU (docs/performance.md). So a
 * request that records a write leaves its hash here, keyed by the session and the offset the
 * write ends at, and the next request of the session takes it from there when it runs in the
 * same isolate (wrangler dev has one; Cloudflare promises nothing either way, so this is only a
 * shortcut). A request that finds none hashes nothing, and the close reads the session's bytes
 * back once to hash them (upload/session.ts `hashUploaded`): slower, as correct.
 *
 * Why an entry names exactly the session's bytes [0, offset): each offset of a session is
 * written once (storage/uploads.ts), an entry is left only after its write was recorded, and
 * one request at most takes it (`take` removes it; a fold takes it only once it holds its
 * offset's claim, a piece once it is written; a close only reads it, `peek`, synchronously). A request that fails after taking it leaves nothing: its session goes on
 * unhashed. Bounded (least recently left first out): a few hundred bytes each.
 */
import type { NativeHash } from '../digest/native'
import type { UploadState } from './state'

/** Sessions whose hash an isolate keeps at most. */
export const MAX_KEPT = 1000

const kept = new Map<string, NativeHash>()

const keyOf = (s: Pick<UploadState, 'id' | 'alg'>, offset: number) => `${s.id}/${s.alg}/${offset}`

/** Leaves the hash of the session's bytes [0, offset) for its next request. */
export function keep(state: Pick<UploadState, 'id' | 'alg'>, offset: number, hash: NativeHash): void {
  const key = keyOf(state, offset)
  kept.delete(key)
  kept.set(key, hash)
  for (const oldest of kept.keys()) {
    if (kept.size <= MAX_KEPT) break
    kept.delete(oldest)
  }
}

/** The hash of the state's bytes so far, if this isolate kept it; removed (one request takes it). */
export function take(state: Pick<UploadState, 'id' | 'alg' | 'offset'>): NativeHash | null {
  const key = keyOf(state, state.offset)
  const hash = kept.get(key) ?? null
  kept.delete(key)
  return hash
}

/** The hash of the state's bytes so far, if this isolate kept it; left in place (a close reads it before it holds the offset). */
export function peek(state: Pick<UploadState, 'id' | 'alg' | 'offset'>): NativeHash | null {
  return kept.get(keyOf(state, state.offset)) ?? null
}

/** Forgets every kept hash, as another isolate would not have them (tests). */
export function forgetKept(): void {
  kept.clear()
}
