/**
 * Issue 8: the server's view of an upload session is authoritative, whichever of its
 * Locations a request carries; `digest-algorithm`; junk upload ids; an empty append
 * touches no storage. Through the worker with real (simulated) R2 and KV.
 */
import { describe, expect, it } from 'vitest'
import type { Env } from '../../src/env'
import { PART_SIZE } from '../../src/upload/session'
import {
  bindings, bytesOf, call, callWith, errorCode, MiB, ORIGIN, randomBlob, repoName, sha256, sha512, startUpload, streamOf,
  withDigest,
} from '../helpers'

type Reply = Response

async function expectUnknown(res: Reply, what: string): Promise<void> {
  expect(res.status, what).toBe(404)
  expect(await errorCode(res), what).toBe('BLOB_UPLOAD_UNKNOWN')
}

/** Asserts a progress reply (202/204/416) at `received` bytes: its Location. */
function expectAt(res: Reply, status: number, received: number, what = ''): string {
  expect(res.status, what).toBe(status)
  expect(res.headers.get('Range'), what).toBe(`0-${Math.max(0, received - 1)}`)
  const location = res.headers.get('Location')
  expect(location, what).toBeTruthy()
  return location!
}

const patch = (location: string, chunk: Uint8Array, headers: Record<string, string> = {}) =>
  call(location, { method: 'PATCH', body: chunk, headers: { 'Content-Length': String(chunk.length), ...headers } })
const patchStreamed = (location: string, chunk: Uint8Array) =>
  callWith({}, location, { method: 'PATCH', body: streamOf(chunk, 300_001) })
const range = (from: number, to: number) => ({ 'Content-Range': `${from}-${to - 1}` })

async function expectServed(repo: string, digest: string, bytes: Uint8Array): Promise<void> {
  const res = await call(`/v2/${repo}/blobs/${digest}`)
  expect(res.status).toBe(200)
  const got = await bytesOf(res)
  expect(got.length).toBe(bytes.length)
  expect(await sha256(got)).toBe(await sha256(bytes))
}

/** Every method with `location` answers 404 BLOB_UPLOAD_UNKNOWN. */
async function expectSpent(location: string, digest: string, what: string): Promise<void> {
  await expectUnknown(await call(location), `${what}: GET`)
  await expectUnknown(await patch(location, randomBlob(100)), `${what}: PATCH`)
  await expectUnknown(await call(withDigest(location, digest), { method: 'PUT' }), `${what}: PUT`)
  await expectUnknown(await call(withDigest(location, digest), { method: 'PUT', body: randomBlob(10) }), `${what}: PUT with a body`)
  await expectUnknown(await call(location, { method: 'DELETE' }), `${what}: DELETE`)
}

describe('a chunk re-sent with the Location from before it', () => {
  it.each([
    ['with Content-Length', false],
    ['without Content-Length', true],
  ] as const)('first chunk %s: 416 with the true Range and latest Location; the session carries on', async (_how, streamed) => {
    const repo = repoName('authority')
    const bytes = randomBlob(300_000)
    const first = bytes.subarray(0, 100_000)
    const l0 = await startUpload(repo)
    const l1 = expectAt(streamed ? await patchStreamed(l0, first) : await patch(l0, first), 202, 100_000)

    const again = streamed ? await patchStreamed(l0, first) : await patch(l0, first)
    const latest = expectAt(again, 416, 100_000, 're-sent')
    expect(await errorCode(again)).toBe('RANGE_INVALID')
    // the Location it answers with continues the session where it truly is
    const l2 = expectAt(await patch(latest, bytes.subarray(100_000), range(100_000, 300_000)), 202, 300_000)
    expect((await call(withDigest(l2, await sha256(bytes)), { method: 'PUT' })).status).toBe(201)
    await expectServed(repo, await sha256(bytes), bytes)
    void l1
  })

  it('a later chunk: 416, and the bytes accepted once (parts untouched by the re-send)', async () => {
    const repo = repoName('authority')
    const bytes = randomBlob(PART_SIZE + 3 * MiB)
    const cut = [0, MiB, PART_SIZE + MiB, bytes.length]
    const l0 = await startUpload(repo)
    const l1 = expectAt(await patch(l0, bytes.subarray(cut[0], cut[1]), range(cut[0]!, cut[1]!)), 202, cut[1]!)
    const l2 = expectAt(await patch(l1, bytes.subarray(cut[1], cut[2]), range(cut[1]!, cut[2]!)), 202, cut[2]!)
    // the second chunk again, from its own Location, and the first one too
    expectAt(await patch(l1, bytes.subarray(cut[1], cut[2]), range(cut[1]!, cut[2]!)), 416, cut[2]!, 'second again')
    expectAt(await patch(l0, bytes.subarray(cut[0], cut[1]), range(cut[0]!, cut[1]!)), 416, cut[2]!, 'first again')
    // other bytes at an accepted offset: refused just the same
    expectAt(await patch(l1, randomBlob(cut[2]! - cut[1]!), range(cut[1]!, cut[2]!)), 416, cut[2]!, 'other bytes')
    const l3 = expectAt(await patch(l2, bytes.subarray(cut[2]), range(cut[2]!, cut[3]!)), 202, cut[3]!)
    expect((await call(withDigest(l3, await sha256(bytes)), { method: 'PUT' })).status).toBe(201)
    await expectServed(repo, await sha256(bytes), bytes)
  })

  it('a PUT from an earlier Location: 416 with the true Range, nothing closed', async () => {
    const repo = repoName('authority')
    const bytes = randomBlob(20_000)
    const l0 = await startUpload(repo)
    const l1 = expectAt(await patch(l0, bytes.subarray(0, 5000)), 202, 5000)
    const l2 = expectAt(await patch(l1, bytes.subarray(5000), range(5000, 20_000)), 202, 20_000)
    expectAt(await call(withDigest(l1, await sha256(bytes.subarray(0, 5000))), { method: 'PUT' }), 416, 20_000, 'PUT from l1')
    expect((await call(`/v2/${repo}/blobs/${await sha256(bytes.subarray(0, 5000))}`)).status).toBe(404)
    expect((await call(withDigest(l2, await sha256(bytes)), { method: 'PUT' })).status).toBe(201)
  })
})

