/**
 * Where an upload's bytes go in R2, call by call (src/upload/session.ts),
 * against the real (simulated) bucket. Each test starts with an empty bucket.
 */
import { reset } from 'cloudflare:test'
import { beforeEach, describe, expect, it } from 'vitest'
import type { Digest, Repo } from '../../src/names'
import { keys } from '../../src/storage/keys'
import { append, assertLive, BUFFER_LIMIT, complete, PART_SIZE, storeWithDigest, cancel } from '../../src/upload/session'
import { newUploadState, signState, verifyState, type UploadState } from '../../src/upload/state'
import { bindings as env, bytesOf, listObjects, MiB, randomBlob, sha256, sha512, streamOf } from '../helpers'

const repo = 'unit/session' as Repo

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

describe('limits', () => {
  it('uses equal multipart parts R2 accepts and buffers first writes below a part', () => {
    expect(PART_SIZE).toBeGreaterThanOrEqual(5 * MiB)
    expect(BUFFER_LIMIT).toBeLessThanOrEqual(PART_SIZE)
  })
})

describe('append', () => {
  it('stores a small first write once, under its own digest', async () => {
    const bytes = randomBlob(3000)
    const d = await digest256(bytes)
    const state = await append(env, newUploadState(repo), body(bytes), bytes.length)
    expect(state).toMatchObject({ offset: 3000, at: keys.blob(d), tail: 3000, mp: '', parts: 0 })
    const objects = await listObjects()
    expect(objects.map((o) => [o.key, o.size])).toEqual([[keys.blob(d), 3000]])
    expect(objects[0]!.customMetadata).toEqual({ repo })

    // completing it needs no index entry: the bytes already sit at blobs/<digest>
    expect(await complete(env, state, d)).toMatchObject({ at: keys.blob(d), size: 3000, repo })
    expect((await listObjects()).map((o) => o.key)).toEqual([keys.blob(d)])
  })

  it('streams a large first write of known length into one tail, then indexes it', async () => {
    const bytes = randomBlob(BUFFER_LIMIT + 1)
    const d = await digest256(bytes)
    const fresh = newUploadState(repo)
    const state = await append(env, fresh, body(bytes), bytes.length)
    expect(state.at.startsWith(`data/${fresh.id}/`)).toBe(true)
    expect(state).toMatchObject({ offset: bytes.length, tail: bytes.length, skip: 0, mp: '' })
    expect((await listObjects()).map((o) => [o.key, o.size])).toEqual([[state.at, bytes.length]])

    expect(await complete(env, state, d)).toMatchObject({ at: state.at, size: bytes.length, repo })
    const objects = await listObjects()
    expect(objects.map((o) => [o.key, o.size])).toEqual([[keys.blob(d), 0], [state.at, bytes.length]])
    expect(objects[0]!.customMetadata).toEqual({ at: state.at, size: String(bytes.length), repo })
  })

  it('fills exactly one part from a body of unknown length, keeping only the etag list as tail', async () => {
    const bytes = randomBlob(PART_SIZE)
    const d = await digest256(bytes)
    const fresh = newUploadState(repo)
    const state = await append(env, fresh, streamOf(bytes, 777_777), null)
    expect(state).toMatchObject({ offset: PART_SIZE, tail: 0, parts: 1 })
    expect(state.mp).not.toBe('')
    const tail = await r2Bytes(state.at)
    expect(tail.length).toBe(state.skip)
    expect(JSON.parse(new TextDecoder().decode(tail))).toHaveLength(1)

    const blob = await complete(env, state, d)
    expect(blob).toMatchObject({ at: keys.uploadParts(fresh.id), size: PART_SIZE, repo })
    expect((await listObjects()).map((o) => [o.key, o.size])).toEqual([
      [keys.blob(d), 0],
      [keys.uploadParts(fresh.id), PART_SIZE],
    ])
    expect(await sha256(await r2Bytes(blob.at))).toBe(d)
  })

  it('moves earlier bytes into the next write: the tail holds the whole upload so far', async () => {
    const bytes = randomBlob(5000)
    const first = await append(env, newUploadState(repo), body(bytes.subarray(0, 1000)), 1000)
    const second = await append(env, first, body(bytes.subarray(1000)), 4000)
    expect(second).toMatchObject({ offset: 5000, tail: 5000 })
    expect(second.at.startsWith(`data/${first.id}/`)).toBe(true)
    expect(await r2Bytes(second.at)).toEqual(bytes)
    expect(await complete(env, second, await digest256(bytes))).toMatchObject({ at: second.at, size: 5000 })
  })

  it('leaves the state as it is for an empty body', async () => {
    const state = newUploadState(repo)
    expect(await append(env, state, body(new Uint8Array(0)), null)).toEqual(state)
    expect(await append(env, state, null, null)).toEqual(state)
    expect(await listObjects()).toEqual([])
  })

  it('refuses a body that does not match its Content-Length, storing nothing', async () => {
    const bytes = randomBlob(100)
    expect(await codeOf(append(env, newUploadState(repo), body(bytes), 101))).toBe('SIZE_INVALID')
    expect(await codeOf(append(env, newUploadState(repo), body(bytes), 99))).toBe('SIZE_INVALID')
    const first = await append(env, newUploadState(repo), body(bytes), 100)
    const before = await listObjects()
    expect(await codeOf(append(env, first, body(bytes), 50))).toBe('SIZE_INVALID')
    expect(await codeOf(append(env, first, body(bytes), 150))).toBe('SIZE_INVALID')
    expect(await listObjects()).toEqual(before)
  })

  it('refuses to feed a cancelled session', async () => {
    const state = newUploadState(repo)
    await assertLive(env, state)
    await cancel(env, state)
    expect(await codeOf(assertLive(env, state))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await codeOf(append(env, state, body(randomBlob(10)), 10))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await codeOf(append(env, state, streamOf(randomBlob(10)), null))).toBe('BLOB_UPLOAD_UNKNOWN')
  })

  it('drops the tail of a cancelled session, which then is unknown', async () => {
    const state = await append(env, newUploadState(repo), body(randomBlob(100)), 100)
    const second = await append(env, state, body(randomBlob(100)), 100)
    await cancel(env, second)
    expect(await env.BLOBS.head(second.at)).toBeNull()
    expect(await codeOf(assertLive(env, second))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await codeOf(append(env, second, body(randomBlob(10)), 10))).toBe('BLOB_UPLOAD_UNKNOWN')
  })
  it('keeps its own copy of first bytes the registry indexes as a pointer to another upload', async () => {
    // A chunked upload made blobs/<digest> a pointer to that upload's own tail object.
    const bytes = randomBlob(3000)
    const d = await digest256(bytes)
    const first = await append(env, newUploadState(repo), body(bytes.subarray(0, 1000)), 1000)
    const held = await complete(env, await append(env, first, body(bytes.subarray(1000)), 2000), d)
    expect(held.at.startsWith(`data/${first.id}/`)).toBe(true)

    const writes = [
      (s: UploadState) => append(env, s, body(bytes), bytes.length), // one PATCH with Content-Length
      (s: UploadState) => append(env, s, streamOf(bytes, 999), null), // one PATCH of unknown length
    ]
    for (const write of writes) {
      const fresh = newUploadState('unit/other' as Repo)
      const state = await write(fresh)
      expect(state.at.startsWith(`data/${fresh.id}/`)).toBe(true)
      // so its state stays valid for the next request
      expect(await verifyState('s', fresh.repo as Repo, fresh.id, await signState('s', state))).toEqual(state)
      expect(await complete(env, state, d)).toEqual(held)
      expect(await env.BLOBS.head(state.at)).toBeNull() // the registry had the bytes: its copy is dropped
    }
    // nor does cancelling such a session touch the other upload's bytes
    await cancel(env, await writes[0]!(newUploadState('unit/third' as Repo)))
    expect(await r2Bytes(held.at)).toEqual(bytes)
  })
})

