/** GET/HEAD/DELETE /v2/<name>/blobs/<digest> (src/routes/blobs.ts). */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/env'
import type { Digest, Repo } from '../../src/names'
import { router } from '../../src/router'
import { keys } from '../../src/storage/keys'
import {
  bindings, bytesOf, call, callWith, errorCode, MiB, ORIGIN, pushBlob, randomBlob, repoName, sha256, StaleKV, startUpload,
  withDigest,
} from '../helpers'

const unknownDigest = `sha256:${'0'.repeat(64)}`

async function pushed(size = 1000): Promise<{ repo: string; bytes: Uint8Array; digest: string }> {
  const repo = repoName('blobs')
  const bytes = randomBlob(size)
  return { repo, bytes, digest: await pushBlob(repo, bytes) }
}

describe('GET and HEAD a blob', () => {
  it('serves the bytes with length, digest, type and ETag', async () => {
    const { repo, bytes, digest } = await pushed(1000)
    const res = await call(`/v2/${repo}/blobs/${digest}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('Content-Length')).toBe('1000')
    expect(res.headers.get('Docker-Content-Digest')).toBe(digest)
    expect(res.headers.get('Content-Type')).toBe('application/octet-stream')
    expect(res.headers.get('ETag')).toBe(`"${digest}"`)
    expect(res.headers.get('Accept-Ranges')).toBe('bytes')
    expect(await bytesOf(res)).toEqual(bytes)
  })

  it('answers HEAD with the same headers and no body', async () => {
    const { repo, digest } = await pushed(1000)
    const res = await call(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })
    expect(res.status).toBe(200)
    expect(res.headers.get('Content-Length')).toBe('1000')
    expect(res.headers.get('Docker-Content-Digest')).toBe(digest)
    expect(res.headers.get('Content-Type')).toBe('application/octet-stream')
    expect(res.headers.get('ETag')).toBe(`"${digest}"`)
    expect((await bytesOf(res)).length).toBe(0)
  })

  it('serves the same bytes again from a warm location', async () => {
    const { repo, bytes, digest } = await pushed(5000)
    expect(await bytesOf(await call(`/v2/${repo}/blobs/${digest}`))).toEqual(bytes)
    const again = await call(`/v2/${repo}/blobs/${digest}`)
    expect(again.headers.get('Content-Length')).toBe('5000')
    expect(await bytesOf(again)).toEqual(bytes)
  })

  describe('a cold location (no cached copy)', () => {
    /** A GET straight to the router, answered before its background work is waited for. */
    async function coldGet(repo: string, digest: string) {
      const ctx = createExecutionContext()
      const res = await router.fetch(new Request(`${ORIGIN}/v2/${repo}/blobs/${digest}`), bindings, ctx)
      return { res, background: () => waitOnExecutionContext(ctx) }
    }
    const cachedCopy = (digest: string) => caches.default.match(keys.cachedBlob(ORIGIN, digest as Digest))

    it('answers before the blob is cached, and caches it while the client reads it', async () => {
      const { repo, bytes, digest } = await pushed(3 * MiB)
      const { res, background } = await coldGet(repo, digest)
      expect(res.status).toBe(200)
      expect(await cachedCopy(digest)).toBeUndefined() // the answer did not wait for the cache
      expect(await sha256(await bytesOf(res))).toBe(await sha256(bytes))
      await background()
      const cached = await cachedCopy(digest)
      expect(cached?.headers.get('Content-Length')).toBe(String(3 * MiB))
      expect(await sha256(await bytesOf(cached!))).toBe(digest)
    })

    it('fills the cache to the end when the client leaves after the first bytes', async () => {
      const { repo, digest } = await pushed(3 * MiB)
      const { res, background } = await coldGet(repo, digest)
      const reader = res.body!.getReader()
      await reader.read()
      await reader.cancel()
      await background()
      expect(await sha256(await bytesOf((await cachedCopy(digest))!))).toBe(digest)
    })
  })

  it('serves an empty blob', async () => {
    const repo = repoName('blobs')
    const digest = await sha256(new Uint8Array(0))
    const put = await call(withDigest(await startUpload(repo), digest), { method: 'PUT' })
    expect(put.status).toBe(201)
    for (let i = 0; i < 2; i++) {
      const res = await call(`/v2/${repo}/blobs/${digest}`)
      expect(res.status).toBe(200)
      expect(res.headers.get('Content-Length')).toBe('0')
      expect((await bytesOf(res)).length).toBe(0)
    }
  })

  describe('with a Range', () => {
    const size = 1000
    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 0],
      ['bytes=10-19', 10, 19],
      ['bytes=990-', 990, 999],
      ['bytes=-25', 975, 999],
      ['bytes=900-5000', 900, 999],
      ['bytes=0-', 0, 999],
    ]

    async function expectRanges(repo: string, digest: string, bytes: Uint8Array) {
      for (const [range, first, last] of cases) {
        const res = await call(`/v2/${repo}/blobs/${digest}`, { headers: { Range: range } })
        expect(res.status, range).toBe(206)
        expect(res.headers.get('Content-Range'), range).toBe(`bytes ${first}-${last}/${size}`)
        expect(res.headers.get('Content-Length'), range).toBe(String(last - first + 1))
        expect(res.headers.get('Docker-Content-Digest')).toBe(digest)
        expect(await bytesOf(res), range).toEqual(bytes.subarray(first, last + 1))
      }
    }

    it('serves 206 with Content-Range on a cold location', async () => {
      const { repo, bytes, digest } = await pushed(size)
      await expectRanges(repo, digest, bytes)
      // ranges alone never fill the location's cache
      expect(await caches.default.match(keys.cachedBlob(ORIGIN, digest as Digest))).toBeUndefined()
    })

    it('serves 206 with Content-Range from a warm location, without R2', async () => {
      const { repo, bytes, digest } = await pushed(size)
      expect(await bytesOf(await call(`/v2/${repo}/blobs/${digest}`))).toEqual(bytes) // fills the cache
      expect(await bytesOf(await call(`/v2/${repo}/blobs/${digest}`))).toEqual(bytes) // from the cache
      // Drop the bytes from R2: whatever is served now comes from the location's cache.
      await bindings.BLOBS.delete(keys.blob(digest as Digest))
      await expectRanges(repo, digest, bytes)
    })

    it('answers HEAD with 206 headers and no body', async () => {
      const { repo, digest } = await pushed(size)
      const res = await call(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: { Range: 'bytes=100-199' } })
      expect(res.status).toBe(206)
      expect(res.headers.get('Content-Range')).toBe(`bytes 100-199/${size}`)
      expect(res.headers.get('Content-Length')).toBe('100')
      expect((await bytesOf(res)).length).toBe(0)
    })

    it.each(['bytes=1000-', 'bytes=1000-1005', 'bytes=500-400', 'bytes=-0'])('answers 416 to unsatisfiable %s', async (range) => {
      const { repo, digest } = await pushed(size)
      const res = await call(`/v2/${repo}/blobs/${digest}`, { headers: { Range: range } })
      expect(res.status).toBe(416)
      expect(res.headers.get('Content-Range')).toBe(`bytes */${size}`)
    })

    it('serves the whole blob for a Range it does not take (several ranges)', async () => {
      const { repo, bytes, digest } = await pushed(size)
      const res = await call(`/v2/${repo}/blobs/${digest}`, { headers: { Range: 'bytes=0-1,5-6' } })
      expect(res.status).toBe(200)
      expect(await bytesOf(res)).toEqual(bytes)
    })
  })

  it('answers 304 to a matching If-None-Match', async () => {
    const { repo, digest } = await pushed(1000)
    for (const tag of [`"${digest}"`, `W/"${digest}"`, digest, `"other", "${digest}"`, '*']) {
      for (const method of ['GET', 'HEAD']) {
        const res = await call(`/v2/${repo}/blobs/${digest}`, { method, headers: { 'If-None-Match': tag } })
        expect(res.status, `${method} ${tag}`).toBe(304)
        expect(res.headers.get('ETag')).toBe(`"${digest}"`)
        expect((await bytesOf(res)).length).toBe(0)
      }
    }
    const other = await call(`/v2/${repo}/blobs/${digest}`, { headers: { 'If-None-Match': `"${unknownDigest}"` } })
    expect(other.status).toBe(200)
  })

  it('answers 404 BLOB_UNKNOWN for a digest it does not hold', async () => {
    const repo = repoName('blobs')
    const res = await call(`/v2/${repo}/blobs/${unknownDigest}`)
    expect(res.status).toBe(404)
    expect(await errorCode(res)).toBe('BLOB_UNKNOWN')
    const head = await call(`/v2/${repo}/blobs/${unknownDigest}`, { method: 'HEAD' })
    expect(head.status).toBe(404)
    expect((await bytesOf(head)).length).toBe(0)
  })

  it('answers 404 BLOB_UNKNOWN for a blob linked only in another repository', async () => {
    const { digest } = await pushed(1000)
    const other = repoName('blobs')
    const res = await call(`/v2/${other}/blobs/${digest}`)
    expect(res.status).toBe(404)
    expect(await errorCode(res)).toBe('BLOB_UNKNOWN')
    expect((await call(`/v2/${other}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
  })

  it.each([
    'sha256:1234',
    'notadigest',
    `sha256:${'g'.repeat(64)}`,
    `sha256:${'A'.repeat(64)}`,
    `sha512:${'a'.repeat(64)}`,
    `sha384:${'a'.repeat(96)}`,
    `md5:${'a'.repeat(32)}`,
  ])('answers 400 DIGEST_INVALID for %s', async (digest) => {
    const res = await call(`/v2/${repoName('blobs')}/blobs/${digest}`)
    expect(res.status).toBe(400)
    expect(await errorCode(res)).toBe('DIGEST_INVALID')
  })

  it.each([
    ['uppercase', 'Library/ubuntu'],
    ['256 characters', 'a'.repeat(256)],
    ['an empty component', 'a//b'],
    ['a leading underscore', '_a'],
    ['a trailing separator', 'a-'],
    ['a component starting with a separator', 'a/.b'],
  ])('answers 400 NAME_INVALID for a name with %s', async (_why, name) => {
    for (const method of ['GET', 'DELETE']) {
      const res = await call(`/v2/${name}/blobs/${unknownDigest}`, { method })
      expect(res.status, method).toBe(400)
      expect(await errorCode(res)).toBe('NAME_INVALID')
    }
  })

  it('takes names of up to 255 characters and the spec separators', async () => {
    for (const name of ['a'.repeat(255), 'a.b/c_d/e__f/g---h/0']) {
      const res = await call(`/v2/${name}/blobs/${unknownDigest}`)
      expect(res.status, name).toBe(404)
      expect(await errorCode(res)).toBe('BLOB_UNKNOWN')
    }
  })
})

/** Where the repository's link says the blob's bytes are. */
async function linkedAt(repo: string, digest: string): Promise<string> {
  const link = await bindings.LINKS.get<{ at: string }>(keys.blobLink(repo as Repo, digest as Digest), 'json')
  return link!.at
}

/** The bucket, with reads of `key` answering a body that ends (or fails) after `after` bytes. */
function breakingBucket(key: string, after: number, how: 'ends' | 'fails'): R2Bucket {
  return new Proxy(bindings.BLOBS, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver)
      if (name !== 'get') return typeof value === 'function' ? value.bind(target) : value
      return async (...args: Parameters<R2Bucket['get']>) => {
        const object = await target.get(...args)
        if (!object || !('body' in object) || args[0] !== key) return object
        const reader = object.body.getReader()
        let sent = 0
        const body = new ReadableStream<Uint8Array>({
          async pull(c) {
            if (sent >= after) return how === 'ends' ? c.close() : c.error(new Error('R2 read reset'))
            const { done, value: chunk } = await reader.read()
            if (done) return c.close()
            const piece = chunk.subarray(0, after - sent)
            sent += piece.byteLength
            c.enqueue(piece)
          },
        })
        return new Proxy(object, { get: (o, n) => (n === 'body' ? body : Reflect.get(o, n)) })
      }
    },
  })
}

