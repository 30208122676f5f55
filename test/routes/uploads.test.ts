/**
 * /v2/<name>/blobs/uploads/ (src/routes/uploads.ts): every way a client pushes a
 * blob, through the worker's fetch handler with real (simulated) R2 and KV.
 */
import { reset } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import type { Digest, Repo } from '../../src/names'
import { keys } from '../../src/storage/keys'
import { BUFFER_LIMIT, PART_SIZE } from '../../src/upload/session'
import {
  bytesOf, call, callWith, cutOffStream, errorCode, listObjects, MiB, ORIGIN, pushBlob, randomBlob, repoName, sha256,
  sha512, StaleKV, startUpload, streamOf, withDigest,
} from '../helpers'

const emptyDigest = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
const unknownDigest = `sha256:${'0'.repeat(64)}`

type Fetch = typeof call

/** The blob as the repository serves it (status, and bytes when 200). */
async function pull(repo: string, digest: string, via: Fetch = call): Promise<{ status: number; bytes: Uint8Array }> {
  const res = await via(`/v2/${repo}/blobs/${digest}`)
  return { status: res.status, bytes: await bytesOf(res) }
}

/** Asserts the repository serves exactly `bytes` as `digest` (by digest: blobs may be large). */
async function expectServed(repo: string, digest: string, bytes: Uint8Array, via: Fetch = call): Promise<void> {
  const res = await via(`/v2/${repo}/blobs/${digest}`)
  expect(res.status, `GET ${digest} in ${repo}`).toBe(200)
  expect(res.headers.get('Content-Length')).toBe(String(bytes.length))
  expect(res.headers.get('Docker-Content-Digest')).toBe(digest)
  const got = await bytesOf(res)
  expect(got.length).toBe(bytes.length)
  expect(await sha256(got)).toBe(await sha256(bytes))
}

async function expectNotServed(repo: string, ...digests: string[]): Promise<void> {
  for (const digest of digests) {
    const res = await call(`/v2/${repo}/blobs/${digest}`)
    expect(res.status, `GET ${digest} in ${repo}`).toBe(404)
    expect(await errorCode(res)).toBe('BLOB_UNKNOWN')
  }
}

/** Asserts a 201 Created of `digest` in `repo`. */
function expectCreated(res: Response, repo: string, digest: string): void {
  expect(res.status).toBe(201)
  expect(res.headers.get('Location')).toBe(`/v2/${repo}/blobs/${digest}`)
  expect(res.headers.get('Docker-Content-Digest')).toBe(digest)
}

/** Asserts a 202/204 progress reply of session `uuid` at `received` bytes: its new Location. */
function expectProgress(res: Response, repo: string, received: number, status = 202, uuid?: string): string {
  expect(res.status).toBe(status)
  expect(res.headers.get('Range')).toBe(`0-${Math.max(0, received - 1)}`)
  const location = res.headers.get('Location')!
  const url = new URL(location, ORIGIN)
  const id = res.headers.get('Docker-Upload-UUID')!
  expect(url.pathname).toBe(`/v2/${repo}/blobs/uploads/${id}`)
  expect(url.searchParams.get('_state')).toBeTruthy()
  if (uuid) expect(id).toBe(uuid)
  return location
}

const uuidOf = (location: string) => new URL(location, ORIGIN).pathname.split('/').pop()!

async function expectUploadUnknown(res: Response, what: string): Promise<void> {
  expect(res.status, what).toBe(404)
  expect(await errorCode(res), what).toBe('BLOB_UPLOAD_UNKNOWN')
}

async function patch(location: string, chunk: Uint8Array, headers: Record<string, string> = {}, via: Fetch = call) {
  return via(location, { method: 'PATCH', body: chunk, headers: { 'Content-Length': String(chunk.length), ...headers } })
}

