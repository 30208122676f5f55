/**
 * The monolithic push (spec "Single POST"): bytes with their digest and length in one
 * request, no session. Straight to blobs/<alg>/<hex>, R2 checking the checksum.
 */
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { algorithmOf, hexOf, type Digest, type Repo } from '../names'
import { headBlob, putVerifiedBlob, type IndexedBlob } from '../storage/blobs'
import { batched, pumpTo, toHex } from '../storage/streams'

/** Bytes hashed and written at a time (see streams.ts `batched`). */
const BATCH_SIZE = 1024 * 1024

/**
 * Stores a blob whose digest the client gave before its bytes, outside any session
 * (monolithic POST ?digest=, whose reply names no session to replay). Known already: the bytes are hashed and compared,
 * not stored again (1 R2 head). New: streamed to blobs/ with R2's checksum check
 * (1 R2 head + 1 R2 put). A mismatch stores nothing.
 */
export async function storeWithDigest(
  env: Env,
  repo: Repo,
  digest: Digest,
  body: ReadableStream<Uint8Array> | null,
  length: number,
): Promise<IndexedBlob> {
  const existing = await headBlob(env, digest)
  const hash = new crypto.DigestStream(algorithmOf(digest) === 'sha256' ? 'SHA-256' : 'SHA-512')
  const hashing = hash.getWriter()
  let received = 0
  const feed = (piece: Uint8Array) => {
    received += piece.byteLength
    return hashing.write(piece)
  }
  const pieces = batched(body ?? new Response('').body!, BATCH_SIZE)
  let stored: IndexedBlob | null = existing
  try {
    if (existing) {
      for await (const piece of pieces) await feed(piece)
    } else {
      // One pass feeds both the digest and R2, which checks the checksum itself.
      const fixed = new FixedLengthStream(length)
      ;[stored] = await Promise.all([putVerifiedBlob(env, digest, repo, fixed.readable), pumpTo(pieces, fixed.writable, feed)])
    }
  } catch {
    stored = null // R2 refused the checksum, or the body was not `length` bytes.
  }
  await hashing.close().catch(() => {})
  if (received !== length) throw new RegistryError('SIZE_INVALID', { expected: length, received })
  const actual = toHex(new Uint8Array(await hash.digest))
  if (actual !== hexOf(digest) || !stored) throw new RegistryError('DIGEST_INVALID', { digest })
  if (existing && existing.size !== length) throw new RegistryError('SIZE_INVALID', { expected: existing.size, received })
  return stored
}
