/**
 * Where an upload's bytes go in R2, step by step (src/upload/session.ts, storage/uploads.ts),
 * against the real (simulated) bucket. Each test starts with an empty bucket.
 */
import { reset } from 'cloudflare:test'
import { beforeEach, describe, expect, it } from 'vitest'
import type { Env } from '../../src/env'
import type { Digest, Repo } from '../../src/names'
import { keys } from '../../src/storage/keys'
import { append, BUFFER_LIMIT, cancel, close, Moved, open, PART_SIZE, status, type Body } from '../../src/upload/session'
import { forgetKept } from '../../src/upload/kept'
import type { UploadState } from '../../src/upload/state'
import { bindings as env, listObjects, MiB, randomBlob, sha256, sha512, streamOf } from '../helpers'

const repo = 'unit/session' as Repo
const LIMIT = 95 * MiB

beforeEach(async () => {
  await reset()
})

const sized = (bytes: Uint8Array, chunked = false): Body => ({ stream: new Response(bytes).body!, length: bytes.length, chunked, limit: LIMIT })
const unsized = (bytes: Uint8Array): Body => ({ stream: streamOf(bytes, 500_001), length: null, chunked: false, limit: LIMIT })
const d256 = async (b: Uint8Array) => (await sha256(b)) as Digest

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a failure')
}
const codeOf = async (p: Promise<unknown>) => ((await failure(p)) as { code?: string }).code

/** Keys of the session's objects, in order. */
const sessionKeys = async (s: UploadState) => (await listObjects(keys.upload(s.id))).map((o) => o.key)

/** A bucket that records the bytes each get returns. */
function readCounter(): { env: Env; read: number[] } {
  const read: number[] = []
  const bucket = new Proxy(env.BLOBS, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver)
      if (name !== 'get') return typeof value === 'function' ? value.bind(target) : value
      return async (...args: Parameters<R2Bucket['get']>) => {
        const object = await target.get(...args)
        if (object && 'body' in object) read.push(object.size - ((args[1]?.range as { offset?: number } | undefined)?.offset ?? 0))
        return object
      }
    },
  })
  return { env: { ...env, BLOBS: bucket }, read }
}

describe('limits', () => {
  it('uses equal multipart parts R2 accepts, and keeps small chunked first writes whole', () => {
    expect(PART_SIZE).toBeGreaterThanOrEqual(5 * MiB)
    expect(BUFFER_LIMIT).toBeLessThanOrEqual(PART_SIZE)
  })
})