describe('GET with an earlier Location', () => {
  it('answers 204 with the true Range and the latest Location', async () => {
    const repo = repoName('authority')
    const bytes = randomBlob(50_000)
    const l0 = await startUpload(repo)
    const l1 = expectAt(await patch(l0, bytes.subarray(0, 10_000)), 202, 10_000)
    expectAt(await patch(l1, bytes.subarray(10_000, 30_000), range(10_000, 30_000)), 202, 30_000)
    for (const [location, what] of [[l0, 'POST Location'], [l1, 'first PATCH Location']] as const) {
      const latest = expectAt(await call(location), 204, 30_000, what)
      expect(new URL(latest, ORIGIN).searchParams.get('_state')).toBeTruthy()
    }
    // the reported Location carries on
    const latest = expectAt(await call(l0), 204, 30_000)
    const done = expectAt(await patch(latest, bytes.subarray(30_000), range(30_000, 50_000)), 202, 50_000)
    expect((await call(withDigest(done, await sha256(bytes)), { method: 'PUT' })).status).toBe(201)
  })
})

describe('every Location of a closed or cancelled session answers 404 BLOB_UPLOAD_UNKNOWN to GET, PATCH, PUT and DELETE', () => {
  it('POST, then PUT with the whole body', async () => {
    const repo = repoName('authority')
    const bytes = randomBlob(40_000)
    const digest = await sha256(bytes)
    const l0 = await startUpload(repo)
    expect((await call(withDigest(l0, digest), { method: 'PUT', body: bytes })).status).toBe(201)
    await expectSpent(l0, digest, 'POST Location')
    await expectServed(repo, digest, bytes)
  })

  it.each([
    ['small, with Content-Length', 20_000, false],
    ['streamed, with Content-Length', 9 * MiB, false],
    ['without Content-Length, through parts', PART_SIZE + 5000, true],
  ] as const)('POST, one PATCH %s, PUT', async (_how, size, streamed) => {
    const repo = repoName('authority')
    const bytes = randomBlob(size)
    const digest = await sha256(bytes)
    const l0 = await startUpload(repo)
    const l1 = expectAt(streamed ? await patchStreamed(l0, bytes) : await patch(l0, bytes), 202, size)
    expect((await call(withDigest(l1, digest), { method: 'PUT' })).status).toBe(201)
    await expectSpent(l1, digest, 'PATCH Location')
    await expectSpent(l0, digest, 'POST Location')
    await expectServed(repo, digest, bytes)
  })

  it('chunks, the last on the PUT', async () => {
    const repo = repoName('authority')
    const bytes = randomBlob(3 * MiB)
    const digest = await sha256(bytes)
    const l0 = await startUpload(repo)
    const l1 = expectAt(await patch(l0, bytes.subarray(0, MiB), range(0, MiB)), 202, MiB)
    const l2 = expectAt(await patch(l1, bytes.subarray(MiB, 2 * MiB), range(MiB, 2 * MiB)), 202, 2 * MiB)
    const put = await call(withDigest(l2, digest), { method: 'PUT', body: bytes.subarray(2 * MiB), headers: range(2 * MiB, 3 * MiB) })
    expect(put.status).toBe(201)
    for (const [location, what] of [[l0, 'l0'], [l1, 'l1'], [l2, 'l2']] as const) await expectSpent(location, digest, what)
    await expectServed(repo, digest, bytes)
  })

  it('cancelled: by its latest Location or an earlier one', async () => {
    const repo = repoName('authority')
    const bytes = randomBlob(2 * MiB)
    const digest = await sha256(bytes)
    const l0 = await startUpload(repo)
    const l1 = expectAt(await patch(l0, bytes.subarray(0, MiB)), 202, MiB)
    const l2 = expectAt(await patch(l1, bytes.subarray(MiB), range(MiB, 2 * MiB)), 202, 2 * MiB)
    expect((await call(l1, { method: 'DELETE' })).status).toBe(204)
    for (const [location, what] of [[l0, 'l0'], [l1, 'l1'], [l2, 'l2']] as const) await expectSpent(location, digest, what)
    expect((await call(`/v2/${repo}/blobs/${digest}`)).status).toBe(404)
    expect((await call(`/v2/${repo}/blobs/${await sha256(bytes.subarray(0, MiB))}`)).status).toBe(404)
  })

  it('cancelled before any byte', async () => {
    const repo = repoName('authority')
    const l0 = await startUpload(repo)
    expect((await call(l0, { method: 'DELETE' })).status).toBe(204)
    await expectSpent(l0, await sha256(randomBlob(100)), 'l0')
  })
})

