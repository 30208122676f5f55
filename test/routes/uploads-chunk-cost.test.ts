/**
 * Issue 20 (item 2): what one PATCH may cost in R2 calls and bytes moved has a ceiling, whatever
 * the chunk sizes and concurrency (src/upload/session.ts states it); small chunks land as pieces
 * instead of re-writing the tail; the POST asks for chunks of a part (OCI-Chunk-Min-Length).
 */
import { describe, expect, it } from 'vitest'
import type { Env } from '../../src/env'
import { DEFAULT_MAX_CHUNK_BYTES } from '../../src/settings/uploads'
import { MAX_PIECES, PART_SIZE } from '../../src/upload/session'
import { bindings, bytesOf, callWith, MiB, randomBlob, repoName, sha256, startUpload, streamOf, withDigest } from '../helpers'

/** R2 calls and bytes moved (written: puts and parts; read: gets) through one bucket. */
interface Meter {
  calls: number
  written: number
  read: number
}

function meteredBucket(): { bucket: R2Bucket; meter: Meter } {
  const meter: Meter = { calls: 0, written: 0, read: 0 }
  const sizeOf = (v: unknown): number => (v instanceof Uint8Array || v instanceof ArrayBuffer ? v.byteLength : typeof v === 'string' ? v.length : 0)
  const wrapUpload = (mp: R2MultipartUpload): R2MultipartUpload =>
    new Proxy(mp, {
      get(t, name, receiver) {
        const value = Reflect.get(t, name, receiver)
        if (typeof value !== 'function') return value
        return async (...args: unknown[]) => {
          meter.calls++
          if (name === 'uploadPart') meter.written += sizeOf(args[1])
          return (value as (...a: unknown[]) => unknown).apply(t, args)
        }
      },
    })
  const bucket = new Proxy(bindings.BLOBS, {
    get(t, name, receiver) {
      const value = Reflect.get(t, name, receiver)
      if (typeof value !== 'function') return value
      if (name === 'resumeMultipartUpload') return (key: string, id: string) => wrapUpload(t.resumeMultipartUpload(key, id))
      return async (...args: unknown[]) => {
        meter.calls++
        const out = await (value as (...a: unknown[]) => Promise<unknown>).apply(t, args)
        if (name === 'createMultipartUpload') return wrapUpload(out as R2MultipartUpload)
        if (name === 'put' && out) meter.written += (out as R2Object).size
        if (name === 'get' && out && 'body' in (out as object)) {
          const o = out as R2ObjectBody
          meter.read += (o.range as { length?: number } | undefined)?.length ?? o.size
        }
        return out
      }
    },
  })
  return { bucket, meter }
}

const range = (from: number, to: number) => ({ 'Content-Range': `${from}-${to - 1}` })
const patchVia = (bucket: R2Bucket | null, location: string, bytes: Uint8Array, from: number, sized = true) =>
  callWith(bucket ? ({ BLOBS: bucket } as Partial<Env>) : {}, location, {
    method: 'PATCH',
    ...(sized ? { body: bytes, headers: { 'Content-Length': String(bytes.length), ...range(from, from + bytes.length) } } : { body: streamOf(bytes) }),
  })

/** The ceiling session.ts states for one PATCH (a fold, the dearest kind). */
const maxCalls = (length: number) => MAX_PIECES + 5 + Math.ceil((DEFAULT_MAX_CHUNK_BYTES + PART_SIZE + length) / PART_SIZE) + 3
const maxBytes = (length: number) => 2 * (DEFAULT_MAX_CHUNK_BYTES + PART_SIZE) + length

async function closeAndCheck(repo: string, location: string, whole: Uint8Array): Promise<void> {
  const digest = await sha256(whole)
  const put = await callWith({}, withDigest(location, digest), { method: 'PUT' })
  expect(put.status, await put.clone().text()).toBe(201)
  const got = await bytesOf(await callWith({}, `/v2/${repo}/blobs/${digest}`))
  expect(got.length).toBe(whole.length)
  expect(await sha256(got)).toBe(digest)
}

/** Closes the blob the one 202 among `replies` made: `first`, then that request's chunk. */
async function closeWinner(repo: string, replies: Response[], first: Uint8Array, chunks: Uint8Array[]): Promise<void> {
  const won = replies.findIndex((r) => r.status === 202)
  const whole = new Uint8Array(first.length + chunks[won]!.length)
  whole.set(first)
  whole.set(chunks[won]!, first.length)
  await closeAndCheck(repo, replies[won]!.headers.get('Location')!, whole)
}

