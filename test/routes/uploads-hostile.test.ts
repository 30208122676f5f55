/**
 * Upload sessions, and the hash each keeps in the isolate between its requests
 * (src/upload/kept.ts), attacked as a hostile tenant would: replays of old Locations, requests
 * racing at one offset, requests that fail (after taking the kept hash, or before) and are sent
 * again, the other algorithm, kept hashes pushed out. Whatever happens, a blob is indexed only
 * under the digest of the bytes stored, and the session's true bytes close under their own digest.
 */
import { describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/env'
import { NativeHash } from '../../src/digest/native'
import { keep, MAX_KEPT } from '../../src/upload/kept'
import { LEASE_BASE_MS, PART_SIZE } from '../../src/upload/session'
import { expectServed, faulty } from '../faulty-bucket'
import {
  bindings, callWith, countingReads, cutOffStream, errorCode, listObjects, MiB, randomBlob, ranged, repoName, sha256, sha512, slowBody, startUpload, streamOf, withDigest,
} from '../helpers'

const join = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) (out.set(p, at), (at += p.length))
  return out
}

/** The bucket, its part uploads held until `open()`; `landed` once every held one is in. */
function heldParts(): { BLOBS: R2Bucket; open(): void; landed(): Promise<unknown> } {
  let go!: () => void
  const gate = new Promise<void>((r) => (go = r))
  const uploads: Promise<unknown>[] = []
  const out = {
    open: () => go(),
    landed: () => Promise.allSettled(uploads),
    BLOBS: null as unknown as R2Bucket,
  }
  out.BLOBS = new Proxy(bindings.BLOBS, {
    get(target, name) {
      const value = Reflect.get(target, name)
      if (name !== 'resumeMultipartUpload') return typeof value === 'function' ? value.bind(target) : value
      return (key: string, id: string) => {
        const mp = target.resumeMultipartUpload(key, id)
        return new Proxy(mp, {
          get(t, n) {
            const v = Reflect.get(t, n)
            if (n !== 'uploadPart') return typeof v === 'function' ? v.bind(t) : v
            return (part: number, bytes: Uint8Array) => {
              const upload = gate.then(() => t.uploadPart(part, bytes))
              uploads.push(upload)
              return upload
            }
          },
        })
      }
    },
  })
  return out
}

describe('a fold whose body breaks off while one of its parts is still uploading', () => {
  it('gives its claim up only once that part is in: the chunk sent again is stored, and the close verifies it', async () => {
    const repo = repoName('hostile')
    const first = randomBlob(PART_SIZE + MiB) // through parts: part 1, a tail of 1 MiB
    const next = randomBlob(2 * PART_SIZE)
    const l0 = await startUpload(repo)
    const one = await callWith({}, l0, ranged('PATCH', first, 0))
    expect(one.status).toBe(202)
    const l1 = one.headers.get('location')!
    // Part 2 (the tail and 9 MiB of the chunk) is uploading when the body breaks off at 12 MiB.
    const slow = heldParts()
    const cut = callWith({ BLOBS: slow.BLOBS } as Partial<Env>, l1, {
      method: 'PATCH', body: cutOffStream(next, 12 * MiB), duplex: 'half',
      headers: { 'Content-Length': String(next.length), 'Content-Range': `${first.length}-${first.length + next.length - 1}` },
    } as RequestInit)
    // The client sends the chunk again as soon as it can.
    let again: Response | null = null
    const retry = (async () => {
      for (let i = 0; i < 200 && !again; i++) {
        await new Promise((r) => setTimeout(r, 20))
        const res = await callWith({}, l1, ranged('PATCH', next, first.length))
        if (res.status === 202) again = res
      }
    })()
    await new Promise((r) => setTimeout(r, 500))
    slow.open()
    expect((await cut).status).toBe(400)
    await retry
    await slow.landed()
    expect(again, 'the chunk sent again is taken').not.toBeNull()
    const whole = join(first, next)
    const digest = await sha256(whole)
    const put = await callWith({}, withDigest(again!.headers.get('location')!, digest), { method: 'PUT' })
    expect(put.status, await put.clone().text()).toBe(201)
    await expectServed(repo, digest)
  })
})