describe('starting an upload', () => {
  it('opens a session: 202 with its Location, Range 0-0 and upload UUID', async () => {
    const repo = repoName('uploads')
    const res = await call(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    expectProgress(res, repo, 0)
    expect(res.headers.get('Docker-Upload-UUID')).toMatch(/^[0-9a-f]{32}$/)
    expect(res.headers.get('Content-Length')).toBe('0')
  })

  it('opens a session for a POST with Content-Type application/json and an empty body', async () => {
    const repo = repoName('uploads')
    const res = await call(`/v2/${repo}/blobs/uploads/`, {
      method: 'POST',
      body: '',
      headers: { 'Content-Type': 'application/json', 'Content-Length': '0' },
    })
    expectProgress(res, repo, 0)
  })

  it('answers 400 NAME_INVALID for an invalid repository name', async () => {
    const res = await call('/v2/Bad/Name/blobs/uploads/', { method: 'POST' })
    expect(res.status).toBe(400)
    expect(await errorCode(res)).toBe('NAME_INVALID')
  })
})

describe('monolithic upload (POST ?digest=)', () => {
  it('stores the body: 201, then the blob is served', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(70_000)
    const digest = await sha256(bytes)
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: bytes,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) },
    })
    expectCreated(res, repo, digest)
    await expectServed(repo, digest, bytes)
  })

  it('stores a SHA-512 blob', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(70_000)
    const digest = await sha512(bytes)
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes })
    expectCreated(res, repo, digest)
    await expectServed(repo, digest, bytes)
  })

  it('stores a 0-byte blob', async () => {
    const repo = repoName('uploads')
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${emptyDigest}`, {
      method: 'POST',
      body: new Uint8Array(0),
      headers: { 'Content-Length': '0' },
    })
    expectCreated(res, repo, emptyDigest)
    await expectServed(repo, emptyDigest, new Uint8Array(0))
  })

  it('links a blob the registry already holds, without it being in the repository', async () => {
    const bytes = randomBlob(5000)
    const digest = await pushBlob(repoName('uploads'), bytes)
    const repo = repoName('uploads')
    expectCreated(await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes }), repo, digest)
    await expectServed(repo, digest, bytes)
  })

  it('answers 400 DIGEST_INVALID to bytes that do not match, linking nothing', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(70_000)
    const claimed = await sha256(randomBlob(70_000))
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${claimed}`, { method: 'POST', body: bytes })
    expect(res.status).toBe(400)
    expect(await errorCode(res)).toBe('DIGEST_INVALID')
    await expectNotServed(repo, claimed, await sha256(bytes))
    // and the bytes were not kept under either digest
    expect(await listObjects(`blobs/sha256/${claimed.slice(7)}`)).toEqual([])
    expect(await listObjects(`blobs/sha256/${(await sha256(bytes)).slice(7)}`)).toEqual([])
  })

  it('answers 400 DIGEST_INVALID to other bytes claiming the digest of a held blob', async () => {
    const held = randomBlob(5000)
    const digest = await pushBlob(repoName('uploads'), held)
    const repo = repoName('uploads')
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: randomBlob(5000) })
    expect(res.status).toBe(400)
    expect(await errorCode(res)).toBe('DIGEST_INVALID')
    await expectNotServed(repo, digest)
  })

  it('answers 400 to a Content-Length larger than the body sent, linking nothing', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(1000)
    const digest = await sha256(bytes)
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: bytes,
      headers: { 'Content-Length': '5000' },
    })
    expect(res.status).toBe(400)
    expect(await errorCode(res)).toBe('SIZE_INVALID')
    await expectNotServed(repo, digest)
  })

  it('answers 400 DIGEST_INVALID to a malformed digest', async () => {
    const res = await call(`/v2/${repoName('uploads')}/blobs/uploads/?digest=sha256:abc`, { method: 'POST', body: 'x' })
    expect(res.status).toBe(400)
    expect(await errorCode(res)).toBe('DIGEST_INVALID')
  })
})

describe('POST then PUT ?digest= with the whole body', () => {
  it('stores the body: 201, then the blob is served', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(300_000)
    const digest = await sha256(bytes)
    const location = await startUpload(repo)
    const res = await call(withDigest(location, digest), {
      method: 'PUT',
      body: bytes,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) },
    })
    expectCreated(res, repo, digest)
    await expectServed(repo, digest, bytes)
  })

  it('answers 400 DIGEST_INVALID to a mismatch, linking nothing', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(3000)
    const claimed = await sha256(randomBlob(3000))
    const res = await call(withDigest(await startUpload(repo), claimed), { method: 'PUT', body: bytes })
    expect(res.status).toBe(400)
    expect(await errorCode(res)).toBe('DIGEST_INVALID')
    await expectNotServed(repo, claimed, await sha256(bytes))
  })

  it('answers 400 DIGEST_INVALID without a digest', async () => {
    const location = await startUpload(repoName('uploads'))
    for (const url of [location, `${location}&digest=`, `${location}&digest=sha256:zz`]) {
      const res = await call(url, { method: 'PUT', body: 'abc' })
      expect(res.status, url).toBe(400)
      expect(await errorCode(res)).toBe('DIGEST_INVALID')
    }
  })
})

