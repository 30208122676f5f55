/**
 * A client's own bad body is the client's: 400 with the spec's error JSON on every path an upload
 * takes (never a 5xx, whatever R2 makes of a stream that breaks), nothing served, the session
 * where it was, and the same request sent whole then goes on.
 */
import { describe, expect, it } from 'vitest'
import { BUFFER_LIMIT, PART_SIZE } from '../../src/upload/session'
import { bytesOf, call, callWith, errorCode, MiB, randomBlob, repoName, sha256, sha512, streamOf, withDigest } from '../helpers'

/** `n` bytes of `bytes` then `how`: an error (cut off), a clean end (short), or `extra` bytes more (long). */
function badStream(bytes: Uint8Array, how: 'cut' | 'short' | 'long', n: number, extra: Uint8Array): ReadableStream<Uint8Array> {
  const sent = how === 'long' ? new Uint8Array([...bytes, ...extra]) : bytes.subarray(0, n)
  let at = 0
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= sent.length) return how === 'cut' ? c.error(new Error('connection reset by peer')) : c.close()
      c.enqueue(sent.slice(at, at + MiB))
      at += MiB
    },
  })
}

type Alg = 'sha256' | 'sha512'
const digestOf = (alg: Alg, bytes: Uint8Array) => (alg === 'sha256' ? sha256(bytes) : sha512(bytes))

/** A session, with `before` bytes sent first: its Location ("parts": one PATCH of unknown length through parts; "tail": one PATCH with Content-Range). */
async function session(repo: string, alg: Alg, before: 'none' | 'parts' | 'tail'): Promise<{ location: string; sent: Uint8Array }> {
  const post = await call(`/v2/${repo}/blobs/uploads/${alg === 'sha512' ? '?digest-algorithm=sha512' : ''}`, { method: 'POST' })
  expect(post.status).toBe(202)
  const location = post.headers.get('location')!
  if (before === 'none') return { location, sent: new Uint8Array(0) }
  const sent = randomBlob(before === 'parts' ? PART_SIZE + 20_000 : 5000)
  const init: RequestInit = before === 'parts'
    ? { method: 'PATCH', body: streamOf(sent), duplex: 'half' } as RequestInit
    : { method: 'PATCH', body: sent, headers: { 'Content-Range': `0-${sent.length - 1}` } }
  const res = await call(location, init)
  expect(res.status).toBe(202)
  return { location: res.headers.get('location')!, sent }
}

interface Path {
  before: 'none' | 'parts' | 'tail'
  method: 'PATCH' | 'PUT' | 'POST'
  size: number
  /** Content-Length (and Content-Range) sent; else the body's length is unknown. */
  known: boolean
  /** Where a cut-off or short body ends. */
  at: number
}

const paths: [string, Path][] = [
  ['a first PATCH with Content-Length', { before: 'none', method: 'PATCH', size: 5000, known: true, at: 2000 }],
  ['a first PATCH with Content-Range over 8 MiB, through parts', { before: 'none', method: 'PATCH', size: BUFFER_LIMIT + 3 * MiB, known: true, at: PART_SIZE + MiB / 2 }],
  ['a first PATCH of unknown length, through parts', { before: 'none', method: 'PATCH', size: PART_SIZE + 3 * MiB, known: false, at: PART_SIZE + MiB }],
  ['a later PATCH that folds into parts', { before: 'parts', method: 'PATCH', size: PART_SIZE, known: true, at: 3 * MiB }],
  ['a later PATCH written as a piece', { before: 'parts', method: 'PATCH', size: 5000, known: true, at: 2000 }],
  ['a later PATCH of unknown length, within the probe', { before: 'parts', method: 'PATCH', size: 5000, known: false, at: 2000 }],
  ['a later PATCH of unknown length, past the probe', { before: 'parts', method: 'PATCH', size: 4 * MiB, known: false, at: 3 * MiB }],
  ['a later PATCH after a small tail, folding it', { before: 'tail', method: 'PATCH', size: PART_SIZE, known: true, at: PART_SIZE - MiB }],
  ['a PUT with the last chunk', { before: 'parts', method: 'PUT', size: 5000, known: true, at: 2000 }],
  ['a PUT with the whole body', { before: 'none', method: 'PUT', size: 3 * MiB, known: true, at: 2 * MiB }],
  ['a monolithic POST', { before: 'none', method: 'POST', size: 3 * MiB, known: true, at: 2 * MiB }],
]