describe('append', () => {
  it('writes a first write of known length once, at offset 0, with the progress after it and its digest', async () => {
    const bytes = randomBlob(BUFFER_LIMIT + 1)
    const state = await append(env, open(repo), sized(bytes))
    expect(state).toMatchObject({ offset: bytes.length, at: 0, size: bytes.length, mp: '', sum: (await d256(bytes)).slice(7) })
    const objects = await listObjects(keys.upload(state.id))
    expect(objects.map((o) => [o.key, o.size])).toEqual([[keys.uploadWrite(state.id, 0), bytes.length]])
    expect(JSON.parse(objects[0]!.customMetadata!.state!)).toMatchObject({ offset: bytes.length, at: 0 })
    expect(objects[0]!.customMetadata!.started).toBe(String(state.started))

    const blob = await close(env, state, await d256(bytes))
    expect(blob).toMatchObject({ at: keys.uploadWrite(state.id, 0), size: bytes.length, repo })
    expect(await sessionKeys(state)).toEqual([keys.uploadWrite(state.id, 0)]) // nothing else: the blob index tells it ended
  })

  it('hashes only the session’s algorithm', async () => {
    const bytes = randomBlob(5000)
    const state = await append(env, open(repo, '', 'sha512'), sized(bytes))
    expect(state.sum).toBe((await sha512(bytes)).slice(7))
    expect((await close(env, state, (await sha512(bytes)) as Digest)).size).toBe(5000)
  })

  it('streams a body of unknown length through parts; the first write (offset 0) holds the etags and the rest', async () => {
    const bytes = randomBlob(2 * PART_SIZE + 7)
    const state = await append(env, open(repo), unsized(bytes))
    expect(state).toMatchObject({ offset: bytes.length, at: 0, size: 7, parts: 2 })
    expect(state.mp).not.toBe('')
    expect(state.sum).toBe((await d256(bytes)).slice(7))
    const [first] = await listObjects(keys.upload(state.id))
    expect(first!.customMetadata!.mp).toBe(state.mp) // the collector can abort the parts
    const blob = await close(env, state, await d256(bytes))
    expect(blob.at).toBe(keys.uploadParts(state.id))
    const parts = await env.BLOBS.get(keys.uploadParts(state.id))
    expect(await sha256(new Uint8Array(await parts!.arrayBuffer()))).toBe(await sha256(bytes))
  })

  it('writes a chunk that fills no part once, as a piece, once there are parts', async () => {
    const bytes = randomBlob(PART_SIZE + 3 * MiB)
    const first = await append(env, open(repo), sized(bytes.subarray(0, PART_SIZE + MiB), true))
    const piece = await append(env, first, sized(bytes.subarray(PART_SIZE + MiB, PART_SIZE + 2 * MiB), true))
    expect(piece).toMatchObject({ at: first.at, size: first.size, more: [[PART_SIZE + MiB, MiB]] })
    expect(piece.sum).toBeUndefined() // several requests: the hash is kept in the isolate instead
    const last = await append(env, piece, sized(bytes.subarray(PART_SIZE + 2 * MiB), true))
    const { env: counting, read } = readCounter()
    expect((await close(counting, last, await d256(bytes))).size).toBe(bytes.length)
    expect(read.every((n) => n < PART_SIZE)).toBe(true) // the kept hash went on through the piece: no read-back
  })

  it('never re-reads more than a part’s remainder per chunk', async () => {
    const bytes = randomBlob(4 * PART_SIZE + 5 * MiB)
    const chunk = PART_SIZE + 3 * MiB // leaves a remainder every time
    let state = open(repo)
    const { env: counting, read } = readCounter()
    for (let at = 0; at < bytes.length; at += chunk) {
      state = await append(counting, state, sized(bytes.subarray(at, at + chunk), true))
    }
    expect(read.length).toBeGreaterThan(0)
    for (const n of read) expect(n).toBeLessThan(PART_SIZE + 4096) // the tail: a remainder and the etag list
    expect((await close(env, state, await d256(bytes))).size).toBe(bytes.length)
  })

  it('leaves the state as it is for an empty body, storing nothing', async () => {
    const state = open(repo)
    expect(await append(env, state, { stream: null, length: null, chunked: false, limit: LIMIT })).toBe(state)
    expect(await append(env, state, unsized(new Uint8Array(0)))).toBe(state)
    expect(await listObjects()).toEqual([])
  })

  it('refuses a body that does not match its Content-Length, storing nothing', async () => {
    for (const declared of [999, 1001, BUFFER_LIMIT + 1]) {
      const body = { ...sized(randomBlob(1000)), length: declared }
      expect(['SIZE_INVALID', 'BLOB_UPLOAD_INVALID']).toContain(await codeOf(append(env, open(repo), body)))
    }
    expect(await listObjects()).toEqual([])
  })
})

describe('a state that is not the latest', () => {
  it('is refused at its offset and told the truth (Moved), the session untouched', async () => {
    const bytes = randomBlob(20_000)
    const s0 = open(repo)
    const s1 = await append(env, s0, sized(bytes.subarray(0, 8000)))
    const s2 = await append(env, s1, sized(bytes.subarray(8000, 12_000), true))
    for (const [stale, chunk] of [[s0, bytes.subarray(0, 8000)], [s1, bytes.subarray(8000, 12_000)]] as const) {
      const err = await failure(append(env, stale, sized(chunk, true)))
      expect(err).toBeInstanceOf(Moved)
      expect((err as Moved).truth).toMatchObject({ offset: 12_000, at: 0, more: [[8000, 4000]] }) // the second chunk: a piece
    }
    expect((await status(env, s0)).offset).toBe(12_000)
    const s3 = await append(env, s2, sized(bytes.subarray(12_000), true))
    expect((await close(env, s3, await d256(bytes))).size).toBe(20_000)
  })

  it('of an ended session is BLOB_UPLOAD_UNKNOWN', async () => {
    const bytes = randomBlob(3000)
    const s0 = open(repo)
    const s1 = await append(env, s0, sized(bytes))
    await close(env, s1, await d256(bytes))
    expect(await codeOf(append(env, s1, sized(randomBlob(10))))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await codeOf(append(env, s0, sized(bytes)))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await codeOf(close(env, s1, await d256(bytes)))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await codeOf(status(env, s0))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await codeOf(cancel(env, s1))).toBe('BLOB_UPLOAD_UNKNOWN')
  })
})