describe('POST, PATCH, PUT', () => {
  it('takes one PATCH with Content-Length, then a PUT without body', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(100_000)
    const digest = await sha256(bytes)
    const location = await startUpload(repo)
    const next = expectProgress(await patch(location, bytes), repo, bytes.length, 202, uuidOf(location))
    expectCreated(await call(withDigest(next, digest), { method: 'PUT' }), repo, digest)
    await expectServed(repo, digest, bytes)
  })

  it('writes the bytes of a single PATCH once: one object holds them, plus the blob index entry', async () => {
    await reset() // this file's bucket only: the listing below sees this test's objects
    const repo = repoName('uploads')
    const bytes = randomBlob(BUFFER_LIMIT + 4321) // large enough to stream, not buffer
    const digest = await sha256(bytes)
    const location = await startUpload(repo)
    const next = expectProgress(await patch(location, bytes), repo, bytes.length)
    expectCreated(await call(withDigest(next, digest), { method: 'PUT' }), repo, digest)

    const all = await listObjects()
    const holders = all.filter((o) => o.size === bytes.length)
    expect(holders).toHaveLength(1)
    const [holder] = holders
    expect(holder!.key.startsWith(`data/${uuidOf(location)}/`)).toBe(true)
    // The session's own objects: just that one (no cancellation mark, no parts, no other tail).
    expect(all.filter((o) => o.key.startsWith(`data/${uuidOf(location)}`)).map((o) => o.key)).toEqual([holder!.key])
    const index = all.find((o) => o.key === keys.blob(digest as Digest))
    expect(index?.size).toBe(0)
    expect(index?.customMetadata).toEqual({ at: holder!.key, size: String(bytes.length), repo })
    await expectServed(repo, digest, bytes)
  })

  it('writes the bytes of a small single PATCH once, in the session, indexed by their digest', async () => {
    // Issue 8: small blobs were stored under their digest, which left their session nothing of its
    // own to be found by; now every session's bytes are its own write at offset 0.
    await reset()
    const repo = repoName('uploads')
    const bytes = randomBlob(12_345)
    const digest = await sha256(bytes)
    const location = await startUpload(repo)
    const next = expectProgress(await patch(location, bytes), repo, bytes.length)
    expectCreated(await call(withDigest(next, digest), { method: 'PUT' }), repo, digest)
    const all = await listObjects()
    const first = keys.uploadWrite(uuidOf(location), 0)
    expect(all.filter((o) => o.size === bytes.length).map((o) => o.key)).toEqual([first])
    expect(all.find((o) => o.key === keys.blob(digest as Digest))?.customMetadata).toEqual({ at: first, size: String(bytes.length), repo })
    await expectServed(repo, digest, bytes)
  })

  it('streams one PATCH without Content-Length through multipart parts; of its tail only the first write stays', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(2 * PART_SIZE + 3 * MiB + 3) // > 20 MiB: two full parts and a rest
    const digest = await sha256(bytes)
    const location = await startUpload(repo)
    const res = await call(location, { method: 'PATCH', body: streamOf(bytes, 700_001), duplex: 'half' } as RequestInit)
    const next = expectProgress(res, repo, bytes.length, 202, uuidOf(location))
    expectCreated(await call(withDigest(next, digest), { method: 'PUT' }), repo, digest)
    await expectServed(repo, digest, bytes)

    const id = uuidOf(location)
    const mine = await listObjects(`data/${id}`)
    // The first write stays (its offset must stay taken against replays) until the collector's expiry.
    expect(mine.map((o) => o.key)).toEqual([keys.uploadWrite(id, 0), keys.uploadParts(id)])
    expect(mine[1]!.size).toBe(bytes.length)
    const index = await listObjects(keys.blob(digest as Digest))
    expect(index.map((o) => [o.size, o.customMetadata])).toEqual([
      [0, { at: keys.uploadParts(id), size: String(bytes.length), repo }],
    ])
  })

  it('takes chunks of odd sizes with Content-Range (both forms), the last one on the PUT', async () => {
    const repo = repoName('uploads')
    const sizes = [MiB, 3 * MiB, 7, 5 * MiB + 1, 2 * MiB + 3, MiB + 5] // 12 MiB + 16 bytes: crosses a part
    const bytes = randomBlob(sizes.reduce((a, b) => a + b))
    expect(bytes.length).toBeGreaterThan(12 * MiB)
    const digest = await sha256(bytes)
    let location = await startUpload(repo)
    const id = uuidOf(location)
    let offset = 0
    for (const [i, size] of sizes.entries()) {
      const chunk = bytes.subarray(offset, offset + size)
      const range = `${i % 2 ? 'bytes=' : ''}${offset}-${offset + size - 1}`
      if (i === sizes.length - 1) {
        const res = await call(withDigest(location, digest), {
          method: 'PUT',
          body: chunk,
          headers: { 'Content-Range': range, 'Content-Length': String(size) },
        })
        expectCreated(res, repo, digest)
        break
      }
      location = expectProgress(await patch(location, chunk, { 'Content-Range': range }), repo, offset + size, 202, id)
      offset += size
      // the session reports where it stands
      location = expectProgress(await call(location), repo, offset, 204, id)
    }
    await expectServed(repo, digest, bytes)
    // multipart completed into the parts object; the session's writes stay (their offsets taken
    // against replays) until the collector's expiry, each smaller than a part
    const left = await listObjects(`data/${id}`)
    expect(left.find((o) => o.key === keys.uploadParts(id))?.size).toBe(bytes.length)
    const writes = left.filter((o) => o.key !== keys.uploadParts(id))
    expect(writes.map((o) => o.key)).toContain(keys.uploadWrite(id, 0))
    for (const write of writes) expect(write.size).toBeLessThan(PART_SIZE + 4096)
  })

  it('takes one PATCH of a blob the registry holds from a chunked upload (indexed as a pointer)', async () => {
    const bytes = randomBlob(6000)
    const digest = await sha256(bytes)
    const first = repoName('uploads')
    const half = expectProgress(await patch(await startUpload(first), bytes.subarray(0, 3000)), first, 3000)
    const all = expectProgress(await patch(half, bytes.subarray(3000), { 'Content-Range': '3000-5999' }), first, 6000)
    expectCreated(await call(withDigest(all, digest), { method: 'PUT' }), first, digest)

    for (const body of [bytes, streamOf(bytes, 1000)]) {
      const repo = repoName('uploads')
      const location = await startUpload(repo)
      const res = await call(location, { method: 'PATCH', body, duplex: 'half' } as RequestInit)
      const next = expectProgress(res, repo, 6000)
      expectCreated(await call(withDigest(next, digest), { method: 'PUT' }), repo, digest)
      await expectServed(repo, digest, bytes)
    }
    // a cancelled session of the same bytes leaves the first upload's bytes alone
    const repo = repoName('uploads')
    const cancelled = expectProgress(await patch(await startUpload(repo), bytes), repo, 6000)
    expect((await call(cancelled, { method: 'DELETE' })).status).toBe(204)
    await expectServed(first, digest, bytes)
  })

  it('leaves no blob behind for the first chunk of a Content-Range upload', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(3 * MiB)
    const first = bytes.subarray(0, MiB)
    const digest = await sha256(bytes)
    let location = await startUpload(repo)
    const id = uuidOf(location)
    location = expectProgress(await patch(location, first, { 'Content-Range': `0-${MiB - 1}` }), repo, MiB, 202, id)
    location = expectProgress(await patch(location, bytes.subarray(MiB), { 'Content-Range': `${MiB}-${3 * MiB - 1}` }), repo, 3 * MiB, 202, id)
    expectCreated(await call(withDigest(location, digest), { method: 'PUT' }), repo, digest)
    await expectServed(repo, digest, bytes)
    // the first chunk was a tail of this session, not a blob of its own
    expect(await listObjects(`blobs/sha256/${(await sha256(first)).slice(7)}`)).toEqual([])
  })

  it('takes chunks without Content-Range (appended at the offset)', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(50_000)
    const digest = await sha256(bytes)
    let location = await startUpload(repo)
    for (const [from, to] of [[0, 10_000], [10_000, 10_001], [10_001, 50_000]] as const) {
      location = expectProgress(await patch(location, bytes.subarray(from, to)), repo, to)
    }
    expectCreated(await call(withDigest(location, digest), { method: 'PUT' }), repo, digest)
    await expectServed(repo, digest, bytes)
  })

  it('reports a session: 204 with Range and a Location that carries on', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(4000)
    const digest = await sha256(bytes)
    const location = await startUpload(repo)
    const fresh = expectProgress(await call(location), repo, 0, 204, uuidOf(location))
    const afterPatch = expectProgress(await patch(fresh, bytes.subarray(0, 1000)), repo, 1000)
    const status = await call(afterPatch)
    const reported = expectProgress(status, repo, 1000, 204, uuidOf(location))
    expect(status.headers.get('Content-Length')).toBe('0')
    const next = expectProgress(await patch(reported, bytes.subarray(1000), { 'Content-Range': '1000-3999' }), repo, 4000)
    expectCreated(await call(withDigest(next, digest), { method: 'PUT' }), repo, digest)
    await expectServed(repo, digest, bytes)
  })

  it('answers 416 with the current Range to out-of-order or overlapping chunks, then carries on', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(30_000)
    const digest = await sha256(bytes)
    const location = expectProgress(await patch(await startUpload(repo), bytes.subarray(0, 10_000), { 'Content-Range': '0-9999' }), repo, 10_000)
    for (const [range, from, to] of [
      ['20000-29999', 20_000, 30_000], // a gap
      ['5000-14999', 5_000, 15_000], // overlapping
      ['0-9999', 0, 10_000], // the same chunk again
      ['bytes=10001-10001', 10_001, 10_002],
    ] as const) {
      const res = await patch(location, bytes.subarray(from, to), { 'Content-Range': range })
      expect(res.status, range).toBe(416)
      expect(res.headers.get('Range'), range).toBe('0-9999')
      expect(res.headers.get('Docker-Upload-UUID')).toBe(uuidOf(location))
    }
    const malformed = await patch(location, bytes.subarray(10_000, 10_010), { 'Content-Range': 'bytes=10009-10000' })
    expect(malformed.status).toBe(416)
    expect(malformed.headers.get('Range')).toBe('0-9999')
    // the session is where it was
    expectProgress(await call(location), repo, 10_000, 204)
    const next = expectProgress(await patch(location, bytes.subarray(10_000), { 'Content-Range': '10000-29999' }), repo, 30_000)
    expectCreated(await call(withDigest(next, digest), { method: 'PUT' }), repo, digest)
    await expectServed(repo, digest, bytes)
  })

  it('answers 400 SIZE_INVALID when Content-Length and Content-Range disagree', async () => {
    const location = await startUpload(repoName('uploads'))
    const res = await patch(location, randomBlob(100), { 'Content-Range': '0-49' })
    expect(res.status).toBe(400)
    expect(await errorCode(res)).toBe('SIZE_INVALID')
  })

  it('answers 400 to a PATCH whose Content-Length is larger than the body sent, linking nothing', async () => {
    const repo = repoName('uploads')
    for (const [sent, declared] of [[1000, 5000], [100_000, BUFFER_LIMIT + 1]] as const) {
      const bytes = randomBlob(sent)
      const location = await startUpload(repo)
      const res = await call(location, { method: 'PATCH', body: bytes, headers: { 'Content-Length': String(declared) } })
      expect(res.status, `${sent} of ${declared}`).toBe(400)
      expect(['SIZE_INVALID', 'BLOB_UPLOAD_INVALID']).toContain(await errorCode(res))
      await expectNotServed(repo, await sha256(bytes))
    }
  })

  it('stores a 0-byte blob (PUT without body, or after an empty PATCH)', async () => {
    const repo = repoName('uploads')
    expectCreated(await call(withDigest(await startUpload(repo), emptyDigest), { method: 'PUT' }), repo, emptyDigest)
    await expectServed(repo, emptyDigest, new Uint8Array(0))

    const other = repoName('uploads')
    const location = expectProgress(await patch(await startUpload(other), new Uint8Array(0)), other, 0)
    expectCreated(await call(withDigest(location, emptyDigest), { method: 'PUT', body: new Uint8Array(0) }), other, emptyDigest)
    await expectServed(other, emptyDigest, new Uint8Array(0))
  })

  it('stores a SHA-512 blob sent in chunks', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(MiB + 100_008)
    const digest = await sha512(bytes)
    let location = await startUpload(repo)
    for (const [from, to] of [[0, 100_000], [100_000, MiB + 100_001], [MiB + 100_001, MiB + 100_008]] as const) {
      location = expectProgress(await patch(location, bytes.subarray(from, to), { 'Content-Range': `${from}-${to - 1}` }), repo, to)
    }
    expectCreated(await call(withDigest(location, digest), { method: 'PUT' }), repo, digest)
    await expectServed(repo, digest, bytes)
    // the same bytes are not visible under their SHA-256 in this repository (only what was pushed is linked)
    await expectNotServed(repo, await sha256(bytes))
  })

  it('answers 400 DIGEST_INVALID to a PUT whose digest the chunks do not have, linking nothing', async () => {
    const repo = repoName('uploads')
    for (const size of [5000, BUFFER_LIMIT + 10]) {
      const bytes = randomBlob(size)
      const claimed = await sha256(randomBlob(size))
      const location = expectProgress(await patch(await startUpload(repo), bytes), repo, size)
      const res = await call(withDigest(location, claimed), { method: 'PUT' })
      expect(res.status, String(size)).toBe(400)
      expect(await errorCode(res)).toBe('DIGEST_INVALID')
      await expectNotServed(repo, claimed, await sha256(bytes))
    }
  })
})

