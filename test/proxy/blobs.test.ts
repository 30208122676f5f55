/** Blobs through the pull-through cache (src/proxy/blobs.ts), against a fake upstream. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Digest, Repo } from '../../src/names'
import { headBlob } from '../../src/storage/blobs'
import { keys } from '../../src/storage/keys'
import { bindings, MiB, pushBlob, randomBlob, repoName, sha256 } from '../helpers'
import { authEnv } from '../auth/setup'
import { FakeUpstream, get, privateUpstream, twoEntries, UPSTREAM, upstreams } from './fake-upstream'
import { gc, gcEnv } from '../gc/setup'

let up: FakeUpstream
beforeEach(() => {
  up = new FakeUpstream().install()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const cached = upstreams({ prefix: 'cache', url: UPSTREAM })
const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b))
const blobGets = () => up.count('GET', /\/blobs\//)

async function upstreamBlob(size = 10_000) {
  const remote = repoName('app')
  const img = await up.image(remote, null, [randomBlob(size)])
  const digest = img.layers[0]! as Digest
  return { remote, digest, bytes: up.blobs.get(digest)!, path: `/v2/cache/${remote}/blobs/${digest}` }
}

/** The digest of bytes: vitest's element-wise toEqual takes seconds per MiB inside workerd. */
const digestOf = (b: Uint8Array) => sha256(b)
const storedDigest = async (digest: string) => {
  const o = await bindings.BLOBS.get(keys.blob(digest as Digest))
  return o ? sha256(new Uint8Array(await o.arrayBuffer())) : null
}

const linked = async (remote: string, digest: string) => bindings.LINKS.get(keys.blobLink(`cache/${remote}` as Repo, digest as Digest))