describe('pieces after the tail (once there are parts)', () => {
  it('writes a chunk that completes no part once, as a piece, leaving the tail as it was', async () => {
    const bytes = randomBlob(PART_SIZE + 3 * MiB)
    const d = await digest256(bytes)
    // one streamed write fills a part and leaves a 1 MiB tail
    let state = await append(env, newUploadState(repo), body(bytes.subarray(0, PART_SIZE + MiB)), null)
    expect(state.mp).not.toBe('')
    const tail = state.at
    for (const start of [PART_SIZE + MiB, PART_SIZE + 2 * MiB]) {
      state = await append(env, state, body(bytes.subarray(start, start + MiB)), MiB)
      expect(state.at).toBe(tail) // the tail was not re-written
    }
    expect(state.more?.map(([, size]) => size)).toEqual([MiB, MiB])
    const [firstPiece, secondPiece] = state.more!.map(([key]) => key)
    expect(await sha256(await r2Bytes(firstPiece!))).toBe(await sha256(bytes.subarray(PART_SIZE + MiB, PART_SIZE + 2 * MiB)))
    expect(await sha256(await r2Bytes(secondPiece!))).toBe(await sha256(bytes.subarray(PART_SIZE + 2 * MiB)))
    const blob = await complete(env, state, d)
    expect(await sha256(await r2Bytes(blob.at))).toBe(d)
    // nothing of the session is left but the completed object
    expect((await listObjects(`data/${state.id}`)).map((o) => o.key)).toEqual([blob.at])
  })

  it('folds the pieces into a part when a chunk completes one', async () => {
    const bytes = randomBlob(2 * PART_SIZE + 5)
    const d = await digest256(bytes)
    let state = await append(env, newUploadState(repo), body(bytes.subarray(0, PART_SIZE + 100)), null)
    state = await append(env, state, body(bytes.subarray(PART_SIZE + 100, PART_SIZE + 200)), 100)
    expect(state.more).toHaveLength(1)
    state = await append(env, state, body(bytes.subarray(PART_SIZE + 200)), PART_SIZE - 195)
    expect(state.more).toBeUndefined()
    expect(state.parts).toBe(2)
    const blob = await complete(env, state, d)
    expect(await sha256(await r2Bytes(blob.at))).toBe(d)
    expect((await listObjects(`data/${state.id}`)).map((o) => o.key)).toEqual([blob.at])
  })

  it('drops the pieces when the session is cancelled', async () => {
    const bytes = randomBlob(PART_SIZE + 2 * MiB)
    let state = await append(env, newUploadState(repo), body(bytes.subarray(0, PART_SIZE + MiB)), null)
    state = await append(env, state, body(bytes.subarray(PART_SIZE + MiB)), MiB)
    await cancel(env, state)
    for (const [key] of state.more!) expect(await env.BLOBS.head(key)).toBeNull()
    expect(await codeOf(complete(env, state, await digest256(bytes)))).toBe('BLOB_UPLOAD_UNKNOWN')
  })
})