describe('a completed upload\'s Location, replayed', () => {
  // The state is client-held, so a spent Location still verifies; what it names may
  // by then be a blob's bytes, which nothing may delete or change.
  it('cannot delete or alter the blob it made (DELETE, PATCH, PUT with another digest): 404 to each', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(5000)
    const digest = await sha256(bytes)
    const started = await startUpload(repo)
    const spent = expectProgress(await patch(started, bytes, { 'Content-Range': '0-4999' }), repo, 5000, 202, uuidOf(started))
    expectCreated(await call(withDigest(spent, digest), { method: 'PUT' }), repo, digest)

    // Issue 8 §1: these answered 400, 202 and 204 before; a spent session is unknown.
    await expectUploadUnknown(await call(withDigest(spent, await sha256(randomBlob(10))), { method: 'PUT' }), 'PUT')
    await expectUploadUnknown(await patch(spent, randomBlob(100), { 'Content-Range': '5000-5099' }), 'PATCH')
    await expectUploadUnknown(await call(spent, { method: 'DELETE' }), 'DELETE')
    await expectServed(repo, digest, bytes)
  })
})

describe('cancelled and unknown sessions', () => {
  it('DELETE answers 204; the session is then unknown to GET, PATCH, PUT and DELETE, by any of its Locations', async () => {
    const repo = repoName('uploads')
    const bytes = randomBlob(3000)
    const digest = await sha256(bytes)
    const fresh = await startUpload(repo)
    const withBytes = expectProgress(await patch(await startUpload(repo), bytes.subarray(0, 1000)), repo, 1000)
    const withTail = expectProgress(await patch(withBytes, bytes.subarray(1000), { 'Content-Range': '1000-2999' }), repo, 3000)

    expect((await call(fresh, { method: 'DELETE' })).status).toBe(204)
    // an earlier Location cancels the session where it truly stands; then every Location is spent
    expect((await call(withBytes, { method: 'DELETE' })).status).toBe(204)
    await expectUploadUnknown(await call(withTail, { method: 'DELETE' }), 'DELETE again')
    for (const location of [fresh, withBytes, withTail]) {
      await expectUploadUnknown(await call(location), 'GET')
      await expectUploadUnknown(await patch(location, randomBlob(10)), 'PATCH')
      await expectUploadUnknown(await call(location, { method: 'PATCH', body: streamOf(randomBlob(10)), duplex: 'half' } as RequestInit), 'PATCH (stream)')
    }
    await expectUploadUnknown(await call(withDigest(fresh, digest), { method: 'PUT', body: bytes }), 'PUT with body')
    await expectUploadUnknown(await call(withDigest(fresh, emptyDigest), { method: 'PUT' }), 'PUT empty')
    await expectUploadUnknown(await call(withDigest(withBytes, await sha256(bytes.subarray(0, 1000))), { method: 'PUT' }), 'PUT small')
    await expectUploadUnknown(await call(withDigest(withBytes, digest), { method: 'PUT', body: bytes.subarray(1000) }), 'PUT last chunk')
    await expectUploadUnknown(await call(withDigest(withTail, digest), { method: 'PUT' }), 'PUT tail')
    await expectNotServed(repo, digest)
  })

  it('knows a session only under its own repository', async () => {
    const repo = repoName('uploads')
    const other = repoName('uploads')
    const location = expectProgress(await patch(await startUpload(repo), randomBlob(100)), repo, 100)
    const moved = location.replace(`/v2/${repo}/`, `/v2/${other}/`)
    expect(moved).not.toBe(location)
    await expectUploadUnknown(await call(moved), 'GET')
    await expectUploadUnknown(await patch(moved, randomBlob(10)), 'PATCH')
    await expectUploadUnknown(await call(withDigest(moved, unknownDigest), { method: 'PUT' }), 'PUT')
    await expectUploadUnknown(await call(moved, { method: 'DELETE' }), 'DELETE')
    // still fine where it belongs
    expectProgress(await call(location), repo, 100, 204)
  })

  it('knows a session only by its own id and untampered state', async () => {
    const repo = repoName('uploads')
    const location = await startUpload(repo)
    const url = new URL(location, ORIGIN)
    const state = url.searchParams.get('_state')!
    const [payload, mac] = state.split('.') as [string, string]
    const flip = (s: string, at: number) => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1)
    const otherId = url.pathname.replace(/[0-9a-f]{32}$/, 'f'.repeat(32))
    const bad = [
      `${url.pathname}?_state=${flip(payload, 10)}.${mac}`,
      `${url.pathname}?_state=${payload}.${flip(mac, 5)}`,
      `${url.pathname}?_state=${payload}`,
      url.pathname,
      `${otherId}?_state=${state}`,
    ]
    for (const location of bad) {
      await expectUploadUnknown(await call(location), `GET ${location.slice(-20)}`)
      await expectUploadUnknown(await patch(location, randomBlob(10)), 'PATCH')
      await expectUploadUnknown(await call(withDigest(location, emptyDigest), { method: 'PUT' }), 'PUT')
      await expectUploadUnknown(await call(location, { method: 'DELETE' }), 'DELETE')
    }
  })
})

