/**
 * The registry-wide blob store in R2: one verified object (or pointer) per digest.
 * Storage returns null for absent things and never picks an error code.
 *
 * Every write of an index entry is conditional: it replaces nothing but a collected blob's
 * tombstone or an entry a collection is sweeping (`claimIndex`; `putBlobIfAbsent` with the
 * condition `headBlobOrSlot` gives), never a live entry. So an entry, once written, names the
 * same bytes until the collector removes it, and a link, written from an entry, names what its
 * entry names, which the collector keeps (docs/storage.md, promise 1). What an entry names is
 * never replaced or deleted while it names it: storage/uploads.ts keeps that for session objects.
 */
import type { Env } from '../env'
import type { Digest, Repo } from '../names'
import { settings } from '../settings'
import { blobMarkKey, keepMarked } from './gc-marks'
import { keys } from './keys'

/** Where a verified blob's bytes are and how many there are. */
export interface BlobLocation {
  at: string
  size: number
}

/** A blob as the registry-wide index knows it: location plus the first repository to hold it. */
export interface IndexedBlob extends BlobLocation {
  repo: string
  /** When the index entry was written (ms since epoch). */
  indexed: number
}

/**
 * The blob, or null when absent, collected (a tombstone), or being collected. 1 R2 head;
 * +1 R2 head only when the entry is older than GC_GRACE_SECONDS (only such a blob can carry a
 * collector's mark: the push that asks keeps it, see gc-marks.ts), +1 R2 put when it is marked.
 */
export async function headBlob(env: Env, digest: Digest): Promise<IndexedBlob | null> {
  const object = await env.BLOBS.head(keys.blob(digest))
  return object && (await live(env, digest, object)) ? indexed(object) : null
}

/**
 * `headBlob` for a writer that streams the bytes itself (the pull-through cache): the live
 * blob, or the condition its write must carry, which replaces exactly the dead entry there
 * (a collected blob's tombstone, or an entry being swept) or nothing. The same calls as headBlob.
 */
export async function headBlobOrSlot(env: Env, digest: Digest): Promise<{ blob: IndexedBlob; onlyIf?: never } | { blob: null; onlyIf: R2Conditional }> {
  const object = await env.BLOBS.head(keys.blob(digest))
  if (!object) return { blob: null, onlyIf: { etagDoesNotMatch: '*' } }
  if (await live(env, digest, object)) return { blob: indexed(object) }
  return { blob: null, onlyIf: sameWrite(object.etag, object.uploaded.getTime()) }
}

/** Whether an index object is a blob a push may use: not a tombstone, and not swept by a collection. */
async function live(env: Env, digest: Digest, object: R2Object): Promise<boolean> {
  if (isTombstone(object)) return false
  if (Date.now() - object.uploaded.getTime() < settings(env).GC_GRACE_SECONDS * 1000) return true
  return keepMarked(env, blobMarkKey(digest), null)
}

/** A collected blob's index key holds an empty object with customMetadata.gone (reads treat it as absent) and .was (where its bytes were). */
export const isTombstone = (object: R2Object): boolean => object.customMetadata?.gone !== undefined

/**
 * Writes `body` under the blob's index key unless a live entry is there: replaces a tombstone
 * or an entry a collection is sweeping (conditionally, so the collector's own conditional
 * tombstone then fails). The new object, or null with the live winner. 1 R2 put; when it
 * lost, 1-2 R2 heads (+1 R2 put per replaced entry).
 * `at` (a pointer entry's location): never replaces a dead entry that named those same bytes
 * (`deadAt`): the collector deletes them right after its tombstone, so only a replay of the
 * close that first named them asks, and naming them again would leave an entry without bytes
 * that every later push of the digest links (gc/sweep.ts `sweepBlobs`).
 */