describe('two closes of one Location at once', () => {
  it.each([
    ['one write through parts (docker: no end mark)', 'docker'],
    ['chunks, the hash kept', 'chunks'],
  ] as const)('%s: one closes it (201, or 400 for a wrong digest); a wrong digest is never indexed', async (_how, mode) => {
    for (let run = 0; run < 4; run++) {
      const repo = repoName('hostile')
      const bytes = randomBlob(PART_SIZE + 3 * MiB)
      let location = await startUpload(repo)
      if (mode === 'docker') {
        location = (await callWith({}, location, { method: 'PATCH', body: streamOf(bytes, 500_001), duplex: 'half' } as RequestInit)).headers.get('location')!
      } else {
        for (const [from, to] of [[0, 2 * MiB], [2 * MiB, bytes.length]] as const) {
          const res = await callWith({}, location, ranged('PATCH', bytes.subarray(from, to), from))
          expect(res.status).toBe(202)
          location = res.headers.get('location')!
        }
      }
      const digest = await sha256(bytes)
      const wrong = await sha256(randomBlob(10))
      const digests = run % 2 ? [digest, wrong] : [digest, digest]
      const puts = await Promise.all(digests.map((d) => callWith({}, withDigest(location, d), { method: 'PUT' })))
      const statuses = puts.map((p) => p.status)
      const text = await Promise.all(puts.map((p) => p.clone().text()))
      // docker's close marks no end, and both upload the last part: the one whose part was
      // replaced before its complete answers 500 while the other closes the session (a known race)
      if (mode === 'chunks') expect(statuses.every((s) => s < 500), `run ${run}: ${statuses} ${text}`).toBe(true)
      expect(statuses.filter((s) => s === 201 || s === 400), `run ${run}: ${statuses} ${text}`).toHaveLength(1)
      expect((await callWith({}, `/v2/${repo}/blobs/${wrong}`, { method: 'HEAD' })).status).toBe(404)
      if (statuses[0] === 201) await expectServed(repo, digest)
    }
  })
})

const digestOf = (alg: 'sha256' | 'sha512', bytes: Uint8Array) => (alg === 'sha256' ? sha256(bytes) : sha512(bytes))

describe('old Locations replayed between the real requests of a session', () => {
  it.each([
    ['sha256', 'sha256'],
    ['sha512', 'sha512'],
    ['sha512', 'sha256'],
  ] as const)('a %s session closed with %s: every replay 416, no prefix ever indexed; the real close verifies', async (alg, closing) => {
    const repo = repoName('hostile')
    // a first write sent whole, a piece, a fold into parts, a piece
    const cuts = [0, 3 * MiB, 3 * MiB + 100_000, 3 * MiB + 100_000 + PART_SIZE + MiB, 3 * MiB + 100_000 + PART_SIZE + MiB + 50_000]
    const bytes = randomBlob(cuts.at(-1)!)
    const start = await callWith({}, `/v2/${repo}/blobs/uploads/?digest-algorithm=${alg}`, { method: 'POST' })
    const locations = [start.headers.get('location')!]
    for (let i = 0; i + 1 < cuts.length; i++) {
      const res = await callWith({}, locations.at(-1)!, ranged('PATCH', bytes.subarray(cuts[i], cuts[i + 1]), cuts[i]!))
      expect(res.status, `chunk ${i}`).toBe(202)
      locations.push(res.headers.get('location')!)
      // every earlier Location, replayed: a close with the digest of its own bytes (either
      // algorithm), a chunk, a GET; the session stays where it is
      for (const [j, old] of locations.slice(1, -1).entries()) {
        const prefix = bytes.subarray(0, cuts[j + 1])
        for (const a of ['sha256', 'sha512'] as const) {
          const d = await digestOf(a, prefix)
          const put = await callWith({}, withDigest(old, d), { method: 'PUT' })
          expect(put.status, `chunk ${i}: close of Location ${j + 1} with ${a}`).toBe(416)
          expect(put.headers.get('range')).toBe(`0-${cuts[i + 1]! - 1}`)
          expect((await callWith({}, `/v2/${repo}/blobs/${d}`, { method: 'HEAD' })).status).toBe(404)
        }
        const more = randomBlob(j % 2 ? 1000 : PART_SIZE + 1000)
        expect((await callWith({}, old, ranged('PATCH', more, cuts[j + 1]!))).status, `chunk ${i}: PATCH at Location ${j + 1}`).toBe(416)
        const get = await callWith({}, old)
        expect(get.status).toBe(204)
        expect(get.headers.get('range')).toBe(`0-${cuts[i + 1]! - 1}`)
      }
    }
    const wrong = await digestOf(closing, randomBlob(10))
    const { BLOBS, read } = countingReads()
    const digest = await digestOf(closing, bytes)
    const put = await callWith({ BLOBS } as Partial<Env>, withDigest(locations.at(-1)!, digest), { method: 'PUT' })
    expect(put.status, await put.clone().text()).toBe(201)
    // the replays left the kept hash alone: the session's own algorithm reads no blob back
    if (closing === alg) expect(read.every((n) => n < PART_SIZE)).toBe(true)
    else expect(read).toContain(bytes.length)
    const served = await callWith({}, `/v2/${repo}/blobs/${digest}`)
    expect(served.status).toBe(200)
    expect(await digestOf(closing, new Uint8Array(await served.arrayBuffer()))).toBe(digest)
    expect((await callWith({}, `/v2/${repo}/blobs/${wrong}`, { method: 'HEAD' })).status).toBe(404)
  })
})