describe('a client cut off mid-PATCH', () => {
  // Straight to the router: through the test service binding a failing body reads as a clean end.
  const direct: Fetch = (path, init) => callWith({}, path, init)

  it.each([
    ['with Content-Length, buffered', 5000, 2000, true],
    ['with Content-Length, streamed', BUFFER_LIMIT + 100, 4 * MiB, true],
    ['without Content-Length, past a part', PART_SIZE + 2 * MiB, PART_SIZE + MiB, false],
  ] as const)('%s: leaves no blob, and the same blob then uploads fine', async (_how, size, after, withLength) => {
    const repo = repoName('uploads')
    const bytes = randomBlob(size)
    const digest = await sha256(bytes)
    const location = await startUpload(repo, direct)
    const res = await direct(location, {
      method: 'PATCH',
      body: cutOffStream(bytes, after),
      headers: withLength ? { 'Content-Length': String(size) } : {},
      duplex: 'half',
    } as RequestInit)
    expect(res.status).toBe(400)
    expect(await errorCode(res)).toBe('BLOB_UPLOAD_INVALID')
    await expectNotServed(repo, digest, await sha256(bytes.subarray(0, after)))
    // a finishing PUT on the session's last Location cannot make the blob appear
    const put = await direct(withDigest(location, digest), { method: 'PUT' })
    expect(put.status).toBe(400)
    await expectNotServed(repo, digest)

    // the client starts over
    const next = expectProgress(await patch(await startUpload(repo, direct), bytes, {}, direct), repo, size)
    expectCreated(await direct(withDigest(next, digest), { method: 'PUT' }), repo, digest)
    await expectServed(repo, digest, bytes)
  })
})