describe('digest-algorithm on POST', () => {
  it.each([
    ['one PATCH with Content-Length', false],
    ['one PATCH without Content-Length', true],
  ] as const)('sha512 end to end: %s, closed with the sha512 digest, served by it', async (_how, streamed) => {
    const repo = repoName('sha512')
    const bytes = randomBlob(PART_SIZE + 12_345)
    const digest = await sha512(bytes)
    const post = await call(`/v2/${repo}/blobs/uploads/?digest-algorithm=sha512`, { method: 'POST' })
    expect(post.status).toBe(202)
    const l0 = post.headers.get('Location')!
    const l1 = expectAt(streamed ? await patchStreamed(l0, bytes) : await patch(l0, bytes), 202, bytes.length)
    const put = await call(withDigest(l1, digest), { method: 'PUT' })
    expect(put.status).toBe(201)
    expect(put.headers.get('Docker-Content-Digest')).toBe(digest)
    const res = await call(`/v2/${repo}/blobs/${digest}`)
    expect(res.headers.get('Docker-Content-Digest')).toBe(digest)
    expect(await sha512(await bytesOf(res))).toBe(digest)
    await expectSpent(l1, digest, 'closed sha512 session')
  })

  it('a session closed with the algorithm it did not hash is verified by reading its bytes back', async () => {
    const repo = repoName('sha512')
    const bytes = randomBlob(300_000)
    for (const [param, digest, wrong] of [
      ['', await sha512(bytes), await sha512(randomBlob(10))],
      ['?digest-algorithm=sha512', await sha256(bytes), await sha256(randomBlob(10))],
    ] as const) {
      const post = await call(`/v2/${repo}/blobs/uploads/${param}`, { method: 'POST' })
      const l1 = expectAt(await patch(post.headers.get('Location')!, bytes), 202, bytes.length)
      expect(await errorCode(await call(withDigest(l1, wrong), { method: 'PUT' }))).toBe('DIGEST_INVALID')
      const again = expectAt(await patch((await call(`/v2/${repo}/blobs/uploads/${param}`, { method: 'POST' })).headers.get('Location')!, bytes), 202, bytes.length)
      expect((await call(withDigest(again, digest), { method: 'PUT' })).status, param).toBe(201)
      await expectServed(repo, digest, bytes)
      await expectSpent(again, digest, `closed ${digest.slice(0, 6)} after ${param || 'sha256'}`)
    }
  })

  it('answers 400 DIGEST_INVALID to an algorithm it does not support, opening nothing', async () => {
    for (const alg of ['md5', 'sha384', 'SHA512', '']) {
      const res = await call(`/v2/${repoName('sha512')}/blobs/uploads/?digest-algorithm=${alg}`, { method: 'POST' })
      expect(res.status, alg).toBe(400)
      expect(await errorCode(res), alg).toBe('DIGEST_INVALID')
      expect(res.headers.get('Location')).toBeNull()
    }
  })
})

