/**
 * The monolithic push (src/upload/monolithic.ts) against the real (simulated) bucket.
 */
import { reset } from 'cloudflare:test'
import { beforeEach, describe, expect, it } from 'vitest'
import type { Digest, Repo } from '../../src/names'
import { keys } from '../../src/storage/keys'
import { storeWithDigest } from '../../src/upload/monolithic'
import { bindings as env, listObjects, randomBlob, sha256, sha512 } from '../helpers'

const repo = 'unit/monolithic' as Repo

beforeEach(async () => {
  await reset()
})
const body = (bytes: Uint8Array) => new Response(bytes).body!
const digest256 = async (b: Uint8Array) => (await sha256(b)) as Digest

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
  return undefined
}

async function r2Bytes(key: string): Promise<Uint8Array> {
  const object = await env.BLOBS.get(key)
  expect(object, key).not.toBeNull()
  return new Uint8Array(await object!.arrayBuffer())
}

describe('storeWithDigest', () => {
  it('streams a new blob straight to blobs/<digest>', async () => {
    const bytes = randomBlob(70_000)
    const d = await digest256(bytes)
    expect(await storeWithDigest(env, repo, d, body(bytes), bytes.length)).toMatchObject({ at: keys.blob(d), size: 70_000, repo })
    expect(await r2Bytes(keys.blob(d))).toEqual(bytes)
    expect((await listObjects()).map((o) => o.key)).toEqual([keys.blob(d)])
  })

  it('hashes but does not store again a blob the registry holds', async () => {
    const bytes = randomBlob(70_000)
    const d = await digest256(bytes)
    await storeWithDigest(env, repo, d, body(bytes), bytes.length)
    const before = await env.BLOBS.head(keys.blob(d))
    const again = await storeWithDigest(env, 'unit/other' as Repo, d, body(bytes), bytes.length)
    expect(again).toMatchObject({ at: keys.blob(d), size: 70_000, repo }) // the first holder stays recorded
    const after = await env.BLOBS.head(keys.blob(d))
    expect(after?.uploaded.getTime()).toBe(before?.uploaded.getTime())
    expect(after?.etag).toBe(before?.etag)
    // and other bytes cannot claim the digest of a held blob
    expect(await codeOf(storeWithDigest(env, repo, d, body(randomBlob(70_000)), 70_000))).toBe('DIGEST_INVALID')
  })

  it('stores nothing when the bytes do not match the digest', async () => {
    const bytes = randomBlob(70_000)
    const claimed = await digest256(randomBlob(70_000))
    expect(await codeOf(storeWithDigest(env, repo, claimed, body(bytes), bytes.length))).toBe('DIGEST_INVALID')
    expect(await listObjects()).toEqual([])
  })

  it('stores nothing when the body is not Content-Length bytes', async () => {
    const bytes = randomBlob(1000)
    const d = await digest256(bytes)
    expect(await codeOf(storeWithDigest(env, repo, d, body(bytes), 1001))).toBe('SIZE_INVALID')
    expect(await codeOf(storeWithDigest(env, repo, d, body(bytes), 999))).toBe('SIZE_INVALID')
    expect(await listObjects()).toEqual([])
  })

  it('verifies SHA-512 digests', async () => {
    const bytes = randomBlob(5000)
    const d = (await sha512(bytes)) as Digest
    expect(await storeWithDigest(env, repo, d, body(bytes), 5000)).toMatchObject({ at: keys.blob(d), size: 5000, repo })
    expect(await codeOf(storeWithDigest(env, repo, (await sha512(randomBlob(10))) as Digest, body(randomBlob(10)), 10)))
      .toBe('DIGEST_INVALID')
  })

  it('never replaces an index entry written while it streamed: the entry there wins, the bytes are still verified', async () => {
    // The entry appears between the look and the write (a session closed meanwhile): the look misses it.
    const bytes = randomBlob(3 * 1024 * 1024)
    const d = await digest256(bytes)
    const session = { at: 'data/0123456789abcdef0123456789abcdef/0000000000000000', size: String(bytes.length), repo: 'unit/session' }
    await env.BLOBS.put(session.at, bytes)
    await env.BLOBS.put(keys.blob(d), null, { customMetadata: session })
    const late = () => {
      let looked = false
      const blind = new Proxy(env.BLOBS, {
        get(t, name, receiver) {
          const value = Reflect.get(t, name, receiver)
          if (name !== 'head') return typeof value === 'function' ? value.bind(t) : value
          return async (key: string) => (key === keys.blob(d) && !looked ? ((looked = true), null) : t.head(key))
        },
      })
      return { ...env, BLOBS: blind }
    }
    expect(await storeWithDigest(late(), repo, d, body(bytes), bytes.length)).toMatchObject({ at: session.at, size: bytes.length })
    expect((await env.BLOBS.head(keys.blob(d)))?.customMetadata).toMatchObject({ at: session.at })
    // other bytes under that digest: refused, the entry untouched
    expect(await codeOf(storeWithDigest(late(), repo, d, body(randomBlob(bytes.length)), bytes.length))).toBe('DIGEST_INVALID')
    expect((await env.BLOBS.head(keys.blob(d)))?.customMetadata).toMatchObject({ at: session.at })
    expect(await sha256(await r2Bytes(session.at))).toBe(d)
  })
})