/** `bytes` as a body of unknown length that sends `extra` more bytes (or, negative, fewer) than `bytes`. */
function misSized(bytes: Uint8Array, extra: number): ReadableStream<Uint8Array> {
  return streamOf(extra > 0 ? join(bytes, randomBlob(extra)) : bytes.subarray(0, bytes.length + extra))
}

const sized = (bytes: Uint8Array, from: number, body: BodyInit = bytes): RequestInit => ({
  method: 'PATCH', body, duplex: 'half',
  headers: { 'Content-Length': String(bytes.length), 'Content-Range': `${from}-${from + bytes.length - 1}` },
} as RequestInit)

/** The Location after the first chunk (already in multipart parts), and its bytes. */
async function sessionInParts(repo: string, alg: 'sha256' | 'sha512'): Promise<{ location: string; first: Uint8Array }> {
  const first = randomBlob(PART_SIZE + MiB)
  const start = await callWith({}, `/v2/${repo}/blobs/uploads/?digest-algorithm=${alg}`, { method: 'POST' })
  const res = await callWith({}, start.headers.get('location')!, ranged('PATCH', first, 0))
  expect(res.status).toBe(202)
  return { location: res.headers.get('location')!, first }
}

describe('a request that fails after the kept hash was taken (or before), the session sent on', () => {
  const fold = PART_SIZE + 2 * MiB
  const piece = 100_000
  const cases: [string, number, (l: string, next: Uint8Array, at: number) => Promise<Response>, number][] = [
    ['a fold cut off', fold, (l, next, at) => callWith({}, l, sized(next, at, cutOffStream(next, 5 * MiB))), 400],
    ['a fold longer than its Content-Length', fold, (l, next, at) => callWith({}, l, sized(next, at, misSized(next, 3000))), 400],
    ['a fold shorter than its Content-Length', fold, (l, next, at) => callWith({}, l, sized(next, at, misSized(next, -3000))), 400],
    ['a fold of unknown length over MAX_CHUNK_BYTES (413)', fold,
      (l, next) => callWith({ MAX_CHUNK_BYTES: String(PART_SIZE + MiB) } as Partial<Env>, l, { method: 'PATCH', body: streamOf(join(next, next)), duplex: 'half' } as RequestInit), 413],
    ['a fold whose read of the tail breaks off (R2)', fold,
      (l, next, at) => callWith({ BLOBS: faulty((op) => op === 'get', true).BLOBS } as Partial<Env>, l, sized(next, at)), 500],
    // its claim's put, then its tail's: the second fails
    ['a fold whose tail R2 fails to put', fold,
      (l, next, at) => callWith({ BLOBS: faulty((op, key) => op === 'put' && key.endsWith(`/${String(at).padStart(16, '0')}`) && ++once.used === 2).BLOBS } as Partial<Env>, l, sized(next, at)), 500],
    ['a piece cut off', piece, (l, next, at) => callWith({}, l, sized(next, at, cutOffStream(next, 50_000, 10_000))), 400],
    ['a piece longer than its Content-Length', piece, (l, next, at) => callWith({}, l, sized(next, at, misSized(next, 3000))), 400],
    ['a piece R2 fails to put', piece, (l, next, at) => callWith({ BLOBS: faulty((op) => op === 'put').BLOBS } as Partial<Env>, l, sized(next, at)), 500],
  ]
  const once = { used: 0 }
  it.each(cases)('%s: sent again and closed, a wrong digest is refused and the right one served', async (_how, size, fail, status) => {
    for (const [i, right] of [false, true].entries()) {
      once.used = 0
      const alg = i ? 'sha512' : 'sha256'
      const repo = repoName('hostile')
      const { location, first } = await sessionInParts(repo, alg)
      const next = randomBlob(size)
      const failed = await fail(location, next, first.length)
      expect(failed.status, await failed.clone().text()).toBe(status)
      const again = await callWith({}, location, ranged('PATCH', next, first.length))
      expect(again.status, await again.clone().text()).toBe(202)
      const last = randomBlob(30_000)
      const whole = join(first, next, last)
      const digest = await digestOf(alg, right ? whole : randomBlob(10))
      const put = await callWith({}, withDigest(again.headers.get('location')!, digest), ranged('PUT', last, first.length + next.length))
      expect(put.status, await put.clone().text()).toBe(right ? 201 : 400)
      const served = await callWith({}, `/v2/${repo}/blobs/${digest}`)
      expect(served.status).toBe(right ? 200 : 404)
      if (right) expect(await digestOf(alg, new Uint8Array(await served.arrayBuffer()))).toBe(digest)
    }
  })
})