describe('upload ids that cannot be ids', () => {
  it.each([
    ['..', '..'],
    ['.', '.'],
    ['2 KB long', 'a'.repeat(2048)],
    ['a NUL byte', 'ab%00cd'],
    ['only a NUL byte', '%00'],
    ['another repository’s path', '%2F..%2F'],
  ])('%s: 404 BLOB_UPLOAD_UNKNOWN to GET, PATCH, PUT and DELETE', async (_what, id) => {
    for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
      const res = await call(`/v2/team/app/blobs/uploads/${id}?_state=x&digest=sha256:${'0'.repeat(64)}`, {
        method,
        ...(method === 'PATCH' || method === 'PUT' ? { body: 'x' } : {}),
      })
      await expectUnknown(res, `${method} ${id.slice(0, 12)}`)
    }
  })
})

/** The bucket with every call it gets counted by method name. */
function countingBucket(): { bucket: R2Bucket; calls: string[] } {
  const calls: string[] = []
  const bucket = new Proxy(bindings.BLOBS, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls.push(String(name))
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return { bucket, calls }
}

describe('an empty append', () => {
  it('touches no storage: PATCH or PUT without body, whatever the headers', async () => {
    const repo = repoName('empty')
    const bytes = randomBlob(9 * MiB)
    const l1 = expectAt(await patch(await startUpload(repo), bytes), 202, bytes.length)
    for (const init of [
      { method: 'PATCH' },
      { method: 'PATCH', headers: { 'Content-Length': '0' } },
      { method: 'PATCH', body: new Uint8Array(0) },
      { method: 'PATCH', body: streamOf(new Uint8Array(0)) },
    ] as RequestInit[]) {
      const { bucket, calls } = countingBucket()
      expectAt(await callWith({ BLOBS: bucket } as Partial<Env>, l1, init), 202, bytes.length)
      expect(calls, JSON.stringify(init)).toEqual([])
    }
    // the closing PUT without body or Content-Length (curl -X PUT): only the close's own calls
    const { bucket, calls } = countingBucket()
    const put = await callWith({ BLOBS: bucket } as Partial<Env>, withDigest(l1, await sha256(bytes)), { method: 'PUT' })
    expect(put.status).toBe(201)
    expect(calls.sort()).toEqual(['head', 'put'])
  })
})

/** The bucket recording the bytes each get returns. */
function readingBucket(): { bucket: R2Bucket; read: number[] } {
  const read: number[] = []
  const bucket = new Proxy(bindings.BLOBS, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver)
      if (typeof value !== 'function') return value
      if (name !== 'get') return value.bind(target)
      return async (...args: Parameters<R2Bucket['get']>) => {
        const object = await target.get(...args)
        if (object && 'body' in object) read.push(object.size - ((args[1]?.range as { offset?: number } | undefined)?.offset ?? 0))
        return object
      }
    },
  })
  return { bucket, read }
}

