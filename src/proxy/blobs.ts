/**
 * Blobs of a proxied repository (distribution registry/proxy/proxyblobstore.go, on R2).
 *
 * A blob is immutable: once fetched and verified it is an ordinary registry blob
 * (`blobs/<alg>/<hex>`, one copy for the whole registry) linked into the proxied repository,
 * and served like any other (Range, HEAD, edge cache). A miss reads the upstream once and
 * streams it to the client and into R2 at the same time:
 *
 *   upstream body ──┬─> digest (ours)
 *                   ├─> FixedLengthStream(Content-Length) ─> R2 put (checksum, only if absent)
 *                   └─> FixedLengthStream(Content-Length) ─> client (one chunk behind)
 *
 * Each 1 MiB piece goes to every branch before the next is read, so memory holds about two
 * pieces whatever the client's speed. The client's last chunk is held back until the digest is
 * checked: wrong or missing bytes abort both branches, so R2 stores nothing and the client's
 * reply fails instead of completing. Concurrent misses each write conditionally: the first
 * complete object stays, the others find it there and write nothing.
 */
import { RegistryError } from '../errors'
import type { Ctx } from '../http/context'
import { algorithmOf, hexOf, type Digest } from '../names'
import { headBlob, headBlobOrSlot, putBlobIfAbsent, type BlobLocation, type IndexedBlob } from '../storage/blobs'
import { batched, toHex } from '../storage/streams'
import type { ProxyTarget } from './config'
import { failureError, failureOf, upstreamFetch, UpstreamFailure } from './upstream'

/** Bytes moved at a time: fewer, larger writes (per-call overhead), and the memory bound per branch. */
const BATCH_SIZE = 1024 * 1024

export interface ProxiedBlob {
  /** Where the bytes are (size only, for a HEAD answered by the upstream). */
  link: BlobLocation
  /** The bytes on their way from the upstream (a full GET that missed); null: serve from R2. */
  body: ReadableStream | null
}

/**
 * A blob the proxied repository has no link to yet; null when the upstream does not know it.
 * - Held by the registry already (pushed, or cached for another repository): 1 R2 head +
 *   1 upstream HEAD (confirming it) + 1 KV put (the link).
 * - HEAD: 1 R2 head + 1 upstream HEAD; nothing stored.
 * - GET: 1 R2 head + 1 upstream GET + 1 R2 put + 1 KV put, the bytes streamed as they come;
 *   a ranged GET waits for the whole blob to be stored, then is served from R2.
 */
export async function proxiedBlob(c: Ctx, t: ProxyTarget, digest: Digest, method: string, ranged: boolean): Promise<ProxiedBlob | null> {
  // A collected blob leaves a tombstone: the fill below replaces it (and only it).
  const { blob: indexed, onlyIf } = await headBlobOrSlot(c.env, digest)             // R2 head
  try {
    if (indexed) {
      if (!(await upstreamServes(t, digest, indexed.size))) return null               // upstream HEAD
      await c.store.as('proxy').linkBlob(t.local, digest, indexed, null)               // KV put
      return { link: indexed, body: null }
    }
    const res = await upstreamFetch(t.upstream, method === 'HEAD' ? 'HEAD' : 'GET', t.remote, `blobs/${digest}`)
    if (res.status === 404) {
      await res.body?.cancel()
      return null
    }
    if (!res.ok) throw await failureOf(res)
    const size = Number(res.headers.get('content-length') ?? NaN)
    if (!Number.isSafeInteger(size) || size < 0 || (method !== 'HEAD' && !res.body)) {
      await res.body?.cancel()
      throw new UpstreamFailure(502, 'the upstream sent a blob without a Content-Length')
    }
    if (method === 'HEAD') return { link: { at: '', size }, body: null }
    const fill = fillBlob(c, t, digest, res.body!, size, !ranged, onlyIf)
    if (ranged) return { link: await fill.stored, body: null }
    c.waitUntil(fill.stored)
    return { link: { at: '', size }, body: fill.client }
  } catch (err) {
    throw err instanceof UpstreamFailure ? failureError(err) : err
  }
}

/**
 * Whether the upstream serves blob `digest` of `size` bytes in the target's repository to the
 * entry's credentials: one HEAD (it replaces a full GET of bytes the registry already holds).
 * The invariant it keeps: a repository sees a blob only through a link it earned. A proxied
 * repository earns one by what its own upstream serves it, never because some other repository
 * (a private local one, or another upstream entry's) holds the digest: else anyone who can
 * pull the proxied namespace and learns a private layer's digest could read it through it.
 * A HEAD that answers another digest or size is the upstream's fault (502), never a link.
 */