describe('concurrent uploads of the same content', () => {
  it.each([
    ['small', 20_000],
    ['streamed', BUFFER_LIMIT + 1234],
  ] as const)('%s: both succeed, both repositories serve it, one copy is indexed (the other left to the collector)', async (_how, size) => {
    await reset()
    const bytes = randomBlob(size)
    const repos = [repoName('uploads'), repoName('uploads')]
    const digests = await Promise.all(repos.map((repo) => pushBlob(repo, bytes)))
    expect(digests[0]).toBe(await sha256(bytes))
    expect(digests[1]).toBe(digests[0])
    for (const repo of repos) await expectServed(repo, digests[0]!, bytes)
    const copies = (await listObjects()).filter((o) => o.size === size).map((o) => o.key)
    expect(copies).toHaveLength(2) // each session's write: never replaced, since an index entry may name it
    const index = await listObjects(keys.blob(digests[0] as Digest))
    expect(copies).toContain(index[0]!.customMetadata!.at)
    // the loser's session ended where its bytes end
    const loser = copies.find((k) => k !== index[0]!.customMetadata!.at)!
    const ended = (await listObjects(loser.replace(/\d{16}$/, ''))).filter((o) => o.customMetadata?.ended)
    expect(ended.map((o) => o.customMetadata!.ended)).toEqual(['duplicate'])
  })

  it('monolithic: both succeed and both repositories serve it', async () => {
    const bytes = randomBlob(300_000)
    const digest = await sha256(bytes)
    const repos = [repoName('uploads'), repoName('uploads')]
    const results = await Promise.all(
      repos.map((repo) => call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes })),
    )
    results.forEach((res, i) => expectCreated(res, repos[i]!, digest))
    for (const repo of repos) await expectServed(repo, digest, bytes)
  })
})