describe('complete', () => {
  it('refuses a digest the bytes do not have, dropping the upload bytes', async () => {
    const bytes = randomBlob(2000)
    const first = await append(env, newUploadState(repo), body(bytes.subarray(0, 1000)), 1000)
    const state = await append(env, first, body(bytes.subarray(1000)), 1000)
    expect(await codeOf(complete(env, state, await digest256(randomBlob(2000))))).toBe('DIGEST_INVALID')
    expect(await env.BLOBS.head(state.at)).toBeNull()
    expect(await env.BLOBS.head(keys.blob(await digest256(bytes)))).toBeNull()
  })

  it('never deletes a registry blob when refusing a digest', async () => {
    // A small first write sits at blobs/<its digest>, which other repositories may use.
    const bytes = randomBlob(1000)
    const state = await append(env, newUploadState(repo), body(bytes), 1000)
    expect(await codeOf(complete(env, state, await digest256(randomBlob(1000))))).toBe('DIGEST_INVALID')
    expect(await r2Bytes(keys.blob(await digest256(bytes)))).toEqual(bytes)
  })

  it('indexes a SHA-512 digest as a pointer to where the bytes are', async () => {
    const bytes = randomBlob(1000)
    const state = await append(env, newUploadState(repo), body(bytes), 1000)
    const d512 = (await sha512(bytes)) as Digest
    const blob = await complete(env, state, d512)
    expect(blob).toMatchObject({ at: keys.blob(await digest256(bytes)), size: 1000, repo })
    const index = await env.BLOBS.head(keys.blob(d512))
    expect(index?.size).toBe(0)
    expect(index?.customMetadata).toEqual({ at: blob.at, size: '1000', repo })
  })

  it('stores an empty blob under its digest', async () => {
    const empty = new Uint8Array(0)
    const d = await digest256(empty)
    expect(await complete(env, newUploadState(repo), d)).toMatchObject({ at: keys.blob(d), size: 0, repo })
    expect((await env.BLOBS.head(keys.blob(d)))?.size).toBe(0)
  })

  it('lets the first of two uploads of the same bytes win, deleting the loser’s copy', async () => {
    const bytes = randomBlob(BUFFER_LIMIT + 10)
    const d = await digest256(bytes)
    const a = await append(env, newUploadState(repo), body(bytes), bytes.length)
    const b = await append(env, newUploadState('unit/other' as Repo), body(bytes), bytes.length)
    const won = await complete(env, a, d)
    const lost = await complete(env, b, d)
    expect(lost).toEqual(won)
    expect(won).toMatchObject({ at: a.at, size: bytes.length, repo })
    expect(await env.BLOBS.head(b.at)).toBeNull()
    expect((await listObjects()).filter((o) => o.size === bytes.length).map((o) => o.key)).toEqual([a.at])
  })
})

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
})

it('keeps the state JSON small enough for a URL', async () => {
  const bytes = randomBlob(PART_SIZE + 5)
  const state: UploadState = await append(env, newUploadState(repo), streamOf(bytes), null)
  expect(JSON.stringify(state).length).toBeLessThan(2000)
})
