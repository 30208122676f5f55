/**
 * R2 failing at each call an upload makes (a put, a read of the session's pending bytes, a part
 * upload, the complete) is the registry's failure: 500 UNKNOWN with the spec's error JSON, never
 * a 4xx that blames the client (a 416 telling it the session moved when it did not); nothing
 * half-written is served, no multipart upload is left named by no state, and the same request
 * sent again goes on.
 */
import { describe, expect, it, vi } from 'vitest'
import { LEASE_BASE_MS, PART_SIZE } from '../../src/upload/session'
import { expectServed, expectStoreFailure, faulty, type Op } from '../faulty-bucket'
import { bindings, call, callWith, errorCode, listObjects, randomBlob, repoName, sha256, slowBody, startUpload, streamOf, withDigest } from '../helpers'

/** Fails the first call `op` whose key `matches`, once. */
function once(op: Op, matches: (key: string) => boolean = () => true, broken = false) {
  let done = false
  return faulty((o, key) => {
    if (done || o !== op || !matches(key)) return false
    return (done = true)
  }, broken)
}

/** Whether R2 still holds the multipart upload `mp` of the session at `key` (an aborted one refuses a part). */
async function isOpen(key: string, mp: string): Promise<boolean> {
  try {
    await bindings.BLOBS.resumeMultipartUpload(key, mp).uploadPart(1, new Uint8Array(1))
    return true
  } catch {
    return false
  }
}

const sessionId = (location: string) => new URL(location, 'http://x').pathname.split('/').pop()!
const partsKeyOf = (location: string) => `data/${sessionId(location)}/parts`

/** A session whose first write went through parts (docker's one PATCH of unknown length): its Location and bytes. */
async function withParts(repo: string, size = PART_SIZE + 20_000): Promise<{ location: string; bytes: Uint8Array }> {
  const bytes = randomBlob(size)
  const location = await startUpload(repo)
  const res = await call(location, { method: 'PATCH', body: streamOf(bytes), duplex: 'half' } as RequestInit)
  expect(res.status).toBe(202)
  return { location: res.headers.get('location')!, bytes }
}

const chunk = (bytes: Uint8Array, from: number): RequestInit => ({
  method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length), 'Content-Range': `${from}-${from + bytes.length - 1}` },
})

/** The chunk `next` sent again from `location` (after `bytes`) is taken; closed, the blob is served whole. */
async function expectGoesOn(repo: string, location: string, bytes: Uint8Array, next: Uint8Array): Promise<void> {
  const again = await call(location, chunk(next, bytes.length))
  expect(again.status).toBe(202)
  const whole = new Uint8Array([...bytes, ...next])
  const digest = await sha256(whole)
  expect((await call(withDigest(again.headers.get('location')!, digest), { method: 'PUT' })).status).toBe(201)
  await expectServed(repo, digest)
}

describe('a later chunk that folds into parts, R2 failing', () => {
  it.each([
    ['a part upload', 'uploadPart', false],
    ['the read of the tail, at once', 'get', false],
    ['the read of the tail, mid-body', 'get', true],
    ['the put of the new tail', 'put', false],
  ] as const)('%s: 500 UNKNOWN; sent again, it is stored, and the blob is served whole', async (_what, op, broken) => {
    const repo = repoName('store-faults')
    const { location, bytes } = await withParts(repo)
    const next = randomBlob(PART_SIZE)
    // the claim is the fold's first put: fail the one after it (the tail) when it is the put tested
    let puts = 0
    const fault = op === 'put' ? faulty((o) => o === 'put' && ++puts === 2) : once(op, () => true, broken)
    const failed = await callWith({ BLOBS: fault.BLOBS }, location, chunk(next, bytes.length))
    await expectStoreFailure(failed, op)
    const status = await call(location)
    expect(status.status).toBe(204)
    expect(status.headers.get('range')).toBe(`0-${bytes.length - 1}`)
    await expectGoesOn(repo, location, bytes, next)
  })

  it('the put of the new tail: the multipart upload it started is aborted', async () => {
    const repo = repoName('store-faults')
    // a first write of one piece-sized chunk, then a chunk that starts the parts
    const first = randomBlob(PART_SIZE - 10)
    const location = await startUpload(repo)
    const res = await call(location, chunk(first, 0))
    expect(res.status).toBe(202)
    const next = randomBlob(PART_SIZE)
    let puts = 0
    const fault = faulty((o) => o === 'put' && ++puts === 2)
    await expectStoreFailure(await callWith({ BLOBS: fault.BLOBS }, res.headers.get('location')!, chunk(next, first.length)), 'PATCH')
    expect(fault.started).toHaveLength(1)
    expect(await isOpen(partsKeyOf(location), fault.started[0]!)).toBe(false)
  })
})

describe('a first write through parts, R2 failing to put its tail', () => {
  it('500 UNKNOWN; the multipart upload it started is aborted; sent again, it is stored', async () => {
    const repo = repoName('store-faults')
    const bytes = randomBlob(PART_SIZE + 20_000)
    const location = await startUpload(repo)
    const fault = once('put')
    await expectStoreFailure(await callWith({ BLOBS: fault.BLOBS }, location, { method: 'PATCH', body: streamOf(bytes), duplex: 'half' } as RequestInit), 'PATCH')
    expect(fault.started).toHaveLength(1)
    expect(await isOpen(partsKeyOf(location), fault.started[0]!)).toBe(false)
    const again = await call(location, { method: 'PATCH', body: streamOf(bytes), duplex: 'half' } as RequestInit)
    expect(again.status).toBe(202)
    const digest = await sha256(bytes)
    expect((await call(withDigest(again.headers.get('location')!, digest), { method: 'PUT' })).status).toBe(201)
    await expectServed(repo, digest)
  })
})

