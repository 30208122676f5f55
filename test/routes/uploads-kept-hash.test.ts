/**
 * A session pushed in several requests keeps its hash in the isolate between them
 * (src/upload/kept.ts): its close verifies the digest without reading the blob back. Where the
 * next request finds no kept hash (another isolate, or a request that failed after taking it),
 * the session goes on unhashed and its close reads the blob back: still verified, never served
 * on a wrong digest.
 */
import { describe, expect, it } from 'vitest'
import type { Env } from '../../src/env'
import { forgetKept } from '../../src/upload/kept'
import { PART_SIZE } from '../../src/upload/session'
import { expectServed, faulty } from '../faulty-bucket'
import { bindings, callWith, countingReads, errorCode, MiB, randomBlob, ranged, repoName, sha256, startUpload, withDigest } from '../helpers'

/**
 * The push tool's requests: PATCHes of `size` with Content-Range, then the last chunk on the
 * closing PUT, each a request of its own; `between` runs before each request after the first.
 * The PUT's reply, and the bytes R2 gave it.
 */
async function pushInChunks(repo: string, blob: Uint8Array, digest: string, size: number, between = () => {}, env: Partial<Env> = {}) {
  let location = await startUpload(repo)
  let at = 0
  for (; blob.length - at > size; at += size) {
    if (at > 0) between()
    const res = await callWith(env, location, ranged('PATCH', blob.subarray(at, at + size), at))
    expect(res.status).toBe(202)
    location = res.headers.get('location')!
  }
  between()
  const { BLOBS, read } = countingReads()
  const put = await callWith({ BLOBS }, withDigest(location, digest), ranged('PUT', blob.subarray(at), at))
  return { put, read }
}

describe('a session pushed in several requests', () => {
  it('is verified at the close by the hash kept between its requests: no read of the blob', async () => {
    const repo = repoName('kept')
    const blob = randomBlob(3 * PART_SIZE + 2 * MiB)
    const digest = await sha256(blob)
    const { put, read } = await pushInChunks(repo, blob, digest, PART_SIZE + MiB)
    expect(put.status).toBe(201)
    expect(read.reduce((n, m) => n + m, 0)).toBeLessThan(PART_SIZE) // the last remainder only
    await expectServed(repo, digest)
  })

  it('whose requests reach another isolate is verified by reading the blob back at the close', async () => {
    const repo = repoName('kept')
    const blob = randomBlob(3 * PART_SIZE + 2 * MiB)
    const digest = await sha256(blob)
    const wrong = await pushInChunks(repo, blob, await sha256(randomBlob(10)), PART_SIZE + MiB, forgetKept)
    expect(wrong.put.status).toBe(400)
    expect(await errorCode(wrong.put)).toBe('DIGEST_INVALID')
    expect(wrong.read).toContain(blob.length)
    const right = await pushInChunks(repo, blob, digest, PART_SIZE + MiB, forgetKept)
    expect(right.put.status).toBe(201)
    expect(right.read).toContain(blob.length)
    await expectServed(repo, digest)
  })

  it('whose chunk failed after taking the kept hash goes on unhashed: sent again, the close reads the blob back', async () => {
    const repo = repoName('kept')
    const first = randomBlob(PART_SIZE)
    const second = randomBlob(PART_SIZE)
    const last = randomBlob(MiB)
    const blob = new Uint8Array([...first, ...second, ...last])
    for (const digest of [await sha256(randomBlob(10)), await sha256(blob)]) {
      const location = await startUpload(repo)
      const one = await callWith({}, location, ranged('PATCH', first, 0))
      expect(one.status).toBe(202)
      let parts = 0
      const broken = faulty((op) => op === 'uploadPart' && ++parts === 1)
      expect((await callWith({ BLOBS: broken.BLOBS }, one.headers.get('location')!, ranged('PATCH', second, first.length))).status).toBe(500)
      const two = await callWith({}, one.headers.get('location')!, ranged('PATCH', second, first.length))
      expect(two.status).toBe(202)
      const { BLOBS, read } = countingReads()
      const put = await callWith({ BLOBS }, withDigest(two.headers.get('location')!, digest), ranged('PUT', last, 2 * PART_SIZE))
      expect(read).toContain(blob.length)
      if (digest === (await sha256(blob))) {
        expect(put.status).toBe(201)
        await expectServed(repo, digest)
      } else {
        expect(put.status).toBe(400)
        expect(await errorCode(put)).toBe('DIGEST_INVALID')
      }
    }
  })
})

describe('the bytes a fold reads back', () => {
  it('read back short are the store’s failure: 500, nothing stored for them; sent again, the blob is served whole', async () => {
    const repo = repoName('kept')
    const first = randomBlob(3 * MiB)
    const next = randomBlob(PART_SIZE)
    const whole = new Uint8Array([...first, ...next])
    const location = await startUpload(repo)
    const one = await callWith({}, location, { method: 'PATCH', body: first, headers: { 'Content-Length': String(first.length) } })
    expect(one.status).toBe(202)
    // R2 answers the read of the first write with only its first MiB, once (the hash kept covers all 3)
    let cut = false
    const short = new Proxy(bindings.BLOBS, {
      get(target, name) {
        const value = Reflect.get(target, name)
        if (name !== 'get') return typeof value === 'function' ? value.bind(target) : value
        return async (key: string, options?: R2GetOptions) => {
          const object = await target.get(key, options)
          if (cut || !object || !('body' in object) || object.size !== first.length) return object
          cut = true
          const body = new Response(first.subarray(0, MiB)).body!
          return new Proxy(object, { get: (o, n) => (n === 'body' ? body : Reflect.get(o, n)) })
        }
      },
    })
    const failed = await callWith({ BLOBS: short }, one.headers.get('location')!, ranged('PATCH', next, first.length))
    expect(failed.status).toBe(500)
    expect(cut).toBe(true)
    const two = await callWith({}, one.headers.get('location')!, ranged('PATCH', next, first.length))
    expect(two.status).toBe(202)
    const digest = await sha256(whole)
    expect((await callWith({}, withDigest(two.headers.get('location')!, digest), { method: 'PUT' })).status).toBe(201)
    await expectServed(repo, digest)
  })
})

describe('the status of a session of one write, asked from the POST’s Location', () => {
  it('reads the write back only where its hash is not kept', async () => {
    const repo = repoName('kept')
    for (const elsewhere of [false, true]) {
      const first = randomBlob(3 * MiB)
      const location = await startUpload(repo)
      const one = await callWith({}, location, { method: 'PATCH', body: first, headers: { 'Content-Length': String(first.length) } })
      expect(one.status).toBe(202)
      if (elsewhere) forgetKept()
      const { BLOBS, read } = countingReads()
      const asked = await callWith({ BLOBS }, location)
      expect(asked.status).toBe(204)
      expect(asked.headers.get('range')).toBe(`0-${first.length - 1}`)
      expect(read.includes(first.length)).toBe(elsewhere)
    }
  })
})
