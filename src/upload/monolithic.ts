/**
 * The monolithic push (spec "Single POST"): bytes with their digest and length in one
 * request, no session. Straight to blobs/<alg>/<hex>, R2 checking the checksum.
 */
import { NativeHash } from '../digest/native'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { algorithmOf, hexOf, type Digest, type Repo } from '../names'
import { headBlob, headBlobOrSlot, putBlobIfAbsent, type IndexedBlob } from '../storage/blobs'
import { batched } from '../storage/streams'

/** Bytes hashed and written at a time (see streams.ts `batched`). */
const BATCH_SIZE = 1024 * 1024

/**
 * Stores a blob whose digest the client gave before its bytes, outside any session
 * (monolithic POST ?digest=, whose reply names no session to replay). The bytes are always
 * hashed and compared. Known already: not stored again (1 R2 head). New: streamed to blobs/
 * with R2's checksum check, conditionally (1 R2 head + 1 R2 put): like every index write, it
 * never replaces a live entry (docs/storage.md: an index entry, once written, names the same
 * bytes until the collector removes it, so the links copied from it stay true). An upload of the
 * same bytes that got there while this one streamed wins (+1 R2 head); a mismatch stores nothing.
 */
export async function storeWithDigest(
  env: Env,
  repo: Repo,
  digest: Digest,
  body: ReadableStream<Uint8Array> | null,
  length: number,
): Promise<IndexedBlob> {
  const { blob: existing, onlyIf } = await headBlobOrSlot(env, digest)                // R2 head
  const hash = new NativeHash(algorithmOf(digest))
  let writer: WritableStreamDefaultWriter<Uint8Array> | null = null
  let writing: Promise<IndexedBlob | null | undefined> = Promise.resolve(undefined)
  const r2: { error?: unknown } = {}
  if (!existing) {
    // One pass feeds both the digest and R2, which checks the checksum itself.
    const fixed = new FixedLengthStream(length)
    const feeding = fixed.writable.getWriter()
    writer = feeding
    writing = putBlobIfAbsent(env, digest, repo, fixed.readable, onlyIf).catch((error) => {  // R2 put
      r2.error = error
      return undefined
    })
    // R2 may refuse the write (an entry got there first) before it has read the body: stop
    // feeding it then, or the next write would wait for a reader that is gone.
    void writing.then(() => {
      if (writer === feeding) {
        writer = null
        feeding.abort().catch(() => {})
      }
    })
  }
  let received = 0
  let cut = false
  try {
    for await (const piece of batched(body ?? new Response('').body!, BATCH_SIZE)) {
      received += piece.byteLength
      hash.update(piece)
      // R2 may stop reading once it refuses the write (an entry got there first): hash on.
      if (writer) await writer.write(piece).catch(() => (writer = null))
    }
    const last = writer as WritableStreamDefaultWriter<Uint8Array> | null
    writer = null
    await last?.close().catch(() => {}) // a short body: R2 sees it and refuses the write
  } catch {
    cut = true // the body broke off
    await writer?.abort().catch(() => {})
  }
  const put = await writing
  const actual = hash.hex()
  if (cut || received !== length) throw new RegistryError('SIZE_INVALID', { expected: length, received })
  if (actual !== hexOf(digest)) throw new RegistryError('DIGEST_INVALID', { digest })
  // The bytes came whole and are what the client said, and R2 failed to take them: the
  // registry's failure (500 UNKNOWN, R2's error on the log line), never the client's.
  if ('error' in r2) throw r2.error
  // Known before, stored now, or stored meanwhile by another upload (R2 refused ours: +1 R2 head).
  const stored = existing ?? put ?? (put === null ? await headBlob(env, digest) : null)
  if (!stored) throw new RegistryError('BLOB_UPLOAD_INVALID', 'the blob could not be stored: push it again')
  if (stored.size !== length) throw new RegistryError('SIZE_INVALID', { expected: stored.size, received })
  return stored
}
