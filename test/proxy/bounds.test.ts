/**
 * What an upstream's answer may cost (issue 20 for the proxy): a manifest, a tag list, referrers
 * or a token is read no further than its limit, with or without a Content-Length, and JSON
 * nested past the limit is refused before it is parsed. The upstream is not trusted with the
 * isolate's memory: it may be hostile, compromised, or a man in the middle of an http:// one.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { repoName } from '../helpers'
import { FakeUpstream, get, REALM, UPSTREAM, upstreams } from './fake-upstream'

const MiB = 1024 * 1024
const hub = (extra: Record<string, unknown> = {}) => upstreams({ prefix: 'hub', url: UPSTREAM, tagTtlSeconds: 0, ...extra })
const errors = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)).errors as { code: string; detail: { upstream: string } }[]

/** A body of 32 MiB (no Content-Length) of `byte`, 1 MiB a read; `pulled` counts what was read of it. */
function endless(byte: number, headers: Record<string, string> = {}) {
  const counter = { pulled: 0 }
  const chunk = new Uint8Array(MiB).fill(byte)
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (counter.pulled >= 32 * MiB) return c.close()
      counter.pulled += chunk.byteLength
      c.enqueue(chunk)
    },
  })
  return { counter, response: new Response(body, { headers }) }
}

let up: FakeUpstream
let answer: ((url: URL) => Response | null) | null
beforeEach(() => {
  up = new FakeUpstream().install()
  answer = null
  // The fake answers, unless a test's `answer` takes the request over.
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const req = new Request(input as RequestInfo, init)
    return answer?.(new URL(req.url)) ?? up.fetch(req)
  })
})
afterEach(() => {
  vi.restoreAllMocks()
})

describe('an upstream answer is read no further than its limit', () => {
  it('a manifest streamed without a Content-Length: 502 once it passes MANIFEST_MAX_BYTES, the rest unread', async () => {
    const remote = repoName('org')
    const { counter, response } = endless(0x20, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' })
    answer = (url) => (url.pathname === `/v2/${remote}/manifests/v1` ? response : null)
    const { res, body } = await get(hub(), `/v2/hub/${remote}/manifests/v1`)
    expect(res.status).toBe(502)
    expect(errors(body)[0]!.detail.upstream).toMatch(/larger than 4194304 bytes/)
    expect(counter.pulled).toBeLessThanOrEqual(4 * MiB + 2 * MiB)
  })

  it('a tag list streamed without a Content-Length: not read past 4 MiB (the cached tags answer instead)', async () => {
    const remote = repoName('org')
    const { counter, response } = endless(0x20, { 'Content-Type': 'application/json' })
    answer = (url) => (url.pathname === `/v2/${remote}/tags/list` ? response : null)
    const { res } = await get(hub(), `/v2/hub/${remote}/tags/list`)
    expect(res.status).toBe(404)
    expect(counter.pulled).toBeLessThanOrEqual(4 * MiB + 2 * MiB)
  })

  it('a token server streaming an endless answer: 502, read no further than 64 KiB and a chunk', async () => {
    up.auth = 'token'
    const remote = repoName('org')
    await up.image(remote, 'v1')
    const { counter, response } = endless(0x20, { 'Content-Type': 'application/json' })
    answer = (url) => (url.href.startsWith(REALM) ? response : null)
    const { res, body } = await get(hub(), `/v2/hub/${remote}/manifests/v1`)
    expect(res.status).toBe(502)
    expect(errors(body)[0]!.detail.upstream).toMatch(/not a token/)
    expect(counter.pulled).toBeLessThanOrEqual(2 * MiB)
  })
})

describe('JSON from the upstream is bounded before it is parsed', () => {
  const deep = (n: number) => `{"tags":${'['.repeat(n)}${']'.repeat(n)}}`
  const parsed = () => parse.mock.calls.filter(([text]: unknown[]) => typeof text === 'string' && text.includes('[[[[[[[[')).length
  let parse: ReturnType<typeof vi.spyOn>
  beforeEach(() => {
    parse = vi.spyOn(JSON, 'parse')
  })

  it('a tag list nested 1,000,000 deep is refused unparsed (the cached tags answer instead)', async () => {
    const remote = repoName('org')
    answer = (url) => (url.pathname === `/v2/${remote}/tags/list` ? new Response(deep(1_000_000), { headers: { 'Content-Type': 'application/json' } }) : null)
    const { res } = await get(hub(), `/v2/hub/${remote}/tags/list`)
    expect(res.status).toBe(404)
    expect(parsed()).toBe(0)
  })

  it('referrers nested 1,000,000 deep: refused unparsed (the local, empty, index answers instead)', async () => {
    const remote = repoName('org')
    const subject = `sha256:${'a'.repeat(64)}`
    const doc = `{"schemaVersion":2,"manifests":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`
    answer = (url) => (url.pathname === `/v2/${remote}/referrers/${subject}` ? new Response(doc, { headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' } }) : null)
    const { res, body } = await get(hub(), `/v2/hub/${remote}/referrers/${subject}`)
    expect(res.status).toBe(200)
    expect(JSON.parse(new TextDecoder().decode(body)).manifests).toEqual([])
    expect(parsed()).toBe(0)
  })

  it('a long flat tag list (200,000 tags, a few MiB) is still served', async () => {
    const remote = repoName('org')
    const tags = Array.from({ length: 200_000 }, (_, i) => `t${i}`)
    answer = (url) => (url.pathname === `/v2/${remote}/tags/list` ? Response.json({ name: remote, tags }) : null)
    const { res, body } = await get(hub(), `/v2/hub/${remote}/tags/list`)
    expect(res.status).toBe(200)
    expect(JSON.parse(new TextDecoder().decode(body)).tags).toHaveLength(200_000)
  })
})
