/**
 * R2 failing to take bytes that came whole (a full disk, an internal error) is the registry's
 * failure: 500 UNKNOWN with the spec's error JSON, never a 4xx that tells the client its body
 * was cut off or its digest wrong; the session stays where it was, so the same request sent
 * again succeeds. A body that really broke off is still the client's (400).
 */
import { describe, expect, it } from 'vitest'
import { PART_SIZE } from '../../src/upload/session'
import { expectServed, expectStoreFailure, faulty } from '../faulty-bucket'
import { bindings, call, callWith, cutOffStream, errorCode, randomBlob, repoName, sha256, startUpload, streamOf, withDigest } from '../helpers'

/** The bucket, with every put and part upload failing after its whole body was read (the first put of each flow tested is its bytes'). */
const failingBucket = () => faulty((op) => op === 'put' || op === 'uploadPart').BLOBS

const failing = { BLOBS: failingBucket() }

describe('R2 failing to store a body that came whole', () => {
  it.each([
    ['one PATCH with Content-Length', 20_000, false],
    ['one chunked PATCH, through parts', PART_SIZE + 20_000, true],
  ] as const)('%s: 500 UNKNOWN, the session where it was; sent again, it is stored', async (_how, size, chunked) => {
    const repo = repoName('store-fail')
    const bytes = randomBlob(size)
    const digest = await sha256(bytes)
    const location = await startUpload(repo)
    const patch = () => (chunked
      ? { method: 'PATCH', body: streamOf(bytes), duplex: 'half' } as RequestInit
      : { method: 'PATCH', body: bytes, headers: { 'Content-Length': String(size) } })
    await expectStoreFailure(await callWith(failing, location, patch()), 'PATCH')
    // nothing was taken: the session still stands at 0 bytes
    const status = await call(location)
    expect(status.status).toBe(204)
    expect(status.headers.get('range')).toBe('0-0')
    const again = await call(location, patch())
    expect(again.status).toBe(202)
    expect(again.headers.get('range')).toBe(`0-${size - 1}`)
    const closed = await call(withDigest(again.headers.get('location')!, digest), { method: 'PUT' })
    expect(closed.status).toBe(201)
    await expectServed(repo, digest)
  })

  it('PUT ?digest= with the whole body: 500 UNKNOWN, the session open; a wrong digest is still 400 DIGEST_INVALID', async () => {
    const repo = repoName('store-fail')
    const bytes = randomBlob(30_000)
    const digest = await sha256(bytes)
    const location = await startUpload(repo)
    const put = () => ({ method: 'PUT', body: bytes, headers: { 'Content-Length': String(bytes.length) } })
    await expectStoreFailure(await callWith(failing, withDigest(location, digest), put()), 'PUT')
    const closed = await call(withDigest(location, digest), put())
    expect(closed.status).toBe(201)
    await expectServed(repo, digest)

    const other = await startUpload(repo)
    const wrong = await call(withDigest(other, `sha256:${'0'.repeat(64)}`), put())
    expect(wrong.status).toBe(400)
    expect(await errorCode(wrong)).toBe('DIGEST_INVALID')
  })

  it('a monolithic POST ?digest=: 500 UNKNOWN; sent again, it is stored', async () => {
    const repo = repoName('store-fail')
    const bytes = randomBlob(30_000)
    const digest = await sha256(bytes)
    const post = () => ({ method: 'POST', body: bytes, headers: { 'Content-Length': String(bytes.length) } })
    await expectStoreFailure(await callWith(failing, `/v2/${repo}/blobs/uploads/?digest=${digest}`, post()), 'POST')
    expect((await call(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    expect((await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, post())).status).toBe(201)
    await expectServed(repo, digest)
  })

  it('a body that broke off is still the client’s: 400 BLOB_UPLOAD_INVALID, whatever R2 would have done', async () => {
    const repo = repoName('store-fail')
    const bytes = randomBlob(3 * 1024 * 1024)
    for (const BLOBS of [bindings.BLOBS, failingBucket()]) {
      const location = await startUpload(repo)
      const res = await callWith({ BLOBS }, location, {
        method: 'PATCH', body: cutOffStream(bytes, 1024 * 1024), headers: { 'Content-Length': String(bytes.length) }, duplex: 'half',
      } as RequestInit)
      expect(res.status).toBe(400)
      expect(await errorCode(res)).toBe('BLOB_UPLOAD_INVALID')
    }
  })
})
