/**
 * The hash a session keeps in the isolate between its requests (src/upload/kept.ts), attacked as
 * a hostile tenant would: replays, races at one offset, requests that fail after taking it, the
 * other algorithm, eviction. Whatever happens, a blob is indexed only under the digest of the
 * bytes stored, and the session's true bytes close under their own digest.
 */
import { describe, expect, it } from 'vitest'
import type { Env } from '../../src/env'
import { PART_SIZE } from '../../src/upload/session'
import { expectServed } from '../faulty-bucket'
import { bindings, callWith, cutOffStream, errorCode, MiB, randomBlob, repoName, sha256, startUpload, withDigest } from '../helpers'

const ranged = (method: string, bytes: Uint8Array, from: number): RequestInit => ({
  method, body: bytes, headers: { 'Content-Length': String(bytes.length), 'Content-Range': `${from}-${from + bytes.length - 1}` },
})
const join = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) (out.set(p, at), (at += p.length))
  return out
}

/** The bucket, its part uploads held until `open()`; `landed` once every held one is in. */
function heldParts(): { BLOBS: R2Bucket; open(): void; landed(): Promise<unknown>; held: number } {
  let go!: () => void
  const gate = new Promise<void>((r) => (go = r))
  const uploads: Promise<unknown>[] = []
  const out = {
    held: 0,
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
            if (n !== 'uploadPart') return typeof Reflect.get(t, n) === 'function' ? (Reflect.get(t, n) as Function).bind(t) : Reflect.get(t, n)
            return (part: number, bytes: Uint8Array) => {
              out.held++
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