const cases = paths.flatMap(([name, path]) =>
  (['sha256', 'sha512'] as const).flatMap((alg) =>
    (path.known ? ['cut', 'short', 'long'] as const : ['cut'] as const).map((how) => [name, how, alg, path] as const)))

describe('a bad body on every path', () => {
  it.each(cases)('%s, %s, %s: 400, nothing served, the session where it was; sent whole, it is stored', async (_name, how, alg, path) => {
    const repo = repoName('bad-bodies')
    const { location, sent } = await session(repo, alg, path.before)
    const bytes = randomBlob(path.size)
    const whole = new Uint8Array([...sent, ...bytes])
    const digest = await digestOf(alg, whole)
    const target = path.method === 'POST' ? `/v2/${repo}/blobs/uploads/?digest=${digest}` : path.method === 'PUT' ? withDigest(location, digest) : location
    const headers = (): Record<string, string> => (path.known
      ? { 'Content-Length': String(path.size), ...(path.method === 'PATCH' ? { 'Content-Range': `${sent.length}-${sent.length + path.size - 1}` } : {}) }
      : {})
    // straight to the router: through the test service binding a failing body reads as a clean end
    const res = await callWith({}, target, { method: path.method, body: badStream(bytes, how, path.at, randomBlob(1000)), headers: headers(), duplex: 'half' } as RequestInit)
    expect(res.status).toBe(400)
    expect(['BLOB_UPLOAD_INVALID', 'SIZE_INVALID', 'DIGEST_INVALID']).toContain(await errorCode(res))
    expect((await call(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    if (path.method === 'POST') {
      expect((await call(target, { method: 'POST', body: bytes, headers: headers() })).status).toBe(201)
    } else {
      const status = await call(location)
      expect(status.status).toBe(204)
      expect(status.headers.get('range')).toBe(`0-${Math.max(0, sent.length - 1)}`)
      const again = await call(target, { method: path.method, body: bytes, headers: headers() })
      expect(again.status).toBe(path.method === 'PUT' ? 201 : 202)
      if (path.method === 'PATCH') expect((await call(withDigest(again.headers.get('location')!, digest), { method: 'PUT' })).status).toBe(201)
    }
    const served = await call(`/v2/${repo}/blobs/${digest}`)
    expect(served.status).toBe(200)
    expect(await digestOf(alg, await bytesOf(served))).toBe(digest)
  })
})

describe('a wrong digest on every close, either algorithm', () => {
  it.each([
    ['a PUT with the whole body', 'none', true],
    ['a PUT with the last chunk', 'parts', true],
    ['a PUT after one PATCH in parts', 'parts', false],
    ['a PUT after one small PATCH', 'tail', false],
  ] as const)('%s: 400 DIGEST_INVALID, nothing served', async (_name, before, withBody) => {
    for (const alg of ['sha256', 'sha512'] as const) {
      for (const other of ['sha256', 'sha512'] as const) {
        const repo = repoName('bad-digest')
        const { location, sent } = await session(repo, alg, before)
        const bytes = withBody ? randomBlob(30_000) : new Uint8Array(0)
        const wrong = await digestOf(other, randomBlob(100))
        const res = await call(withDigest(location, wrong), withBody ? { method: 'PUT', body: bytes } : { method: 'PUT' })
        expect(res.status, `${alg} session, ${other} digest`).toBe(400)
        expect(await errorCode(res)).toBe('DIGEST_INVALID')
        for (const digest of [wrong, await digestOf(other, new Uint8Array([...sent, ...bytes]))]) {
          expect((await call(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
        }
      }
    }
  })

  it('a monolithic POST, either algorithm: 400 DIGEST_INVALID', async () => {
    for (const alg of ['sha256', 'sha512'] as const) {
      const repo = repoName('bad-digest')
      const wrong = await digestOf(alg, randomBlob(100))
      const res = await call(`/v2/${repo}/blobs/uploads/?digest=${wrong}`, { method: 'POST', body: randomBlob(30_000) })
      expect(res.status).toBe(400)
      expect(await errorCode(res)).toBe('DIGEST_INVALID')
    }
  })
})