async function claimIndex(
  env: Env,
  digest: Digest,
  body: Uint8Array | null,
  options: R2PutOptions,
  at: string | null = null,
): Promise<{ put: R2Object | null; winner: IndexedBlob | null }> {
  let onlyIf: R2Conditional = { etagDoesNotMatch: '*' }
  for (let attempt = 0; attempt < 3; attempt++) {
    const put = await env.BLOBS.put(keys.blob(digest), body, { ...options, onlyIf })
    if (put) return { put, winner: null }
    const current = await env.BLOBS.head(keys.blob(digest))
    if (!current) onlyIf = { etagDoesNotMatch: '*' }
    // Pointer entries are empty, so their etags are all alike: the upload time tells writes apart.
    else if (!(await live(env, digest, current))) {
      if (at !== null && deadAt(current) === at) break
      onlyIf = sameWrite(current.etag, current.uploaded.getTime())
    } else return { put: null, winner: indexed(current) }
  }
  return { put: null, winner: null }
}

/** Where a dead entry's bytes were: a tombstone says it (customMetadata.was), an entry being swept still names them. */
const deadAt = (object: R2Object): string => object.customMetadata?.was ?? object.customMetadata?.at ?? object.key

function indexed(object: R2Object): IndexedBlob {
  const meta = object.customMetadata ?? {}
  const indexed = object.uploaded.getTime()
  if (meta.at) return { at: meta.at, size: Number(meta.size), repo: meta.repo ?? '', indexed }
  return { at: object.key, size: object.size, repo: meta.repo ?? '', indexed }
}

/**
 * Records that the bytes at `location.at` are `digest`, unless the index has an entry for
 * it already: null then (the caller heads it). 1 R2 put (conditional).
 */
export async function indexBlob(env: Env, digest: Digest, repo: Repo, location: BlobLocation): Promise<IndexedBlob | null> {
  const customMetadata = { at: location.at, size: String(location.size), repo }
  const { put } = await claimIndex(env, digest, null, { customMetadata }, location.at)
  return put ? { ...location, repo, indexed: put.uploaded.getTime() } : null
}

/**
 * Writes bytes of a known digest, in memory, straight to their final key, unless a live entry
 * is there (then that one is returned). R2 checks the checksum before the object exists, so a
 * mismatch leaves nothing. 1 R2 put (+1 R2 head when it was not new).
 */
export async function putVerifiedBlob(env: Env, digest: Digest, repo: Repo, body: Uint8Array): Promise<IndexedBlob> {
  const [alg, hex] = digest.split(':') as ['sha256' | 'sha512', string]
  const options: R2PutOptions = { [alg]: hex, customMetadata: { repo }, httpMetadata: { contentType: 'application/octet-stream' } }
  const { put, winner } = await claimIndex(env, digest, body, options)
  if (put) return { at: put.key, size: put.size, repo, indexed: put.uploaded.getTime() }
  return winner ?? { at: keys.blob(digest), size: body.byteLength, repo, indexed: Date.now() }
}

/**
 * Streams bytes of a known digest to their final key, unless the blob is already there
 * (conditional write: concurrent writers never replace each other's object). R2 checks the
 * checksum before the object exists, so wrong bytes leave nothing. Null when another writer
 * got there first. `onlyIf` from `headBlobOrSlot` replaces a collected blob's tombstone. 1 R2 put.
 */
export async function putBlobIfAbsent(
  env: Env,
  digest: Digest,
  repo: Repo,
  body: ReadableStream<Uint8Array>,
  onlyIf: R2Conditional = { etagDoesNotMatch: '*' },
): Promise<IndexedBlob | null> {
  const [alg, hex] = digest.split(':') as ['sha256' | 'sha512', string]
  const object = await env.BLOBS.put(keys.blob(digest), body, {
    [alg]: hex,
    customMetadata: { repo },
    httpMetadata: { contentType: 'application/octet-stream' },
    onlyIf,
  })
  return object ? { at: object.key, size: object.size, repo, indexed: object.uploaded.getTime() } : null
}

/** The object at a blob's location, without its bytes. 1 R2 head. */
export function headAt(env: Env, location: BlobLocation): Promise<R2Object | null> {
  return env.BLOBS.head(location.at)
}

/** 1 R2 get (ranged when `range` is given). */
export function readBlob(env: Env, location: BlobLocation, range?: R2Range): Promise<R2ObjectBody | null> {
  return env.BLOBS.get(location.at, range ? { range } : undefined)
}

/** A conditional matching exactly the write that was seen (etag, and not re-written since). */
export const sameWrite = (etag: string, uploaded: number): R2Conditional => ({ etagMatches: etag, uploadedBefore: new Date(uploaded + 1) })