async function upstreamServes(t: ProxyTarget, digest: Digest, size: number): Promise<boolean> {
  const res = await upstreamFetch(t.upstream, 'HEAD', t.remote, `blobs/${digest}`)
  await res.body?.cancel()
  if (res.status === 404) return false
  if (!res.ok) throw await failureOf(res)
  const said = res.headers.get('docker-content-digest')
  if (said !== null && said !== digest) throw new UpstreamFailure(502, `the upstream answered a HEAD of ${digest} with ${said.slice(0, 140)}`)
  if (res.headers.get('content-length') !== String(size)) {
    throw new UpstreamFailure(502, `the upstream's size of ${digest} is not the ${size} bytes it has`)
  }
  return true
}

/**
 * Pumps the upstream body into R2 (and the client, when `toClient`), verifying the digest.
 * `stored` resolves with the stored (or concurrently stored) blob once it is linked into the
 * repository, and rejects when the bytes were wrong or cut off (nothing stored or linked).
 */
function fillBlob(c: Ctx, t: ProxyTarget, digest: Digest, upstream: ReadableStream<Uint8Array>, size: number, toClient: boolean, onlyIf: R2Conditional) {
  const toR2 = new FixedLengthStream(size)
  const toUser = toClient ? new FixedLengthStream(size) : null
  let r2Settled = false
  const put = putBlobIfAbsent(c.env, digest, t.local, toR2.readable, onlyIf).finally(() => {     // R2 put
    r2Settled = true
  })
  put.catch(() => {}) // observed below; a lost race settles it early
  const stored = (async () => {
    const hash = new crypto.DigestStream(algorithmOf(digest) === 'sha256' ? 'SHA-256' : 'SHA-512')
    const hashing = hash.getWriter()
    hash.digest.catch(() => {}) // rejects when the pump aborts; read below otherwise
    const r2 = toR2.writable.getWriter()
    const user = toUser?.writable.getWriter() ?? null
    let userGone = !user
    let held: Uint8Array | null = null
    const pieces = batched(upstream, BATCH_SIZE)[Symbol.asyncIterator]()
    try {
      let received = 0
      for (;;) {
        let next: IteratorResult<Uint8Array>
        try {
          next = await pieces.next()
        } catch {
          throw new UpstreamFailure(502, 'the upstream\'s blob was cut off')
        }
        if (next.done) break
        const chunk = next.value
        received += chunk.byteLength
        if (received > size) throw new UpstreamFailure(502, 'the upstream sent more bytes than its Content-Length')
        // R2 and the client take their pieces at the same time; the next is read once both have.
        await Promise.all([
          hashing.write(chunk),
          // A lost conditional write settles the put without reading on: stop feeding it.
          !r2Settled && Promise.race([r2.write(chunk), put.then(() => {}, () => {})]),
          held && !userGone && user!.write(held).catch(() => (userGone = true)),
        ])
        held = chunk
      }
      if (received !== size) throw new UpstreamFailure(502, `the upstream's blob was cut off at ${received} of ${size} bytes`)
      await hashing.close()
      if (toHex(new Uint8Array(await hash.digest)) !== hexOf(digest)) {
        throw new UpstreamFailure(502, `the upstream's blob does not match its digest ${digest}`)
      }
      if (!r2Settled) await r2.close()
      const blob: IndexedBlob | null = (await put.catch(() => null)) ?? (await headBlob(c.env, digest))   // R2 head when another writer won
      if (!blob) throw new UpstreamFailure(502, 'the blob could not be stored')
      await c.store.as('proxy').linkBlob(t.local, digest, blob, null)                // KV put
      if (held && !userGone) await user!.write(held).catch(() => (userGone = true))
      if (!userGone) await user!.close().catch(() => {})
      return blob
    } catch (err) {
      const failure = err instanceof UpstreamFailure ? err : new UpstreamFailure(502, 'the blob could not be stored')
      await Promise.all([
        // The reader is released once the generator returns; then the upstream body can be dropped.
        Promise.resolve(pieces.return?.(undefined)).then(() => upstream.cancel()).catch(() => {}),
        r2.abort(failure).catch(() => {}),
        user?.abort(failure).catch(() => {}),
        hashing.abort(failure).catch(() => {}),
      ])
      throw err instanceof RegistryError ? err : failure
    }
  })()
  return { client: toUser?.readable ?? null, stored }
}
