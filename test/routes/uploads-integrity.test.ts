/**
 * Issue 19: no request, replay or race may empty, revive or strand a stored blob. Each case as a
 * hostile tenant would send it, through the worker with real (simulated) R2 and KV.
 */
import { describe, expect, it } from 'vitest'
import type { Env } from '../../src/env'
import type { Digest } from '../../src/names'
import { keys } from '../../src/storage/keys'
import { PART_SIZE } from '../../src/upload/session'
import {
  bindings, bytesOf, call, callWith, errorCode, MiB, randomBlob, repoName, sha256, sha512, slowBody, startUpload, streamOf, withDigest,
} from '../helpers'

const range = (from: number, to: number) => ({ 'Content-Range': `${from}-${to - 1}` })
const zero512 = `sha512:${'0'.repeat(128)}`

async function expectUnknown(res: Response, what: string): Promise<void> {
  expect(res.status, what).toBe(404)
  expect(await errorCode(res), what).toBe('BLOB_UPLOAD_UNKNOWN')
}

/** The repository serves exactly `bytes` under `digest`. */
async function expectServed(repo: string, digest: string, bytes: Uint8Array, what = ''): Promise<void> {
  const res = await call(`/v2/${repo}/blobs/${digest}`)
  expect(res.status, `${what} GET ${repo}`).toBe(200)
  const got = await bytesOf(res)
  expect(got.length, `${what} bytes served by ${repo}`).toBe(bytes.length)
  expect(await sha256(got), what).toBe(await sha256(bytes))
}

/** Every method on `location` answers 404 BLOB_UPLOAD_UNKNOWN, whatever the digest. */
async function expectSpent(location: string, digests: string[], what: string): Promise<void> {
  await expectUnknown(await call(location), `${what}: GET`)
  for (const d of digests) {
    await expectUnknown(await call(withDigest(location, d), { method: 'PUT' }), `${what}: PUT ${d.slice(0, 12)}`)
  }
  await expectUnknown(await call(location, { method: 'PATCH', body: randomBlob(10), headers: { 'Content-Length': '10' } }), `${what}: PATCH`)
  await expectUnknown(await call(location, { method: 'DELETE' }), `${what}: DELETE`)
}

/** The blob index entry of `digest`: where it says the bytes are. */
async function indexed(digest: string): Promise<string | undefined> {
  const object = await bindings.BLOBS.head(keys.blob(digest as Digest))
  return object?.customMetadata?.at ?? object?.key
}

describe('a spent Location replayed with the other algorithm’s digest', () => {
  it.each([
    ['one PATCH with Content-Length', 'length'],
    ['one chunked PATCH (through parts)', 'chunked'],
    ['PUT with the whole body', 'whole'],
  ] as const)('%s: 404 BLOB_UPLOAD_UNKNOWN to every replay; the blob keeps its bytes for everyone', async (_how, mode) => {
    const repo = repoName('team-a/x')
    const bytes = randomBlob(mode === 'chunked' ? PART_SIZE + 20_222 : 20_222)
    const digest = await sha256(bytes)
    const l0 = await startUpload(repo)
    let closing = l0
    if (mode === 'whole') {
      expect((await call(withDigest(l0, digest), { method: 'PUT', body: bytes })).status).toBe(201)
    } else {
      const body = mode === 'length' ? bytes : streamOf(bytes, 300_001)
      const headers = mode === 'length' ? { 'Content-Length': String(bytes.length) } : undefined
      const patched = await callWith({}, l0, { method: 'PATCH', body, headers })
      expect(patched.status).toBe(202)
      closing = patched.headers.get('Location')!
      expect((await call(withDigest(closing, digest), { method: 'PUT' })).status).toBe(201)
    }
    const wrong = await call(withDigest(closing, zero512), { method: 'PUT' })
    await expectUnknown(wrong, 'PUT with sha512:000…')
    await expectSpent(closing, [digest, zero512, await sha512(bytes)], 'the closing Location')
    await expectSpent(l0, [digest, zero512, await sha512(bytes)], 'the POST Location')
    await expectServed(repo, digest, bytes)
    // anyone pushing the same bytes later is linked to intact bytes
    const other = repoName('team-b/victim')
    const l = await startUpload(other)
    const p = await call(l, { method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length) } })
    expect((await call(withDigest(p.headers.get('Location')!, digest), { method: 'PUT' })).status).toBe(201)
    await expectServed(other, digest, bytes, 'a later push of the same bytes')
  })

  it('a session closed with the other algorithm: its replays with the session’s own digest are spent too', async () => {
    const repo = repoName('team-a/x')
    const bytes = randomBlob(30_000)
    const d512 = await sha512(bytes)
    const l1 = (await call(await startUpload(repo), { method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length) } })).headers.get('Location')!
    expect((await call(withDigest(l1, d512), { method: 'PUT' })).status).toBe(201)
    await expectSpent(l1, [await sha256(bytes), d512], 'closed with sha512')
    await expectServed(repo, d512, bytes)
    // the sha256 digest of the same bytes was never claimed by that session
    expect((await call(`/v2/${repo}/blobs/${await sha256(bytes)}`, { method: 'HEAD' })).status).toBe(404)
  })
})

