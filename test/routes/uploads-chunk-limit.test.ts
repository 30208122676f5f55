/**
 * MAX_CHUNK_BYTES (issues 10, 18): the POST that opens a session advertises it as
 * OCI-Chunk-Max-Length, and a PATCH or PUT body over it answers 413 with a message that
 * says the limit and how to push big layers, leaving the session where it was. The code is
 * DENIED, which docker and podman take as final (they do not send the layer again).
 */
import { describe, expect, it } from 'vitest'
import type { Env } from '../../src/env'
import { settings } from '../../src/settings'
import { DEFAULT_MAX_CHUNK_BYTES } from '../../src/settings/uploads'
import { bytesOf, callWith, MiB, randomBlob, repoName, sha256, streamOf, withDigest } from '../helpers'

const limit: Partial<Env> = { MAX_CHUNK_BYTES: String(2 * MiB) }
const via = (path: string, init?: RequestInit) => callWith(limit, path, init)

async function open(repo: string): Promise<string> {
  const res = await via(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  expect(res.status).toBe(202)
  return res.headers.get('Location')!
}

/** Asserts a 413 DENIED whose message names the limit and the push tool. */
async function expectTooLarge(res: Response, what: string): Promise<void> {
  expect(res.status, what).toBe(413)
  expect(res.headers.get('OCI-Chunk-Max-Length'), what).toBe(String(2 * MiB))
  const body = JSON.parse(new TextDecoder().decode(await bytesOf(res))) as { errors: { code: string; message: string; detail: { limit: number } }[] }
  const [error] = body.errors
  expect(error!.code, what).toBe('DENIED')
  expect(error!.message, what).toContain(String(2 * MiB))
  expect(error!.message, what).toContain('npx edge-registry push')
  expect(error!.detail.limit, what).toBe(2 * MiB)
}

async function expectAt(location: string, received: number): Promise<void> {
  const res = await via(location)
  expect(res.status).toBe(204)
  expect(res.headers.get('Range')).toBe(`0-${Math.max(0, received - 1)}`)
}

describe('chunk size limit (MAX_CHUNK_BYTES)', () => {
  it('advertises the limit on the POST that opens a session (OCI-Chunk-Max-Length), 90 MiB by default', async () => {
    const byDefault = await callWith({}, `/v2/${repoName('limit')}/blobs/uploads/`, { method: 'POST' })
    expect(byDefault.status).toBe(202)
    expect(byDefault.headers.get('OCI-Chunk-Max-Length')).toBe(String(DEFAULT_MAX_CHUNK_BYTES))
    expect(DEFAULT_MAX_CHUNK_BYTES).toBe(90 * MiB)
    const set = await via(`/v2/${repoName('limit')}/blobs/uploads/`, { method: 'POST' })
    expect(set.headers.get('OCI-Chunk-Max-Length')).toBe(String(2 * MiB))
  })

  it('answers 413 to a PATCH whose Content-Length is over the limit; the session carries on from where it was', async () => {
    const repo = repoName('limit')
    const bytes = randomBlob(3 * MiB)
    const first = await via(await open(repo), { method: 'PATCH', body: bytes.subarray(0, MiB), headers: { 'Content-Range': `0-${MiB - 1}` } })
    expect(first.status).toBe(202)
    const location = first.headers.get('Location')!
    const rest = bytes.subarray(MiB)
    await expectTooLarge(await via(location, { method: 'PATCH', body: randomBlob(2 * MiB + 1), headers: { 'Content-Length': String(2 * MiB + 1) } }), 'PATCH')
    await expectAt(location, MiB)
    const next = await via(location, { method: 'PATCH', body: rest, headers: { 'Content-Range': `${MiB}-${3 * MiB - 1}` } })
    expect(next.status).toBe(202)
    const put = await via(withDigest(next.headers.get('Location')!, await sha256(bytes)), { method: 'PUT' })
    expect(put.status).toBe(201)
  })

  it('answers a declared length over the limit without waiting for the body, and stops taking it', async () => {
    const repo = repoName('limit')
    let pulled = 0
    let cancelled = false
    // A client that declares 3 MiB, then sends nothing more.
    const stalled = new ReadableStream<Uint8Array>({
      pull: () => {
        pulled++
        return new Promise(() => {})
      },
      cancel: () => {
        cancelled = true
      },
    }, { highWaterMark: 0 })
    const init = { method: 'PATCH', body: stalled, headers: { 'Content-Length': String(3 * MiB) }, duplex: 'half' }
    await expectTooLarge(await via(await open(repo), init as RequestInit), 'stalled PATCH')
    expect(pulled).toBe(0)
    // wrangler dev reads an unread request body to its end before the answer leaves; a
    // cancelled one it leaves alone, so the 413 reaches a stalled client at once.
    expect(cancelled).toBe(true)
  })

  it('answers 413 to a chunked PATCH (no Content-Length) once it passes the limit; the session carries on', async () => {
    const repo = repoName('limit')
    const bytes = randomBlob(3 * MiB + 5)
    const first = await via(await open(repo), { method: 'PATCH', body: streamOf(bytes.subarray(0, MiB + 5)) })
    expect(first.status).toBe(202)
    const location = first.headers.get('Location')!
    await expectTooLarge(await via(location, { method: 'PATCH', body: streamOf(randomBlob(5 * MiB), 64 * 1024) }), 'chunked PATCH')
    await expectAt(location, MiB + 5)
    const next = await via(location, { method: 'PATCH', body: streamOf(bytes.subarray(MiB + 5)) })
    expect(next.status).toBe(202)
    const put = await via(withDigest(next.headers.get('Location')!, await sha256(bytes)), { method: 'PUT' })
    expect(put.status).toBe(201)
    const pulled = await bytesOf(await via(`/v2/${repo}/blobs/${await sha256(bytes)}`))
    expect(await sha256(pulled)).toBe(await sha256(bytes))
  })

  it('answers 413 to a PUT body over the limit, declared or chunked, and to a monolithic POST', async () => {
    const repo = repoName('limit')
    const big = randomBlob(2 * MiB + 1)
    const digest = await sha256(big)
    await expectTooLarge(await via(withDigest(await open(repo), digest), { method: 'PUT', body: big, headers: { 'Content-Length': String(big.length) } }), 'PUT')
    await expectTooLarge(await via(withDigest(await open(repo), digest), { method: 'PUT', body: streamOf(big) }), 'chunked PUT')
    await expectTooLarge(await via(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: big, headers: { 'Content-Length': String(big.length) } }), 'POST')
    expect((await via(`/v2/${repo}/blobs/${digest}`)).status).toBe(404)
    // exactly at the limit is fine
    const fits = big.subarray(0, 2 * MiB)
    const put = await via(withDigest(await open(repo), await sha256(fits)), { method: 'PUT', body: fits, headers: { 'Content-Length': String(fits.length) } })
    expect(put.status).toBe(201)
  })

  it('fails closed on a malformed setting, naming it', () => {
    for (const bad of ['abc', '-5', '1.5', '1000']) {
      expect(() => settings({ MAX_CHUNK_BYTES: bad } as Env), bad).toThrow(/MAX_CHUNK_BYTES/)
    }
    expect(settings({ MAX_CHUNK_BYTES: '52428800' } as Env).MAX_CHUNK_BYTES).toBe(50 * 1024 * 1024)
  })
})