describe('a blob miss', () => {
  it('streams the upstream\'s bytes to the client and stores them once, verified, linked into the proxied repository', async () => {
    const { remote, digest, bytes, path } = await upstreamBlob(3 * MiB + 17)
    const { res, body, error } = await get(cached, path)
    expect(error).toBeNull()
    expect(res.status).toBe(200)
    expect(res.headers.get('Content-Length')).toBe(String(bytes.byteLength))
    expect(res.headers.get('Docker-Content-Digest')).toBe(digest)
    expect(body.byteLength).toBe(bytes.byteLength)
    expect(await digestOf(body)).toBe(digest)
    expect(await storedDigest(digest)).toBe(digest)
    expect(JSON.parse((await linked(remote, digest))!)).toEqual({ at: keys.blob(digest), size: bytes.byteLength })
  })

  it('is served from R2 afterwards, Range and HEAD included, without asking the upstream', async () => {
    const { bytes, path } = await upstreamBlob()
    await get(cached, path)
    up.fault = { match: /./, fault: { kind: 'down' } }
    const again = await get(cached, path)
    expect(again.body).toEqual(bytes)
    const ranged = await get(cached, path, { headers: { Range: 'bytes=10-19' } })
    expect(ranged.res.status).toBe(206)
    expect(ranged.body).toEqual(bytes.slice(10, 20))
    const head = await get(cached, path, { method: 'HEAD' })
    expect(head.res.headers.get('Content-Length')).toBe(String(bytes.byteLength))
    expect(blobGets()).toBe(1)
  })


  it('HEAD asks the upstream for the size and stores nothing', async () => {
    const { remote, digest, bytes, path } = await upstreamBlob()
    const { res } = await get(cached, path, { method: 'HEAD' })
    expect(res.status).toBe(200)
    expect(res.headers.get('Content-Length')).toBe(String(bytes.byteLength))
    expect(await headBlob(bindings, digest)).toBeNull()
    expect(await linked(remote, digest)).toBeNull()
  })

  it('a ranged GET stores the whole blob first, then serves the range', async () => {
    const { digest, bytes, path } = await upstreamBlob()
    const { res, body } = await get(cached, path, { headers: { Range: 'bytes=100-' } })
    expect(res.status).toBe(206)
    expect(body).toEqual(bytes.slice(100))
    expect(await headBlob(bindings, digest)).not.toBeNull()
  })

  it('follows the upstream\'s redirect to its CDN without sending our credentials there', async () => {
    up.auth = 'token'
    up.redirectBlobs = true
    const { bytes, path } = await upstreamBlob()
    const { res, body } = await get(cached, path)
    expect(res.status).toBe(200)
    expect(body).toEqual(bytes)
    const cdn = up.seen.filter((s) => s.url.startsWith('https://cdn.upstream.test/'))
    expect(cdn).toHaveLength(1)
    expect(cdn[0]!.authorization).toBeNull()
  })

  it('is BLOB_UNKNOWN when the upstream does not have it', async () => {
    const { res, body } = await get(cached, `/v2/cache/${repoName('app')}/blobs/sha256:${'1'.repeat(64)}`)
    expect(res.status).toBe(404)
    expect(json(body).errors[0].code).toBe('BLOB_UNKNOWN')
  })

  it('passes a 429 on with Retry-After when nothing is cached', async () => {
    const { path } = await upstreamBlob()
    up.fault = { match: /\/blobs\//, fault: { kind: 'status', status: 429, headers: { 'Retry-After': '30' } } }
    const { res, body } = await get(cached, path)
    expect(res.status).toBe(429)
    expect(res.headers.get('Retry-After')).toBe('30')
    expect(json(body).errors[0].code).toBe('TOOMANYREQUESTS')
  })
})

describe('a blob the registry already holds (a repository sees a blob only through a link it earned)', () => {
  it('a private local blob is not readable by digest through a proxied namespace whose upstream does not serve it', async () => {
    const bytes = randomBlob(5000)
    const digest = await pushBlob(repoName('local'), bytes)
    const remote = repoName('any')
    for (const method of ['GET', 'HEAD']) {
      const { res, body } = await get(cached, `/v2/cache/${remote}/blobs/${digest}`, { method })
      expect(res.status, method).toBe(404)
      if (method === 'GET') expect(json(body).errors[0].code).toBe('BLOB_UNKNOWN')
    }
    expect(await linked(remote, digest)).toBeNull()
    expect(up.count('GET', /\/blobs\//)).toBe(0)
  })

  it('nor when anyone may pull the proxied namespace and only its owner the local repository', async () => {
    const settings = { ...(await authEnv()), ...cached, AUTH_RULES: JSON.stringify([
      { repos: 'cache/*', anonymous: ['pull'] },
      { repos: 'team-a/*', users: ['paul'], actions: ['pull', 'push'] },
    ]) }
    const bytes = randomBlob(5000)
    const digest = await pushBlob(repoName('team-a'), bytes)
    const { res, body } = await get(settings, `/v2/cache/${repoName('any')}/blobs/${digest}`)
    expect(res.status).toBe(404)
    expect(body.byteLength).toBeLessThan(1000)
  })

  it('is linked once one upstream HEAD confirms its digest and size in that repository, without fetching the bytes again', async () => {
    const { remote, digest, bytes, path } = await upstreamBlob(5000)
    await pushBlob(repoName('local'), bytes)
    const { res, body } = await get(cached, path)
    expect(res.status).toBe(200)
    expect(await digestOf(body)).toBe(digest)
    expect(up.seen.map((s) => `${s.method} ${s.path}`)).toEqual([`HEAD /v2/${remote}/blobs/${digest}`])
    expect(await linked(remote, digest)).not.toBeNull()
    // Linked: served like any blob of the repository afterwards.
    up.fault = { match: /./, fault: { kind: 'down' } }
    expect((await get(cached, path)).res.status).toBe(200)
  })

  it('an upstream HEAD answering another size links nothing: 502', async () => {
    const { remote, digest, bytes, path } = await upstreamBlob(5000)
    await pushBlob(repoName('local'), bytes)
    up.fault = { match: /\/blobs\//, fault: { kind: 'wrong-size' } }
    const { res } = await get(cached, path)
    expect(res.status).toBe(502)
    expect(await linked(remote, digest)).toBeNull()
  })

  it('the upstream down: not linked, 502 (the registry holding the bytes proves nothing)', async () => {
    const { remote, digest, bytes, path } = await upstreamBlob(5000)
    await pushBlob(repoName('local'), bytes)
    up.fault = { match: /./, fault: { kind: 'down' } }
    expect((await get(cached, path)).res.status).toBe(502)
    expect(await linked(remote, digest)).toBeNull()
  })

  it('a blob cached through one upstream entry is not readable through another entry of the same upstream that may not pull it', async () => {
    privateUpstream(up)
    const both = twoEntries()
    const secret = repoName('team-a')
    const img = await up.image(secret, null, [randomBlob(4000)])
    const layer = img.layers[0]!
    expect((await get(both, `/v2/tk/${secret}/blobs/${layer}`)).res.status).toBe(200)
    expect((await get(both, `/v2/anon/${secret}/blobs/${layer}`)).res.status).toBe(502)   // the upstream refuses anon there
    const open = repoName('public')
    await up.image(open, 'v1')
    expect((await get(both, `/v2/anon/${open}/blobs/${layer}`)).res.status).toBe(404)   // not in that repository upstream
    expect((await get(both, `/v2/tk/${open}/blobs/${layer}`)).res.status).toBe(404)     // nor for tk
  })
})

describe('bad bytes from the upstream', () => {
  it.each([
    ['corrupted (same length, wrong digest)', 'corrupt'],
    ['truncated (shorter than its Content-Length)', 'truncate'],
    ['cut off (the connection fails mid-body)', 'cut'],
  ] as const)('%s: the client\'s reply fails and nothing is stored or linked', async (_name, kind) => {
    const { remote, digest, bytes, path } = await upstreamBlob(2 * MiB)
    up.fault = { match: /\/blobs\//, fault: { kind } }
    const { body, error } = await get(cached, path)
    expect(error ?? (body.byteLength < bytes.byteLength ? 'short' : null)).not.toBeNull()
    expect(await digestOf(body)).not.toBe(digest)
    expect(await bindings.BLOBS.head(keys.blob(digest))).toBeNull()
    expect(await linked(remote, digest)).toBeNull()
    up.fault = null
    const again = await get(cached, path)
    expect(await digestOf(again.body)).toBe(digest)
  })
})

describe('concurrent misses of one blob', () => {
  it('all get the right bytes and leave one verified object', async () => {
    const { remote, digest, bytes, path } = await upstreamBlob(2 * MiB)
    const pulls = await Promise.all(Array.from({ length: 4 }, () => get(cached, path)))
    for (const p of pulls) {
      expect(p.error).toBeNull()
      expect(await digestOf(p.body)).toBe(digest)
    }
    expect(await storedDigest(digest)).toBe(digest)
    expect(await linked(remote, digest)).not.toBeNull()
  })

  it('a pull racing a push of the same blob keeps the pushed object', async () => {
    const { digest, bytes, path } = await upstreamBlob(2 * MiB)
    const [pull] = await Promise.all([get(cached, path), pushBlob(repoName('local'), bytes)])
    expect(await digestOf(pull.body)).toBe(digest)
    expect(await storedDigest(digest)).toBe(digest)
  })
})

describe('after the collector', () => {
  it('a cached blob the collector swept (its index a tombstone) is fetched and stored again by the next pull', async () => {
    const { remote, digest, bytes, path } = await upstreamBlob(20_000)
    // Settle time 0 here: no location may keep the swept link (production settles past LINK_CACHE_SECONDS).
    const env = { ...cached, LINK_CACHE_SECONDS: '0' }
    expect((await get(env, path)).res.status).toBe(200)
    // No manifest names the blob and the grace period is 0: the run sweeps its link and bytes.
    const report = await gc(gcEnv(env), {})
    expect(report.totals.blobs).toBeGreaterThanOrEqual(1)
    expect((await bindings.BLOBS.head(keys.blob(digest)))?.customMetadata?.gone).toBeDefined()
    expect(await linked(remote, digest)).toBeNull()

    const again = await get(env, path)
    expect(again.error).toBeNull()
    expect(again.res.status).toBe(200)
    expect(await digestOf(again.body)).toBe(digest)
    expect(again.body.byteLength).toBe(bytes.byteLength)
    expect(await headBlob(bindings, digest)).not.toBeNull()
    expect(await storedDigest(digest)).toBe(digest)
    expect(await linked(remote, digest)).not.toBeNull()
    // And served from R2 afterwards.
    up.fault = { match: /./, fault: { kind: 'down' } }
    expect(await digestOf((await get(env, path)).body)).toBe(digest)
  })
})