describe('close', () => {
  it('refuses a digest the bytes do not have, and the session is over', async () => {
    const bytes = randomBlob(5000)
    const state = await append(env, open(repo), sized(bytes))
    expect(await codeOf(close(env, state, await d256(randomBlob(10))))).toBe('DIGEST_INVALID')
    expect(await codeOf(close(env, state, await d256(bytes)))).toBe('BLOB_UPLOAD_UNKNOWN')
    // the end mark at its offset; the first write is never replaced (the collector removes it)
    expect((await env.BLOBS.head(keys.uploadWrite(state.id, bytes.length)))?.customMetadata?.ended).toBe('closed')
    expect((await env.BLOBS.head(keys.uploadWrite(state.id, 0)))?.size).toBe(bytes.length)
    expect(await env.BLOBS.head(keys.blob(await d256(bytes)))).toBeNull()
  })

  it('verifies a digest of the algorithm it did not hash by reading the bytes back', async () => {
    const bytes = randomBlob(PART_SIZE + 100)
    const state = await append(env, open(repo), unsized(bytes))
    expect(await codeOf(close(env, state, (await sha512(randomBlob(10))) as Digest))).toBe('DIGEST_INVALID')
    expect(await env.BLOBS.head(keys.uploadParts(state.id))).toBeNull() // the completed parts are deleted again
    const again = await append(env, open(repo), unsized(bytes))
    expect((await close(env, again, (await sha512(bytes)) as Digest)).at).toBe(keys.uploadParts(again.id))
  })

  it('stores the empty blob for a session that received nothing', async () => {
    const empty = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' as Digest
    const state = open(repo)
    expect(await close(env, state, empty)).toMatchObject({ at: keys.blob(empty), size: 0 })
    expect(await codeOf(close(env, state, empty))).toBe('BLOB_UPLOAD_UNKNOWN')
  })

  it('lets the first of two uploads of the same bytes win; the loser’s session ends, its bytes left to the collector', async () => {
    const bytes = randomBlob(40_000)
    const d = await d256(bytes)
    const [a, b] = await Promise.all([append(env, open(repo), sized(bytes)), append(env, open(repo), sized(bytes))])
    const won = await close(env, a!, d)
    expect(await close(env, b!, d)).toMatchObject({ at: won.at, size: bytes.length })
    expect(await sessionKeys(b!)).toEqual([keys.uploadWrite(b!.id, 0), keys.uploadWrite(b!.id, bytes.length)])
    expect((await env.BLOBS.head(keys.uploadWrite(b!.id, bytes.length)))?.customMetadata?.ended).toBe('duplicate')
    expect(await codeOf(status(env, b!))).toBe('BLOB_UPLOAD_UNKNOWN')
    // the loser's Locations are spent too: its close replayed, a further chunk, a cancel
    expect(await codeOf(close(env, b!, d))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await codeOf(append(env, b!, sized(randomBlob(10), true)))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await codeOf(cancel(env, b!))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect((await env.BLOBS.head(keys.blob(d)))?.customMetadata?.at).toBe(won.at)
  })
})

describe('the hash of a session that spans requests', () => {
  beforeEach(() => forgetKept())

  it('is kept in the isolate from one request to the next, and the close reads only the tail', async () => {
    const bytes = randomBlob(2 * PART_SIZE + 3 * MiB)
    const chunk = PART_SIZE + MiB
    let state = open(repo)
    const { env: counting, read } = readCounter()
    for (let at = 0; at < bytes.length; at += chunk) {
      state = await append(counting, state, sized(bytes.subarray(at, at + chunk), true))
      expect(state.hs).toBeUndefined() // nothing saved with the state
    }
    read.length = 0
    expect((await close(counting, state, await d256(bytes))).size).toBe(bytes.length)
    // the tail and pieces after it, for the last part (under a part in all); no read of the blob
    expect(read.reduce((n, m) => n + m, 0)).toBeLessThan(PART_SIZE + 4096)
  })

  it('is started from the first write when the second chunk, in another isolate, folds it into parts: read once, no added call', async () => {
    const bytes = randomBlob(PART_SIZE + 2 * MiB)
    const first = await append(env, open(repo), sized(bytes.subarray(0, 3 * MiB)))
    forgetKept()
    const { env: counting, read } = readCounter()
    const second = await append(counting, first, sized(bytes.subarray(3 * MiB), true))
    expect(read).toEqual([3 * MiB])
    read.length = 0
    expect((await close(counting, second, await d256(bytes))).size).toBe(bytes.length)
    expect(read).toEqual([second.size + second.skip])
  })

  it('refuses a digest the chunks do not have, and the session is over', async () => {
    const bytes = randomBlob(2 * MiB)
    const first = await append(env, open(repo), sized(bytes.subarray(0, MiB), true))
    const last = await append(env, first, sized(bytes.subarray(MiB), true))
    expect(await codeOf(close(env, last, await d256(randomBlob(10))))).toBe('DIGEST_INVALID')
    expect(await codeOf(close(env, last, await d256(bytes)))).toBe('BLOB_UPLOAD_UNKNOWN')
  })

  it('hashes a sha512 session as it comes; closed with sha256 it reads the bytes back', async () => {
    const bytes = randomBlob(PART_SIZE + 3 * MiB)
    const chunks = async () => {
      const first = await append(env, open(repo, '', 'sha512'), sized(bytes.subarray(0, PART_SIZE + MiB), true))
      return append(env, first, sized(bytes.subarray(PART_SIZE + MiB), true))
    }
    const { env: counting, read } = readCounter()
    const s512 = await chunks()
    expect(await codeOf(close(counting, s512, (await sha512(randomBlob(10))) as Digest))).toBe('DIGEST_INVALID')
    expect(read.every((n) => n < PART_SIZE)).toBe(true)
    expect((await close(counting, await chunks(), (await sha512(bytes)) as Digest)).size).toBe(bytes.length)
    expect(read.every((n) => n < PART_SIZE)).toBe(true)
    read.length = 0
    expect((await close(counting, await chunks(), await d256(bytes))).size).toBe(bytes.length)
    expect(read).toContain(bytes.length)
  })

  it('is missing in another isolate once the bytes are in parts: the close reads them back, and still tells a wrong digest', async () => {
    const bytes = randomBlob(2 * PART_SIZE + 3 * MiB)
    const twoChunks = async () => {
      const first = await append(env, open(repo), sized(bytes.subarray(0, PART_SIZE + MiB), true))
      forgetKept()
      return append(env, first, sized(bytes.subarray(PART_SIZE + MiB), true))
    }
    const { env: counting, read } = readCounter()
    expect(await codeOf(close(counting, await twoChunks(), await d256(randomBlob(10))))).toBe('DIGEST_INVALID')
    expect(read).toContain(bytes.length)
    read.length = 0
    expect((await close(counting, await twoChunks(), await d256(bytes))).size).toBe(bytes.length)
    expect(read).toContain(bytes.length)
  })

  it('is taken by one of two chunks racing at an offset: whichever wins, the close verifies the bytes it stored', async () => {
    const head = randomBlob(PART_SIZE + MiB)
    const a = randomBlob(PART_SIZE + 2 * MiB)
    const b = randomBlob(PART_SIZE + 3 * MiB)
    const first = await append(env, open(repo), sized(head, true))
    const [ra, rb] = await Promise.allSettled([append(env, first, sized(a, true)), append(env, first, sized(b, true))])
    const won = ra.status === 'fulfilled' ? { state: ra.value, body: a } : rb.status === 'fulfilled' ? { state: rb.value, body: b } : null
    expect(won).not.toBeNull()
    expect([ra.status, rb.status].filter((x) => x === 'fulfilled')).toHaveLength(1)
    const lost = won!.body === a ? b : a
    expect(await codeOf(close(env, won!.state, await d256(new Uint8Array([...head, ...lost]))))).toBe('DIGEST_INVALID')
    const again = await append(env, first, sized(head, true)).catch(() => null) // offset 0 is taken: refused
    expect(again).toBeNull()
  })

  it('of an old state is never used for a later offset: a replayed close is refused', async () => {
    const bytes = randomBlob(3 * MiB)
    const first = await append(env, open(repo), sized(bytes.subarray(0, MiB), true))
    const second = await append(env, first, sized(bytes.subarray(MiB, 2 * MiB), true))
    const third = await append(env, second, sized(bytes.subarray(2 * MiB), true))
    // the first state's digest is of its own bytes; the session has moved on from it
    expect(await failure(close(env, first, await d256(bytes.subarray(0, MiB))))).toBeInstanceOf(Moved)
    expect((await close(env, third, await d256(bytes))).size).toBe(bytes.length)
  })
})

describe('cancel', () => {
  it('ends the session where it stands, marks it and aborts its parts; its writes are left to the collector', async () => {
    const bytes = randomBlob(PART_SIZE + MiB)
    const s1 = await append(env, open(repo), unsized(bytes))
    await cancel(env, s1)
    const objects = await listObjects(keys.upload(s1.id))
    expect(objects.map((o) => [o.key, o.size, o.customMetadata?.ended])).toEqual([
      [keys.uploadWrite(s1.id, 0), s1.skip + s1.size, undefined],
      [keys.uploadWrite(s1.id, bytes.length), 0, 'cancelled'],
    ])
    const parts = env.BLOBS.resumeMultipartUpload(keys.uploadParts(s1.id), s1.mp)
    await expect(parts.uploadPart(3, randomBlob(10))).rejects.toThrow() // aborted
    expect(await codeOf(append(env, s1, sized(randomBlob(10))))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await codeOf(close(env, s1, await d256(bytes)))).toBe('BLOB_UPLOAD_UNKNOWN')
  })
})

it('keeps the state JSON small enough for a URL', async () => {
  const bytes = randomBlob(PART_SIZE + 5)
  let state: UploadState = await append(env, open(repo), unsized(bytes))
  for (let i = 0; i < 32; i++) state = await append(env, state, sized(randomBlob(1000), true))
  expect(state.more).toHaveLength(32)
  expect(JSON.stringify(state).length).toBeLessThan(2000)
  // a sha512 session keeps its hash state too (R2 metadata: 8 KiB; a Location's state: 8 KiB)
  let chunked: UploadState = await append(env, open(repo, '', 'sha512'), sized(randomBlob(PART_SIZE + 5), true))
  for (let i = 0; i < 32; i++) chunked = await append(env, chunked, sized(randomBlob(1000), true))
  expect(chunked.more).toHaveLength(32)
  expect(JSON.stringify(chunked).length).toBeLessThan(2400)
})

it('reads the truth of a session with more writes than one listing page holds', async () => {
  // Writes stay until the collector's expiry: 1 MiB chunks of a 1 GiB blob leave 1024 of them.
  const state = open(repo)
  for (let from = 0; from < 1001; from += 250) {
    await Promise.all(Array.from({ length: Math.min(250, 1001 - from) }, (_, k) => {
      const at = from + k
      const progress = { offset: at + 1, alg: 'sha256', at, size: 1, skip: 0, mp: '', parts: 0 }
      return env.BLOBS.put(keys.uploadWrite(state.id, at), 'x', { customMetadata: { started: String(state.started), state: JSON.stringify(progress) } })
    }))
  }
  expect(await status(env, state)).toMatchObject({ offset: 1001, at: 1000 })
})