/** The body of a reply, or the error reading it raised. */
async function read(res: Response): Promise<Uint8Array | Error> {
  try {
    return await bytesOf(res)
  } catch (err) {
    return err as Error
  }
}

describe('a blob GET serves exactly the digest’s bytes, or nothing', () => {
  it.each([
    ['emptied (an end mark where the bytes were)', 0],
    ['shorter', 400],
    ['longer', 1400],
  ])('an object %s than the index entry says: 404 BLOB_UNKNOWN, logged as corrupt, nothing cached', async (_how, size) => {
    const { repo, digest } = await pushed(1000)
    await bindings.BLOBS.put(await linkedAt(repo, digest), randomBlob(size)) // what a broken write would leave
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      for (const headers of [{}, { Range: 'bytes=10-19' }] as Record<string, string>[]) {
        const res = await call(`/v2/${repo}/blobs/${digest}`, { headers })
        expect(res.status, JSON.stringify(headers)).toBe(404)
        expect(await errorCode(res)).toBe('BLOB_UNKNOWN')
      }
      expect(errors.mock.calls.flat()).toContainEqual(expect.objectContaining({ event: 'blob.corrupt', digest, size, expected: 1000 }))
    } finally {
      errors.mockRestore()
    }
    expect(await caches.default.match(keys.cachedBlob(ORIGIN, digest as Digest))).toBeUndefined()
  })

  it('a cached copy of another length is not served: the bytes come from R2 again', async () => {
    const { repo, bytes, digest } = await pushed(1000)
    const key = keys.cachedBlob(ORIGIN, digest as Digest)
    await caches.default.put(key, new Response(new Uint8Array(0), { headers: { 'Content-Length': '0', 'Cache-Control': 'max-age=3600' } }))
    const res = await call(`/v2/${repo}/blobs/${digest}`)
    expect(res.status).toBe(200)
    expect(await bytesOf(res)).toEqual(bytes)
  })

  it.each(['ends', 'fails'] as const)('a read that %s mid-stream: the reply is cut (never a short 200), nothing cached', async (how) => {
    const { repo, digest } = await pushed(300_000)
    const BLOBS = breakingBucket(await linkedAt(repo, digest), 100_000, how)
    for (const headers of [{}, { Range: 'bytes=0-199999' }] as Record<string, string>[]) {
      const res = await callWith({ BLOBS } as Partial<Env>, `/v2/${repo}/blobs/${digest}`, { headers })
      const got = await read(res)
      // a 5xx before any byte, or a body that fails: never fewer bytes than Content-Length says
      if (res.status < 500) expect(got, `${how} ${JSON.stringify(headers)}: ${res.status}`).toBeInstanceOf(Error)
      expect(await caches.default.match(keys.cachedBlob(ORIGIN, digest as Digest))).toBeUndefined()
    }
    // the next reader at this location gets the whole blob
    const res = await call(`/v2/${repo}/blobs/${digest}`)
    expect(res.status).toBe(200)
    expect((await bytesOf(res)).length).toBe(300_000)
  })
})