describe('cross-repository mount (POST ?mount=)', () => {
  it('links a blob from `from`: 201, then the target repository serves it', async () => {
    const source = repoName('uploads')
    const bytes = randomBlob(5000)
    const digest = await pushBlob(source, bytes)
    const target = repoName('uploads')
    const res = await call(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${source}`, { method: 'POST' })
    expectCreated(res, target, digest)
    expect(res.headers.get('Content-Length')).toBe('0')
    await expectServed(target, digest, bytes)
  })

  it('mounts a streamed (pointer-indexed) blob', async () => {
    const source = repoName('uploads')
    const bytes = randomBlob(BUFFER_LIMIT + 77)
    const digest = await pushBlob(source, bytes)
    const target = repoName('uploads')
    expectCreated(await call(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${source}`, { method: 'POST' }), target, digest)
    await expectServed(target, digest, bytes)
  })

  it('opens an upload session (202) when the blob is not in `from`, and that session works', async () => {
    const bytes = randomBlob(5000)
    const digest = await pushBlob(repoName('uploads'), bytes) // held by the registry, not by `from`
    const from = repoName('uploads')
    const target = repoName('uploads')
    const res = await call(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST' })
    const location = expectProgress(res, target, 0)
    await expectNotServed(target, digest)
    expectCreated(await call(withDigest(location, digest), { method: 'PUT', body: bytes }), target, digest)
    await expectServed(target, digest, bytes)
  })

  it('links any blob the registry holds when there is no `from`', async () => {
    const bytes = randomBlob(5000)
    const digest = await pushBlob(repoName('uploads'), bytes)
    const target = repoName('uploads')
    expectCreated(await call(`/v2/${target}/blobs/uploads/?mount=${digest}`, { method: 'POST' }), target, digest)
    await expectServed(target, digest, bytes)
  })

  it('opens an upload session (202) for a digest the registry does not hold', async () => {
    const target = repoName('uploads')
    const from = repoName('uploads')
    for (const query of [`mount=${unknownDigest}`, `mount=${unknownDigest}&from=${from}`]) {
      expectProgress(await call(`/v2/${target}/blobs/uploads/?${query}`, { method: 'POST' }), target, 0)
    }
    await expectNotServed(target, unknownDigest)
  })

  it('opens an upload session (202) for a malformed digest or `from`', async () => {
    const bytes = randomBlob(100)
    const source = repoName('uploads')
    const digest = await pushBlob(source, bytes)
    const target = repoName('uploads')
    for (const query of ['mount=sha256:1234', 'mount=', `mount=${digest}&from=Not_Valid`, `mount=${digest}&from=`]) {
      expectProgress(await call(`/v2/${target}/blobs/uploads/?${query}`, { method: 'POST' }), target, 0)
    }
    await expectNotServed(target, digest)
  })

  it('reads an unencoded query (?mount=sha256:…&from=a/b&origin=x)', async () => {
    const source = `${repoName('uploads')}/nested`
    const bytes = randomBlob(100)
    const digest = await pushBlob(source, bytes)
    const target = repoName('uploads')
    const res = await call(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${source}&origin=registry.example.com`, { method: 'POST' })
    expectCreated(res, target, digest)
    await expectServed(target, digest, bytes)
  })

  it('falls back to a monolithic upload when the mount misses and a digest is given', async () => {
    const bytes = randomBlob(1000)
    const digest = await sha256(bytes)
    const target = repoName('uploads')
    const res = await call(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${repoName('uploads')}&digest=${digest}`, {
      method: 'POST',
      body: bytes,
    })
    expectCreated(res, target, digest)
    await expectServed(target, digest, bytes)
  })
})