describe('the common close of a first write in parts, R2 failing', () => {
  it.each([
    ['the read of the tail', 'get'],
    ['the last part upload', 'uploadPart'],
    ['the complete', 'complete'],
  ] as const)('%s: 500 UNKNOWN, nothing served; sent again, the blob is served whole', async (_what, op) => {
    const repo = repoName('store-faults')
    const { location, bytes } = await withParts(repo)
    const digest = await sha256(bytes)
    await expectStoreFailure(await callWith({ BLOBS: once(op).BLOBS }, withDigest(location, digest), { method: 'PUT' }), op)
    expect((await call(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    const closed = await call(withDigest(location, digest), { method: 'PUT' })
    expect(closed.status).toBe(201)
    await expectServed(repo, digest)
  })
})

describe('other calls of an upload, R2 failing', () => {
  it.each([
    ['a later chunk written as a piece: its put', 'put', 5000],
    ['a later chunk that folds: its claim', 'put', PART_SIZE],
    ['a later chunk that folds: the status read of a first write (head)', 'head', PART_SIZE],
  ] as const)('%s: 500 UNKNOWN; sent again, it is stored', async (_what, op, size) => {
    const repo = repoName('store-faults')
    const { location, bytes } = await withParts(repo)
    const next = randomBlob(size)
    await expectStoreFailure(await callWith({ BLOBS: once(op).BLOBS }, location, chunk(next, bytes.length)), op)
    await expectGoesOn(repo, location, bytes, next)
  })

  it.each([
    ['a first write of unknown length', false],
    ['a first write with Content-Range over 8 MiB', true],
  ] as const)('%s: createMultipartUpload fails: 500 UNKNOWN; sent again, it is stored', async (_what, withRange) => {
    const repo = repoName('store-faults')
    const bytes = randomBlob(PART_SIZE + 20_000)
    const location = await startUpload(repo)
    const init = (): RequestInit => (withRange
      ? chunk(bytes, 0)
      : { method: 'PATCH', body: streamOf(bytes), duplex: 'half' } as RequestInit)
    await expectStoreFailure(await callWith({ BLOBS: once('createMultipartUpload').BLOBS }, location, init()), 'PATCH')
    const again = await call(location, init())
    expect(again.status).toBe(202)
    const digest = await sha256(bytes)
    expect((await call(withDigest(again.headers.get('location')!, digest), { method: 'PUT' })).status).toBe(201)
    await expectServed(repo, digest)
  })

  it('GET of a session, its list failing: 500 UNKNOWN', async () => {
    const repo = repoName('store-faults')
    const { location } = await withParts(repo)
    await expectStoreFailure(await callWith({ BLOBS: once('list').BLOBS }, location), 'GET')
  })

  it('DELETE, the abort of its parts failing: the session is cancelled all the same', async () => {
    const repo = repoName('store-faults')
    const { location } = await withParts(repo)
    const res = await callWith({ BLOBS: once('abort').BLOBS }, location, { method: 'DELETE' })
    expect(res.status).toBe(204)
    expect((await call(location)).status).toBe(404)
  })
})

describe('the close of a session of several chunks in parts, R2 failing', () => {
  it.each([
    ['the last part upload', 'uploadPart'],
    ['the complete', 'complete'],
  ] as const)('%s: 500 UNKNOWN (the registry’s failure, logged), nothing served, its parts aborted', async (_what, op) => {
    const repo = repoName('store-faults')
    const first = randomBlob(PART_SIZE)
    const last = randomBlob(20_000)
    const location = await startUpload(repo)
    const one = await call(location, chunk(first, 0))
    expect(one.status).toBe(202)
    const two = await call(one.headers.get('location')!, chunk(last, first.length))
    expect(two.status).toBe(202)
    const whole = new Uint8Array([...first, ...last])
    const digest = await sha256(whole)
    const fault = once(op)
    await expectStoreFailure(await callWith({ BLOBS: fault.BLOBS }, withDigest(two.headers.get('location')!, digest), { method: 'PUT' }), op)
    expect((await call(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    // its end mark is placed before the parts are completed: the session is over (the client starts again)
    expect((await call(two.headers.get('location')!)).status).toBe(404)
    const mp = (await listObjects(`data/${sessionId(location)}/`)).map((o) => o.customMetadata?.mp).find(Boolean)!
    expect(mp).toMatch(/\S/)
    expect(await isOpen(partsKeyOf(location), mp)).toBe(false)
  })
})

describe('a folding chunk too slow for its claim', () => {
  it('400 BLOB_UPLOAD_INVALID (the client’s), its claim given up; sent again, it is stored', async () => {
    const repo = repoName('store-faults')
    const { location, bytes } = await withParts(repo)
    const next = randomBlob(PART_SIZE)
    const slow = slowBody(next, 1024 * 1024)
    const sending = callWith({}, location, { ...chunk(next, bytes.length), body: slow.stream, duplex: 'half' } as RequestInit)
    await slow.reading
    // the fold has claimed its offset (its lease is counted from then): now its time runs out
    const claimed = async () => (await listObjects(`data/${sessionId(location)}/`)).some((o) => o.customMetadata?.claim)
    while (!(await claimed())) await new Promise((r) => setTimeout(r, 10))
    const now = Date.now()
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => now + 2 * LEASE_BASE_MS + 3_600_000)
    try {
      slow.open()
      const res = await sending
      expect(res.status).toBe(400)
      expect(await errorCode(res)).toBe('BLOB_UPLOAD_INVALID')
    } finally {
      clock.mockRestore()
    }
    await expectGoesOn(repo, location, bytes, next)
  })
})
