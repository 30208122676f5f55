/**
 * A collection's marks (docs/garbage-collection.md, the protocol): one small R2 object per
 * candidate link or blob, `customMetadata.state` = "marked" | "kept" | "swept". The run and a
 * push race for it with conditional puts (R2 is strongly consistent and a conditional put is
 * atomic): whoever moves it off "marked" first wins; the loser sees the winner's state.
 * R2's etag is the MD5 of the body, so each mark's body is unique (a nonce): an etag names
 * one write, never an equal later one.
 */
import type { Env } from '../env'
import type { Digest, Repo } from '../names'
import { keys } from './keys'

export type MarkState = 'marked' | 'kept' | 'swept'

/** Places a mark: its etag. 1 R2 put. */
export async function putMark(env: Env, key: string, run: string): Promise<string> {
  const object = await env.BLOBS.put(key, body('marked', run), { customMetadata: { state: 'marked', run } })
  return object.etag
}

const body = (state: MarkState, run: string) => `${state} ${run} ${crypto.randomUUID()}`

/** Moves a mark from "marked" (etag) to `state`; false when someone moved it first. 1 R2 put. */
export async function moveMark(env: Env, key: string, etag: string, state: MarkState, run = ''): Promise<boolean> {
  const object = await env.BLOBS.put(key, body(state, run), { customMetadata: { state, run }, onlyIf: { etagMatches: etag } })
  return object !== null
}

/** 1 R2 head. */
export async function headMark(env: Env, key: string): Promise<{ state: MarkState; etag: string; uploaded: number } | null> {
  const object = await env.BLOBS.head(key)
  if (!object) return null
  return { state: (object.customMetadata?.state ?? 'marked') as MarkState, etag: object.etag, uploaded: object.uploaded.getTime() }
}

/** Free (R2 delete). */
export async function deleteMark(env: Env, key: string): Promise<void> {
  await env.BLOBS.delete(key)
}

/**
 * A push touched something a run marked: keep it, unless the run swept it first.
 * True: it stays (use it); false: the run won (treat it as absent). A mark that is gone
 * was cleaned up after its run, long after any copy naming it could be read: it stays.
 * Marked with a known etag: 1 R2 put (+1 R2 head when it lost). Unknown: 1 R2 head (+1 put when marked).
 */
export async function keepMarked(env: Env, key: string, etag: string | null): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (etag && (await moveMark(env, key, etag, 'kept'))) return true
    const mark = await headMark(env, key)
    if (!mark || mark.state === 'kept') return true
    if (mark.state === 'swept') return false
    etag = mark.etag
  }
  return true
}

export const linkMarkKey = (repo: Repo, digest: Digest): string => keys.gcLinkMark(repo, digest)
export const blobMarkKey = (digest: Digest): string => keys.gcBlobMark(digest)