describe('a chunked session verifies its digest at the close without reading the blob back', () => {
  it.each(['sha256', 'sha512'] as const)('%s: Content-Range chunks, the last on the PUT (npx edge-registry push)', async (alg) => {
    const repo = repoName('resumable')
    const bytes = randomBlob(2 * PART_SIZE + 3 * MiB + 5)
    const chunk = PART_SIZE + MiB
    const digest = alg === 'sha256' ? await sha256(bytes) : await sha512(bytes)
    const post = await call(`/v2/${repo}/blobs/uploads/${alg === 'sha512' ? '?digest-algorithm=sha512' : ''}`, { method: 'POST' })
    let location = post.headers.get('Location')!
    let at = 0
    for (; at + chunk < bytes.length; at += chunk) {
      location = expectAt(await patch(location, bytes.subarray(at, at + chunk), range(at, at + chunk)), 202, at + chunk)
    }
    const { bucket, read } = readingBucket()
    const last = bytes.subarray(at)
    const put = await callWith({ BLOBS: bucket } as Partial<Env>, withDigest(location, digest), {
      method: 'PUT', body: last, headers: { 'Content-Length': String(last.length), ...range(at, bytes.length) },
    })
    expect(put.status).toBe(201)
    expect(put.headers.get('Docker-Content-Digest')).toBe(digest)
    // the PUT reads the previous tail (its chunk's part) and the new one (the last part): never the blob
    expect(read.reduce((n, m) => n + m, 0)).toBeLessThan(2 * PART_SIZE)
    const res = await call(`/v2/${repo}/blobs/${digest}`)
    expect(res.status).toBe(200)
    const got = await bytesOf(res)
    expect(alg === 'sha256' ? await sha256(got) : await sha512(got)).toBe(digest)
    await expectSpent(location, digest, 'closed chunked session')
  })

  it('one PATCH without Content-Range, then a second chunk: the first write is read once, the close reads no more', async () => {
    const repo = repoName('resumable')
    const bytes = randomBlob(PART_SIZE + 4 * MiB)
    const first = 3 * MiB
    const l1 = expectAt(await patch(await startUpload(repo), bytes.subarray(0, first)), 202, first)
    const { bucket, read } = readingBucket()
    const l2 = expectAt(await callWith({ BLOBS: bucket } as Partial<Env>, l1, {
      method: 'PATCH', body: bytes.subarray(first), headers: { 'Content-Length': String(bytes.length - first), ...range(first, bytes.length) },
    }), 202, bytes.length)
    expect(read).toEqual([first])
    read.length = 0
    const put = await callWith({ BLOBS: bucket } as Partial<Env>, withDigest(l2, await sha256(bytes)), { method: 'PUT' })
    expect(put.status).toBe(201)
    expect(read.every((n) => n < PART_SIZE)).toBe(true)
    await expectServed(repo, await sha256(bytes), bytes)
  })

  it('a digest the chunks do not have: 400 DIGEST_INVALID, and every Location of the session is spent', async () => {
    const repo = repoName('resumable')
    const bytes = randomBlob(PART_SIZE + 2 * MiB)
    const half = bytes.length >> 1
    const l1 = expectAt(await patch(await startUpload(repo), bytes.subarray(0, half), range(0, half)), 202, half)
    const l2 = expectAt(await patch(l1, bytes.subarray(half), range(half, bytes.length)), 202, bytes.length)
    const wrong = await sha256(randomBlob(10))
    const put = await call(withDigest(l2, wrong), { method: 'PUT' })
    expect(put.status).toBe(400)
    expect(await errorCode(put)).toBe('DIGEST_INVALID')
    await expectSpent(l2, await sha256(bytes), 'refused chunked session')
    expect((await call(`/v2/${repo}/blobs/${await sha256(bytes)}`, { method: 'HEAD' })).status).toBe(404)
  })

  it('continued from the Location a GET answers to the first write’s Location: its digest kept, that write read once', async () => {
    const repo = repoName('resumable')
    const bytes = randomBlob(PART_SIZE + 4 * MiB)
    const first = 2 * MiB
    const l1 = expectAt(await patch(await startUpload(repo), bytes.subarray(0, first)), 202, first)
    const truth = expectAt(await call(l1), 204, first)
    const { bucket, read } = readingBucket()
    const l2 = expectAt(await callWith({ BLOBS: bucket } as Partial<Env>, truth, {
      method: 'PATCH', body: bytes.subarray(first), headers: { 'Content-Length': String(bytes.length - first), ...range(first, bytes.length) },
    }), 202, bytes.length)
    expect(read).toEqual([first]) // folded into parts; no read to tell whether that write is a blob
    expect((await call(withDigest(l2, await sha256(bytes)), { method: 'PUT' })).status).toBe(201)
  })

  it('continued from the Location a GET answers (its hash state not recorded there), still verified without reading the blob back', async () => {
    const repo = repoName('resumable')
    const bytes = randomBlob(PART_SIZE + 4 * MiB)
    const first = 2 * MiB
    const l0 = await startUpload(repo)
    const l1 = expectAt(await patch(l0, bytes.subarray(0, first), range(0, first)), 202, first)
    // asked from the POST's Location, which never knew the first write's digest
    const truth = expectAt(await call(l0), 204, first)
    const { bucket, read } = readingBucket()
    const l2 = expectAt(await callWith({ BLOBS: bucket } as Partial<Env>, truth, {
      method: 'PATCH', body: bytes.subarray(first), headers: { 'Content-Length': String(bytes.length - first), ...range(first, bytes.length) },
    }), 202, bytes.length)
    // the first write only, folded into parts: whether that one write became a blob is told from
    // the hash this isolate kept of it (its recorded progress carries no digest; elsewhere it is
    // read once more for that: uploads-kept-hash)
    expect(read).toEqual([first])
    void l1
    read.length = 0
    expect((await callWith({ BLOBS: bucket } as Partial<Env>, withDigest(l2, await sha256(bytes)), { method: 'PUT' })).status).toBe(201)
    expect(read.every((n) => n < PART_SIZE)).toBe(true)
    await expectServed(repo, await sha256(bytes), bytes)
  })
})