describe('a fold whose tail R2 stores but answers with a failure', () => {
  it('500; the chunk sent again is told where the session is (416), and the close from there verifies it', async () => {
    for (const right of [false, true]) {
      const repo = repoName('hostile')
      const { location, first } = await sessionInParts(repo, 'sha256')
      const next = randomBlob(PART_SIZE + 2 * MiB)
      let puts = 0
      const BLOBS = new Proxy(bindings.BLOBS, {
        get(target, name) {
          const value = Reflect.get(target, name)
          if (name !== 'put') return typeof value === 'function' ? value.bind(target) : value
          return async (...args: Parameters<R2Bucket['put']>) => {
            const put = await target.put(...args)
            if (args[0].endsWith(String(first.length).padStart(16, '0')) && ++puts === 2) throw new Error('put: We encountered an internal error. Please try again. (10001)')
            return put
          }
        },
      })
      const failed = await callWith({ BLOBS } as Partial<Env>, location, sized(next, first.length))
      expect(failed.status).toBe(500)
      const again = await callWith({}, location, ranged('PATCH', next, first.length))
      expect(again.status).toBe(416)
      expect(again.headers.get('range')).toBe(`0-${first.length + next.length - 1}`)
      const whole = join(first, next)
      const digest = right ? await sha256(whole) : await sha256(randomBlob(10))
      const put = await callWith({}, withDigest(again.headers.get('location')!, digest), { method: 'PUT' })
      expect(put.status, await put.clone().text()).toBe(right ? 201 : 400)
      if (right) await expectServed(repo, digest)
    }
  })
})

describe('a piece still arriving when the session of one write is closed', () => {
  it.each([
    ['in one read', 1000],
    ['in several reads', 5 * MiB],
  ] as const)('%s: the close is the end of it, the piece 404; the blob keeps its bytes', async (_how, size) => {
    const repo = repoName('hostile')
    const bytes = randomBlob(3 * MiB) // one PATCH with its length (skopeo): its close marks no end
    const l1 = (await callWith({}, await startUpload(repo), { method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length) } })).headers.get('location')!
    const more = randomBlob(size)
    const slow = slowBody(more, size / 2)
    const sending = callWith({}, l1, sized(more, bytes.length, slow.stream))
    await slow.reading
    const digest = await sha256(bytes)
    const put = await callWith({}, withDigest(l1, digest), { method: 'PUT' })
    expect(put.status).toBe(201)
    slow.open()
    const patch = await sending
    expect(patch.status).toBe(404)
    expect(await errorCode(patch)).toBe('BLOB_UPLOAD_UNKNOWN')
    await expectServed(repo, digest)
  })
})