describe('a monolithic POST racing a session close of the same blob', () => {
  it.each([
    ['PUT with the whole body', 'whole'],
    ['one PATCH, then PUT', 'patch'],
  ] as const)('session closed (%s) while the POST streams: both 201, one index entry, every Location spent, both serve the bytes', async (_how, mode) => {
    const mono = repoName('mono')
    const sess = repoName('sess')
    const bytes = randomBlob(3 * MiB)
    const digest = await sha256(bytes)
    const slow = slowBody(bytes, MiB)
    const posting = callWith({}, `/v2/${mono}/blobs/uploads/?digest=${digest}`, {
      method: 'POST', body: slow.stream, headers: { 'Content-Length': String(bytes.length) },
    })
    await slow.reading // the POST has looked for the blob (absent) and is streaming it
    const l0 = await startUpload(sess)
    let location = l0
    if (mode === 'whole') {
      expect((await call(withDigest(l0, digest), { method: 'PUT', body: bytes })).status).toBe(201)
    } else {
      location = (await call(l0, { method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length) } })).headers.get('Location')!
      expect((await call(withDigest(location, digest), { method: 'PUT' })).status).toBe(201)
    }
    const session = await indexed(digest)
    expect(session).toMatch(/^data\//)
    slow.open()
    expect((await posting).status).toBe(201)
    // The index entry is not replaced: the session's write stays what it names.
    expect(await indexed(digest)).toBe(session)
    await expectSpent(location, [digest, zero512], 'the session’s Location')
    await expectSpent(l0, [digest], 'the POST Location')
    for (const repo of [sess, mono]) await expectServed(repo, digest, bytes, 'after the race')
  })

  it('the POST first, the session after: the session’s close links the POST’s blob and is spent', async () => {
    const mono = repoName('mono')
    const sess = repoName('sess')
    const bytes = randomBlob(200_000)
    const digest = await sha256(bytes)
    const l1 = (await call(await startUpload(sess), { method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length) } })).headers.get('Location')!
    expect((await call(`/v2/${mono}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes, headers: { 'Content-Length': String(bytes.length) } })).status).toBe(201)
    expect(await indexed(digest)).toBe(keys.blob(digest as Digest))
    expect((await call(withDigest(l1, digest), { method: 'PUT' })).status).toBe(201)
    expect(await indexed(digest)).toBe(keys.blob(digest as Digest))
    await expectSpent(l1, [digest, zero512], 'the losing session')
    for (const repo of [sess, mono]) await expectServed(repo, digest, bytes)
  })
})

/** Resolves when `signal()` is called, or when `done` settles. */
function latch(): { wait(): Promise<void>; signal(): void } {
  let go!: () => void
  const p = new Promise<void>((r) => (go = r))
  return { wait: () => p, signal: go }
}

/**
 * A bucket whose multipart part uploads and session tail writes can be held back, to line up
 * two requests the way a race does.
 */
function steppedBucket(hooks: { beforePart?: () => Promise<void>; afterPart?: () => void; beforeTail?: () => Promise<void> }): R2Bucket {
  const target = bindings.BLOBS
  const wrapUpload = (mp: R2MultipartUpload): R2MultipartUpload =>
    new Proxy(mp, {
      get(t, name, receiver) {
        const value = Reflect.get(t, name, receiver)
        if (name !== 'uploadPart') return typeof value === 'function' ? value.bind(t) : value
        return async (...args: Parameters<R2MultipartUpload['uploadPart']>) => {
          await hooks.beforePart?.()
          const part = await t.uploadPart(...args)
          hooks.afterPart?.()
          return part
        }
      },
    })
  return new Proxy(target, {
    get(t, name, receiver) {
      const value = Reflect.get(t, name, receiver)
      if (name === 'resumeMultipartUpload') return (...args: [string, string]) => wrapUpload(t.resumeMultipartUpload(...args))
      if (name === 'createMultipartUpload') {
        return async (...args: Parameters<R2Bucket['createMultipartUpload']>) => wrapUpload(await t.createMultipartUpload(...args))
      }
      if (name === 'put') {
        return async (...args: Parameters<R2Bucket['put']>) => {
          // a write recording the session's progress: the tail that ends a chunk
          if (/^data\/.*\/\d{16}$/.test(args[0]) && args[2]?.customMetadata?.state) await hooks.beforeTail?.()
          return t.put(...args)
        }
      }
      return typeof value === 'function' ? value.bind(t) : value
    },
  })
}

describe('two PATCHes at one offset of a session with multipart parts', () => {
  it.each([
    ['with Content-Range', false],
    ['chunked, no length', true],
  ] as const)('%s: one 202, one 416, and the winner’s Location closes the blob (every interleaving)', async (_how, streamed) => {
    // Runs 2-5 fold into parts, racing the close's completion of them (1 in 8 went wrong once).
    for (let run = 0; run < 6; run++) {
      const repo = repoName('race')
      const first = randomBlob(12 * MiB)
      const a = randomBlob(12 * MiB)
      const b = randomBlob(12 * MiB)
      const l1 = (await call(await startUpload(repo), { method: 'PATCH', body: first, headers: { 'Content-Length': String(first.length), ...range(0, first.length) } })).headers.get('Location')!
      // A uploads its part first, B overwrites it, then A records its tail: the interleaving that
      // stranded sessions when a write touched the shared parts before winning its offset.
      const aPart = latch()
      const bPart = latch()
      const aDone = latch()
      const bDone = latch()
      const bodyOf = (bytes: Uint8Array) => streamed
        ? { body: streamOf(bytes, 1_000_003) }
        : { body: bytes, headers: { 'Content-Length': String(bytes.length), ...range(first.length, first.length + bytes.length) } }
      const sendA = callWith({ BLOBS: steppedBucket({ afterPart: aPart.signal, beforeTail: () => Promise.race([bPart.wait(), bDone.wait()]) }) } as Partial<Env>,
        l1, { method: 'PATCH', ...bodyOf(a) }).finally(aDone.signal)
      const sendB = callWith({ BLOBS: steppedBucket({ beforePart: () => Promise.race([aPart.wait(), aDone.wait()]), afterPart: bPart.signal, beforeTail: aDone.wait }) } as Partial<Env>,
        l1, { method: 'PATCH', ...bodyOf(b) }).finally(bDone.signal)
      const [ra, rb] = await Promise.all([sendA, sendB])
      expect([ra.status, rb.status].sort(), `run ${run}`).toEqual([202, 416])
      const [winner, won] = ra.status === 202 ? [ra, a] : [rb, b]
      const loser = ra.status === 202 ? rb : ra
      expect(loser.headers.get('Range'), 'the 416 names where the session is').toMatch(/^0-\d+$/)
      const whole = new Uint8Array(first.length + won.length)
      whole.set(first)
      whole.set(won, first.length)
      const digest = await sha256(whole)
      const put = await call(withDigest(winner.headers.get('Location')!, digest), { method: 'PUT' })
      expect(put.status, `run ${run}: ${await put.clone().text()}`).toBe(201)
      await expectServed(repo, digest, whole, `run ${run}`)
    }
  })
})

describe('every old Location, replayed after the session ended', () => {
  it.each(['closed', 'cancelled'] as const)('a session that went through every kind of write, %s: every method, either algorithm, 404; the blob intact', async (ending) => {
    const repo = repoName('replay')
    const bytes = randomBlob(3 * MiB + 1024 + 12 * MiB + 5000)
    const cuts = [0, 3 * MiB, 3 * MiB + 1024, 3 * MiB + 1024 + 12 * MiB, bytes.length]
    const locations = [await startUpload(repo)]
    // a first write sent whole, a piece, a fold into parts, a chunk of unknown length
    for (let i = 0; i + 1 < cuts.length; i++) {
      const chunk = bytes.subarray(cuts[i], cuts[i + 1])
      const init: RequestInit = i === 3
        ? { method: 'PATCH', body: streamOf(chunk, 2000) }
        : { method: 'PATCH', body: chunk, headers: { 'Content-Length': String(chunk.length), ...(i ? range(cuts[i]!, cuts[i + 1]!) : {}) } }
      const res = await callWith({}, locations.at(-1)!, init)
      expect(res.status, `chunk ${i}`).toBe(202)
      locations.push(res.headers.get('Location')!)
    }
    const digest = await sha256(bytes)
    if (ending === 'closed') expect((await call(withDigest(locations.at(-1)!, digest), { method: 'PUT' })).status).toBe(201)
    else expect((await call(locations[2]!, { method: 'DELETE' })).status).toBe(204)
    for (const [i, location] of locations.entries()) {
      await expectSpent(location, [digest, await sha512(bytes), zero512], `Location ${i}`)
      await expectUnknown(await call(withDigest(location, digest), { method: 'PUT', body: bytes.subarray(0, 10) }), `Location ${i}: PUT with a body`)
      await expectUnknown(await callWith({}, location, { method: 'PATCH', body: streamOf(randomBlob(3000), 1000) }), `Location ${i}: PATCH of unknown length`)
    }
    if (ending === 'closed') await expectServed(repo, digest, bytes)
    else expect((await call(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
  })
})

describe('a close racing a chunk at the same Location', () => {
  it.each([
    ['one write', false],
    ['one write through parts (docker)', true],
  ] as const)('%s: the PUT’s blob is intact, whatever the PATCH was told', async (_how, streamed) => {
    // Runs 2-5 fold into parts, racing the close's completion of them (1 in 8 went wrong once).
    for (let run = 0; run < 6; run++) {
      const repo = repoName('race')
      const bytes = randomBlob(streamed ? PART_SIZE + 3000 : 300_000)
      const digest = await sha256(bytes)
      const l1 = (await callWith({}, await startUpload(repo), streamed
        ? { method: 'PATCH', body: streamOf(bytes, 100_003) }
        : { method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length) } })).headers.get('Location')!
      const more = randomBlob(run >= 2 ? 11 * MiB : 1000) // a piece, or a fold
      const [put, patch] = await Promise.all([
        call(withDigest(l1, digest), { method: 'PUT' }),
        call(l1, { method: 'PATCH', body: more, headers: { 'Content-Length': String(more.length), ...range(bytes.length, bytes.length + more.length) } }),
      ])
      expect([201, 416], `run ${run}: PUT`).toContain(put.status)
      expect([202, 404, 416], `run ${run}: PATCH`).toContain(patch.status)
      if (put.status === 201) await expectServed(repo, digest, bytes, `run ${run}`)
      // and whatever the PATCH's Location does next, the blob keeps its bytes
      const next = patch.headers.get('Location')
      if (next) await call(next, { method: 'DELETE' })
      if (put.status === 201) await expectServed(repo, digest, bytes, `run ${run}, after a DELETE of the chunk's Location`)
    }
  })
})