describe('OCI-Chunk-Min-Length', () => {
  it('is advertised on the POST that opens a session: a multipart part; none when MAX_CHUNK_BYTES is under a part', async () => {
    const res = await callWith({}, `/v2/${repoName('cost')}/blobs/uploads/`, { method: 'POST' })
    expect(res.headers.get('OCI-Chunk-Min-Length')).toBe(String(PART_SIZE))
    const small = await callWith({ MAX_CHUNK_BYTES: String(2 * MiB) }, `/v2/${repoName('cost')}/blobs/uploads/`, { method: 'POST' })
    expect(small.status).toBe(202)
    expect(small.headers.get('OCI-Chunk-Min-Length')).toBeNull()
  })
})

describe('small chunks land as pieces, without re-reading or re-writing the tail', () => {
  it('40 one-byte PATCHes after a tail of almost a part move about one part, not 40', async () => {
    const repo = repoName('cost')
    const first = randomBlob(PART_SIZE - 100_000)
    const extra = randomBlob(40)
    let location = (await patchVia(null, await startUpload(repo), first, 0)).headers.get('Location')!
    const { bucket, meter } = meteredBucket()
    for (let i = 0; i < extra.length; i++) {
      const res = await patchVia(bucket, location, extra.subarray(i, i + 1), first.length + i)
      expect(res.status, `chunk ${i}`).toBe(202)
      location = res.headers.get('Location')!
    }
    // one fold after MAX_PIECES pieces re-writes the tail once: before, each chunk did
    expect(meter.written).toBeLessThan(PART_SIZE + MiB)
    expect(meter.read).toBeLessThan(PART_SIZE + MiB)
    const whole = new Uint8Array(first.length + extra.length)
    whole.set(first)
    whole.set(extra, first.length)
    await closeAndCheck(repo, location, whole)
  })

  it.each([
    ['with Content-Range', true],
    ['chunked, no length', false],
  ] as const)('five concurrent 1-byte PATCHes at one Location after a 24 MiB first write (%s): one 202, bytes moved bounded', async (_how, sized) => {
    const repo = repoName('cost')
    const first = randomBlob(24 * MiB)
    const l1 = (await callWith({}, await startUpload(repo), { method: 'PATCH', body: first, headers: { 'Content-Length': String(first.length) } })).headers.get('Location')!
    const { bucket, meter } = meteredBucket()
    const bytes = [1, 2, 3, 4, 5].map((b) => new Uint8Array([b]))
    const replies = await Promise.all(bytes.map((b) => patchVia(bucket, l1, b, first.length, sized)))
    expect(replies.map((r) => r.status).sort()).toEqual([202, 416, 416, 416, 416])
    // A piece each (a few bytes; of unknown length too: read whole first, being small): never
    // the first write read back, let alone once per request.
    expect(meter.written + meter.read).toBeLessThan(MiB)
    expect(meter.calls).toBeLessThan(5 * maxCalls(1))
    await closeWinner(repo, replies, first, bytes)
  })
})

describe('a chunk of unknown length after a first write sent whole', () => {
  it('over the probe: one fold, claimed, reads that write back once; concurrent ones stop at the claim', async () => {
    const repo = repoName('cost')
    const first = randomBlob(24 * MiB)
    const l1 = (await callWith({}, await startUpload(repo), { method: 'PATCH', body: first, headers: { 'Content-Length': String(first.length) } })).headers.get('Location')!
    const { bucket, meter } = meteredBucket()
    const chunks = [1, 2, 3].map(() => randomBlob(2 * MiB))
    const replies = await Promise.all(chunks.map((c) => patchVia(bucket, l1, c, first.length, false)))
    expect(replies.map((r) => r.status).sort()).toEqual([202, 416, 416])
    expect(meter.read).toBeLessThan(first.length + MiB) // the winner's fold only
    await closeWinner(repo, replies, first, chunks)
  })
})

describe('the ceiling of one PATCH', () => {
  it('holds for every request of an upload in chunks of every size, sized or not', async () => {
    const repo = repoName('cost')
    // sizes that hit every kind of write: a first write sent whole, pieces, folds with and
    // without parts, a chunk of unknown length, more pieces than MAX_PIECES
    const sizes = [12 * MiB + 7, 1, 3 * MiB, 100, ...Array.from({ length: MAX_PIECES + 2 }, () => 1000), 11 * MiB, 5, 2 * MiB + 3]
    const blob = randomBlob(sizes.reduce((n, s) => n + s, 0))
    let location = await startUpload(repo)
    let at = 0
    for (const [i, size] of sizes.entries()) {
      const { bucket, meter } = meteredBucket()
      const sized = i % 7 !== 5
      const res = await patchVia(bucket, location, blob.subarray(at, at + size), at, sized)
      expect(res.status, `chunk ${i} (${size} bytes)`).toBe(202)
      expect(meter.calls, `chunk ${i}: calls`).toBeLessThanOrEqual(maxCalls(size))
      expect(meter.written + meter.read, `chunk ${i}: bytes`).toBeLessThanOrEqual(maxBytes(size))
      location = res.headers.get('Location')!
      at += size
    }
    await closeAndCheck(repo, location, blob)
  })
})