describe('a push through a stale KV (another edge location)', () => {
  const FAR = 'http://far.registry.test'
  /** Requests at one location: its own KV view (and, by origin, its own Cache API). */
  const at = (kv: StaleKV, origin: string): Fetch => (path, init) => callWith({ LINKS: kv.binding }, origin + path, init)

  async function pushThrough(via: Fetch, repo: string, bytes: Uint8Array): Promise<string> {
    const digest = await sha256(bytes)
    const location = expectProgress(await patch(await startUpload(repo, via), bytes, {}, via), repo, bytes.length)
    expectCreated(await via(withDigest(location, digest), { method: 'PUT' }), repo, digest)
    return digest
  }

  it.each([
    ['small', 3000],
    ['streamed', BUFFER_LIMIT + 11],
  ] as const)('%s: HEAD miss, push, GET, then mounts from it here and at another location', async (_how, size) => {
    const kvHere = new StaleKV()
    const kvFar = new StaleKV()
    const here = at(kvHere, ORIGIN)
    const far = at(kvFar, FAR)
    const repo = repoName('stale')
    const bytes = randomBlob(size)
    const digest = await sha256(bytes)
    const linkKey = keys.blobLink(repo as Repo, digest as Digest)

    // docker/skopeo HEAD a blob before pushing it: both locations now cache the miss
    expect((await here(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    expect((await far(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)

    expect(await pushThrough(here, repo, bytes)).toBe(digest)
    const missesHere = kvHere.staleMisses
    expect(await kvHere.get(linkKey)).toBeNull() // KV here still says "no such link"
    expect(kvHere.staleMisses).toBe(missesHere + 1)

    // read-your-writes at the pushing location
    const head = await here(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('Content-Length')).toBe(String(size))
    await expectServed(repo, digest, bytes, here)

    // mount from the pushing repository, at the pushing location
    const target = repoName('stale')
    expectCreated(await here(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${repo}`, { method: 'POST' }), target, digest)
    await expectServed(target, digest, bytes, here)

    // and at a location whose KV still caches the miss: confirmed by R2's blob index
    const farTarget = repoName('stale')
    const farMisses = kvFar.staleMisses
    expectCreated(await far(`/v2/${farTarget}/blobs/uploads/?mount=${digest}&from=${repo}`, { method: 'POST' }), farTarget, digest)
    expect(kvFar.staleMisses).toBe(farMisses + 1) // the mount did meet the stale miss
    await expectServed(farTarget, digest, bytes, far)
  })

  it('a blob first pushed by another repository: the mount may fall back to an upload, and the push completes', async () => {
    const bytes = randomBlob(3000)
    const digest = await pushBlob(repoName('stale'), bytes) // the registry's first holder
    const kvHere = new StaleKV()
    const kvFar = new StaleKV()
    const here = at(kvHere, ORIGIN)
    const far = at(kvFar, FAR)
    const repo = repoName('stale')
    expect((await here(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    expect((await far(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    expect(await pushThrough(here, repo, bytes)).toBe(digest)
    await expectServed(repo, digest, bytes, here)

    // Far away neither KV (cached miss) nor R2 (records the first holder only) can confirm `repo` has it.
    const target = repoName('stale')
    const mount = await far(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${repo}`, { method: 'POST' })
    if (mount.status === 202) {
      // what docker does then: upload it (the registry holds it, so nothing new is stored)
      const location = expectProgress(mount, target, 0)
      expectCreated(await far(withDigest(location, digest), { method: 'PUT', body: bytes }), target, digest)
    } else {
      expectCreated(mount, target, digest)
    }
    await expectServed(target, digest, bytes, far)
  })
})