/** Resolves once the session of `location` has a claim stored (a fold holds its offset). */
async function claimed(location: string): Promise<void> {
  const id = new URL(location, 'http://x').pathname.split('/').pop()!
  while (!(await listObjects(`data/${id}/`)).some((o) => o.customMetadata?.claim)) await new Promise((r) => setTimeout(r, 10))
}

describe('a fold in the middle of its body, holding its offset (and the kept hash)', () => {
  it.each(['sha256', 'sha512'] as const)('%s: every other request there is told 416; the fold goes on, and its close verifies without reading back', async (alg) => {
    const repo = repoName('hostile')
    const { location, first } = await sessionInParts(repo, alg)
    const next = randomBlob(PART_SIZE + 2 * MiB)
    const slow = slowBody(next, 3 * MiB)
    const folding = callWith({}, location, sized(next, first.length, slow.stream))
    await claimed(location)
    const prefix = await digestOf(alg, first)
    const other = randomBlob(PART_SIZE + MiB)
    const small = randomBlob(1000)
    const tries: [string, Promise<Response>][] = [
      ['close', callWith({}, withDigest(location, prefix), { method: 'PUT' })],
      ['close with the other algorithm', callWith({}, withDigest(location, await digestOf(alg === 'sha256' ? 'sha512' : 'sha256', first)), { method: 'PUT' })],
      ['close with a last chunk', callWith({}, withDigest(location, prefix), ranged('PUT', small, first.length))],
      ['a piece', callWith({}, location, ranged('PATCH', small, first.length))],
      ['a fold', callWith({}, location, ranged('PATCH', other, first.length))],
    ]
    for (const [what, res] of tries) expect((await res).status, what).toBe(416)
    const get = await callWith({}, location)
    expect(get.headers.get('range')).toBe(`0-${first.length - 1}`)
    slow.open()
    const folded = await folding
    expect(folded.status).toBe(202)
    expect((await callWith({}, `/v2/${repo}/blobs/${prefix}`, { method: 'HEAD' })).status).toBe(404)
    const whole = join(first, next)
    const digest = await digestOf(alg, whole)
    const { BLOBS, read } = countingReads()
    const put = await callWith({ BLOBS } as Partial<Env>, withDigest(folded.headers.get('location')!, digest), { method: 'PUT' })
    expect(put.status, await put.clone().text()).toBe(201)
    expect(read.every((n) => n < PART_SIZE)).toBe(true)
  })

  it('a DELETE ends the session: the fold is told 404, and nothing of it is ever a blob', async () => {
    const repo = repoName('hostile')
    const { location, first } = await sessionInParts(repo, 'sha256')
    const next = randomBlob(PART_SIZE + 2 * MiB)
    const slow = slowBody(next, 3 * MiB)
    const folding = callWith({}, location, sized(next, first.length, slow.stream))
    await claimed(location)
    expect((await callWith({}, location, { method: 'DELETE' })).status).toBe(204)
    slow.open()
    const folded = await folding
    expect(folded.status).toBe(404)
    for (const d of [await sha256(first), await sha256(join(first, next))]) {
      expect((await callWith({}, withDigest(location, d), { method: 'PUT' })).status).toBe(404)
      expect((await callWith({}, `/v2/${repo}/blobs/${d}`, { method: 'HEAD' })).status).toBe(404)
    }
  })
})

