/**
 * The registry-wide blob store in R2: one verified object (or pointer) per digest.
 * Storage returns null for absent things and never picks an error code.
 */
import type { Env } from '../env'
import type { Digest, Repo } from '../names'
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

/** 1 R2 head. */
export async function headBlob(env: Env, digest: Digest): Promise<IndexedBlob | null> {
  const object = await env.BLOBS.head(keys.blob(digest))
  return object ? indexed(object) : null
}

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
  const put = await env.BLOBS.put(keys.blob(digest), null, {
    customMetadata,
    onlyIf: { etagDoesNotMatch: '*' },
  })
  return put ? { ...location, repo, indexed: put.uploaded.getTime() } : null
}

/**
 * Writes bytes of a known digest straight to their final key. R2 checks the
 * checksum before the object exists, so a mismatch leaves nothing. 1 R2 put.
 * Bytes already in memory are written only if the blob is new (+1 R2 head when
 * it was not); a stream is always written (the caller heads first).
 */
export async function putVerifiedBlob(
  env: Env,
  digest: Digest,
  repo: Repo,
  body: ReadableStream<Uint8Array> | Uint8Array,
): Promise<IndexedBlob> {
  const [alg, hex] = digest.split(':') as ['sha256' | 'sha512', string]
  const inMemory = body instanceof Uint8Array
  const object = await env.BLOBS.put(keys.blob(digest), body, {
    [alg]: hex,
    customMetadata: { repo },
    httpMetadata: { contentType: 'application/octet-stream' },
    ...(inMemory ? { onlyIf: { etagDoesNotMatch: '*' } } : {}),
  })
  if (object) return { at: object.key, size: object.size, repo, indexed: object.uploaded.getTime() }
  return (await headBlob(env, digest)) ?? { at: keys.blob(digest), size: (body as Uint8Array).byteLength, repo, indexed: Date.now() }
}

/** 1 R2 get (ranged when `range` is given). */
export function readBlob(env: Env, location: BlobLocation, range?: R2Range): Promise<R2ObjectBody | null> {
  return env.BLOBS.get(location.at, range ? { range } : undefined)
}