describe('DELETE a blob', () => {
  it('answers 202, after which the repository no longer has it', async () => {
    const { repo, digest } = await pushed(1000)
    expect((await call(`/v2/${repo}/blobs/${digest}`)).status).toBe(200) // cached at this location
    const res = await call(`/v2/${repo}/blobs/${digest}`, { method: 'DELETE' })
    expect(res.status).toBe(202)
    const get = await call(`/v2/${repo}/blobs/${digest}`)
    expect(get.status).toBe(404)
    expect(await errorCode(get)).toBe('BLOB_UNKNOWN')
    expect((await call(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    const again = await call(`/v2/${repo}/blobs/${digest}`, { method: 'DELETE' })
    expect(again.status).toBe(404)
    expect(await errorCode(again)).toBe('BLOB_UNKNOWN')
  })

  it('leaves the blob in other repositories', async () => {
    const { repo, bytes, digest } = await pushed(1000)
    const other = repoName('blobs')
    expect((await call(`/v2/${other}/blobs/uploads/?mount=${digest}&from=${repo}`, { method: 'POST' })).status).toBe(201)
    expect((await call(`/v2/${repo}/blobs/${digest}`, { method: 'DELETE' })).status).toBe(202)
    const res = await call(`/v2/${other}/blobs/${digest}`)
    expect(res.status).toBe(200)
    expect(await bytesOf(res)).toEqual(bytes)
  })

  it('deletes a blob just pushed at a location whose KV still caches the miss', async () => {
    const kv = new StaleKV()
    const here = (path: string, init?: RequestInit) => callWith({ LINKS: kv.binding }, path, init)
    const repo = repoName('blobs')
    const bytes = randomBlob(1000)
    const digest = await sha256(bytes)
    expect((await here(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404) // KV caches the miss
    await pushBlob(repo, bytes)
    expect((await here(`/v2/${repo}/blobs/${digest}`)).status).toBe(200) // the location's link copy
    const misses = kv.staleMisses
    const res = await here(`/v2/${repo}/blobs/${digest}`, { method: 'DELETE' })
    expect(kv.staleMisses).toBe(misses + 1) // KV still said "no such link"
    expect(res.status).toBe(202)
    expect((await here(`/v2/${repo}/blobs/${digest}`)).status).toBe(404)
    expect((await call(`/v2/${repo}/blobs/${digest}`)).status).toBe(404) // KV's link is gone too
  })

  it('answers 404 BLOB_UNKNOWN for a blob the repository does not have', async () => {
    const res = await call(`/v2/${repoName('blobs')}/blobs/${unknownDigest}`, { method: 'DELETE' })
    expect(res.status).toBe(404)
    expect(await errorCode(res)).toBe('BLOB_UNKNOWN')
  })

  it('answers 405 UNSUPPORTED when deletes are disabled, keeping the blob', async () => {
    const { repo, bytes, digest } = await pushed(1000)
    const res = await callWith({ DELETE_ENABLED: 'false' }, `/v2/${repo}/blobs/${digest}`, { method: 'DELETE' })
    expect(res.status).toBe(405)
    expect(await errorCode(res)).toBe('UNSUPPORTED')
    expect(res.headers.get('Docker-Distribution-API-Version')).toBe('registry/2.0')
    expect(await bytesOf(await call(`/v2/${repo}/blobs/${digest}`))).toEqual(bytes)
  })
})