describe('a session whose kept hash is pushed out (more than MAX_KEPT sessions kept in the isolate)', () => {
  const evict = () => {
    for (let i = 0; i < MAX_KEPT; i++) keep({ id: `evict${i}`, alg: 'sha256' }, 1, new NativeHash('sha256'))
  }
  it.each([
    ['in parts', true],
    ['in its first write and a piece (the next fold hashes them again)', false],
  ] as const)('%s: the session goes on; a wrong digest is refused and the right one served', async (_how, inParts) => {
    for (const right of [false, true]) {
      const repo = repoName('hostile')
      let location = await startUpload(repo)
      const first = randomBlob(inParts ? PART_SIZE + MiB : 3 * MiB)
      const piece = randomBlob(inParts ? 0 : 200_000)
      const fold = randomBlob(PART_SIZE + 2 * MiB)
      const last = randomBlob(20_000)
      let at = 0
      for (const chunk of [first, piece, fold]) {
        if (!chunk.length) continue
        if (chunk === fold) evict()
        const res = await callWith({}, location, ranged('PATCH', chunk, at))
        expect(res.status).toBe(202)
        location = res.headers.get('location')!
        at += chunk.length
      }
      const whole = join(first, piece, fold, last)
      const digest = right ? await sha256(whole) : await sha256(randomBlob(10))
      const { BLOBS, read } = countingReads()
      const put = await callWith({ BLOBS } as Partial<Env>, withDigest(location, digest), ranged('PUT', last, at))
      expect(put.status, await put.clone().text()).toBe(right ? 201 : 400)
      // pushed out: read back; hashed again by the fold, it was kept from there
      if (inParts) expect(read).toContain(whole.length)
      else expect(read.every((n) => n < PART_SIZE)).toBe(true)
      if (right) await expectServed(repo, digest)
      else expect((await callWith({}, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    }
  })
})

describe('a close and a DELETE of one Location at once', () => {
  it.each([
    ['one write', 'one'],
    ['chunks, the hash kept', 'chunks'],
  ] as const)('%s: the close is 201 (served) or 404, the DELETE 204 or 404; never a 5xx', async (_how, mode) => {
    for (let run = 0; run < 4; run++) {
      const repo = repoName('hostile')
      const bytes = randomBlob(PART_SIZE + 3 * MiB)
      let location = await startUpload(repo)
      for (const [from, to] of mode === 'one' ? [[0, bytes.length]] : [[0, 2 * MiB], [2 * MiB, bytes.length]]) {
        const res = await callWith({}, location, ranged('PATCH', bytes.subarray(from, to), from!))
        expect(res.status).toBe(202)
        location = res.headers.get('location')!
      }
      const digest = await sha256(bytes)
      const [put, del] = await Promise.all([
        callWith({}, withDigest(location, digest), { method: 'PUT' }),
        // at once, or a little later (after a GET)
        (run % 2 ? callWith({}, location) : Promise.resolve()).then(() => callWith({}, location, { method: 'DELETE' })),
      ])
      expect([201, 404], `run ${run}: PUT ${await put.clone().text()}`).toContain(put.status)
      expect([204, 404], `run ${run}: DELETE`).toContain(del.status)
      if (put.status === 201) await expectServed(repo, digest)
      else expect((await callWith({}, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    }
  })
})

describe('a fold too slow for its claim while the same chunk, sent again, takes its offset over', () => {
  it.each([
    ['in parts', true],
    ['in its first write and a piece (the next fold hashes them again)', false],
  ] as const)('%s: the slow one fails, the other is the session; its close tells a wrong digest and serves the right one', async (_how, inParts) => {
    for (const right of [false, true]) {
      const repo = repoName('hostile')
      let location = await startUpload(repo)
      const first = randomBlob(inParts ? PART_SIZE + MiB : 3 * MiB)
      const piece = randomBlob(inParts ? 0 : 200_000)
      for (const [chunk, at] of [[first, 0], [piece, first.length]] as const) {
        if (!chunk.length) continue
        const res = await callWith({}, location, ranged('PATCH', chunk, at))
        expect(res.status).toBe(202)
        location = res.headers.get('location')!
      }
      const at = first.length + piece.length
      const next = randomBlob(PART_SIZE + 2 * MiB)
      const slow = slowBody(next, 3 * MiB)
      const sending = callWith({}, location, sized(next, at, slow.stream))
      await claimed(location)
      const now = Date.now()
      const clock = vi.spyOn(Date, 'now').mockImplementation(() => now + 2 * LEASE_BASE_MS + 3_600_000)
      let again: Response
      try {
        again = await callWith({}, location, ranged('PATCH', next, at))
        expect(again.status, await again.clone().text()).toBe(202)
        slow.open()
        expect([400, 416]).toContain((await sending).status)
      } finally {
        clock.mockRestore()
      }
      const whole = join(first, piece, next)
      const digest = right ? await sha256(whole) : await sha256(randomBlob(10))
      const put = await callWith({}, withDigest(again.headers.get('location')!, digest), { method: 'PUT' })
      expect(put.status, await put.clone().text()).toBe(right ? 201 : 400)
      if (right) await expectServed(repo, digest)
      else expect((await callWith({}, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    }
  })
})
