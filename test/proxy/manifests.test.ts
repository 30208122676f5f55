/** Manifests through the pull-through cache (src/proxy/manifests.ts), against a fake upstream. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Digest, Repo, Tag } from '../../src/names'
import { getManifest } from '../../src/storage/manifests'
import { readTag } from '../../src/storage/tags'
import { bindings, repoName } from '../helpers'
import { FakeUpstream, get, OCI_INDEX, OCI_MANIFEST, UPSTREAM, upstreams } from './fake-upstream'
import { pushImage } from '../gc/setup'

let up: FakeUpstream
beforeEach(() => {
  up = new FakeUpstream().install()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const cached = (ttl = 300) => upstreams({ prefix: 'cache', url: UPSTREAM, tagTtlSeconds: ttl })
const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b))
const manifestGets = () => up.count('GET', /\/manifests\//)

describe('a tag through the cache', () => {
  it('is fetched once from the upstream, stored, and served from the cache within the TTL', async () => {
    const remote = repoName('app')
    const img = await up.image(remote, 'v1')
    for (let i = 0; i < 10; i++) {
      const { res, body } = await get(cached(), `/v2/cache/${remote}/manifests/v1`)
      expect(res.status).toBe(200)
      expect(res.headers.get('Docker-Content-Digest')).toBe(img.digest)
      expect(res.headers.get('Content-Type')).toBe(OCI_MANIFEST)
      expect(body).toEqual(img.bytes)
    }
    expect(manifestGets()).toBe(1)
    expect(up.count('HEAD', /\/manifests\//)).toBe(0)
    const local = `cache/${remote}` as Repo
    expect((await getManifest(bindings, local, img.digest as Digest))?.mediaType).toBe(OCI_MANIFEST)
  })

  it('records the tag with `pushed` = when the upstream last confirmed it', async () => {
    const remote = repoName('app')
    await up.image(remote, 'v1')
    const before = Date.now()
    await get(cached(), `/v2/cache/${remote}/manifests/v1`)
    const record = await readTag(bindings, `cache/${remote}` as Repo, 'v1' as Tag)
    expect(record?.pushed).toBeGreaterThanOrEqual(before)
    expect(record?.size).toBeGreaterThan(0)
  })

  it('after the TTL asks with HEAD and does not fetch again when the digest is unchanged', async () => {
    const remote = repoName('app')
    const img = await up.image(remote, 'v1')
    await get(cached(0), `/v2/cache/${remote}/manifests/v1`)
    const { res, body } = await get(cached(0), `/v2/cache/${remote}/manifests/v1`)
    expect(res.status).toBe(200)
    expect(body).toEqual(img.bytes)
    expect(manifestGets()).toBe(1)
    expect(up.count('HEAD', /\/manifests\/v1$/)).toBe(1)
  })

  it('sees a tag moved upstream after the TTL, fetching the new manifest by digest', async () => {
    const remote = repoName('app')
    await up.image(remote, 'v1')
    await get(cached(0), `/v2/cache/${remote}/manifests/v1`)
    const moved = await up.image(remote, 'v1')
    const { res, body } = await get(cached(0), `/v2/cache/${remote}/manifests/v1`)
    expect(res.headers.get('Docker-Content-Digest')).toBe(moved.digest)
    expect(body).toEqual(moved.bytes)
    expect(up.count('GET', new RegExp(`/manifests/${moved.digest}$`))).toBe(1)
  })

  it('keeps serving the old target within the TTL after the tag moved upstream', async () => {
    const remote = repoName('app')
    const first = await up.image(remote, 'v1')
    await get(cached(300), `/v2/cache/${remote}/manifests/v1`)
    await up.image(remote, 'v1')
    const { res } = await get(cached(300), `/v2/cache/${remote}/manifests/v1`)
    expect(res.headers.get('Docker-Content-Digest')).toBe(first.digest)
  })

  it('answers HEAD with the digest and length, from the cache afterwards', async () => {
    const remote = repoName('app')
    const img = await up.image(remote, 'v1')
    const { res } = await get(cached(), `/v2/cache/${remote}/manifests/v1`, { method: 'HEAD' })
    expect(res.status).toBe(200)
    expect(res.headers.get('Docker-Content-Digest')).toBe(img.digest)
    expect(res.headers.get('Content-Length')).toBe(String(img.bytes.byteLength))
    await get(cached(), `/v2/cache/${remote}/manifests/v1`)
    expect(up.seen.filter((s) => s.path.includes('/manifests/')).length).toBe(1)
  })

  it('is MANIFEST_UNKNOWN when the upstream does not know the tag', async () => {
    const { res, body } = await get(cached(), `/v2/cache/${repoName('app')}/manifests/nope`)
    expect(res.status).toBe(404)
    expect(json(body).errors[0].code).toBe('MANIFEST_UNKNOWN')
  })
})

describe('the upstream failing', () => {
  it.each([
    ['rate limiting (429)', { kind: 'status', status: 429, headers: { 'Retry-After': '42' } }],
    ['erroring (503)', { kind: 'status', status: 503 }],
    ['down', { kind: 'down' }],
  ] as const)('%s: the cached tag is served stale with a Warning', async (_name, fault) => {
    const remote = repoName('app')
    const img = await up.image(remote, 'v1')
    await get(cached(0), `/v2/cache/${remote}/manifests/v1`)
    up.fault = { match: /\/manifests\//, fault }
    const { res, body } = await get(cached(0), `/v2/cache/${remote}/manifests/v1`)
    expect(res.status).toBe(200)
    expect(body).toEqual(img.bytes)
    expect(res.headers.get('Warning')).toMatch(/^110 - "Response is Stale/)
  })

  it('429 with nothing cached: TOOMANYREQUESTS with the upstream\'s Retry-After', async () => {
    up.fault = { match: /\/manifests\//, fault: { kind: 'status', status: 429, headers: { 'Retry-After': '42' } } }
    const { res, body } = await get(cached(), `/v2/cache/${repoName('app')}/manifests/v1`)
    expect(res.status).toBe(429)
    expect(res.headers.get('Retry-After')).toBe('42')
    expect(json(body).errors[0].code).toBe('TOOMANYREQUESTS')
  })

  it('5xx with nothing cached: the upstream\'s status in OCI error JSON', async () => {
    up.fault = { match: /\/manifests\//, fault: { kind: 'status', status: 503, headers: { 'Retry-After': '7' } } }
    const { res, body } = await get(cached(), `/v2/cache/${repoName('app')}/manifests/v1`)
    expect(res.status).toBe(503)
    expect(res.headers.get('Retry-After')).toBe('7')
    expect(json(body).errors[0].code).toBe('UPSTREAM_UNAVAILABLE')
  })

  it('unreachable with nothing cached: 502', async () => {
    up.fault = { match: /\/manifests\//, fault: { kind: 'down' } }
    const { res, body } = await get(cached(), `/v2/cache/${repoName('app')}/manifests/v1`)
    expect(res.status).toBe(502)
    expect(json(body).errors[0].code).toBe('UPSTREAM_UNAVAILABLE')
  })

  it('too slow with nothing cached: 504 after the upstream\'s timeout', async () => {
    up.fault = { match: /\/manifests\//, fault: { kind: 'hang' } }
    const settings = upstreams({ prefix: 'cache', url: UPSTREAM, timeoutSeconds: 1 })
    const { res, body } = await get(settings, `/v2/cache/${repoName('app')}/manifests/v1`)
    expect(res.status).toBe(504)
    expect(json(body).errors[0].detail.upstream).toMatch(/within 1 s/)
  })

  it('a manifest that does not match its digest is not stored and fails the request', async () => {
    const remote = repoName('app')
    const img = await up.image(remote, 'v1')
    up.fault = { match: /\/manifests\//, fault: { kind: 'corrupt' } }
    const { res } = await get(cached(), `/v2/cache/${remote}/manifests/${img.digest}`)
    expect(res.status).toBe(502)
    expect(await getManifest(bindings, `cache/${remote}` as Repo, img.digest as Digest)).toBeNull()
    up.fault = null
    const again = await get(cached(), `/v2/cache/${remote}/manifests/${img.digest}`)
    expect(again.body).toEqual(img.bytes)
  })
})

describe('a tag and the credentials that confirmed it', () => {
  const withCredentials = (credentials: string, ttl = 300) => ({
    ...cached(ttl),
    UPSTREAM_CREDENTIALS: JSON.stringify({ cache: credentials }),
  })
  /** An upstream taking Basic `me:first`, its tag pulled (and recorded) with them: the repository. */
  const pulledWithFirst = async () => {
    up.auth = 'basic'
    up.credentials = 'me:first'
    const remote = repoName('app')
    await up.image(remote, 'v1')
    expect((await get(withCredentials('me:first'), `/v2/cache/${remote}/manifests/v1`)).res.status).toBe(200)
    return remote
  }

  it('records which credentials confirmed it; other credentials ask the upstream again, even within the TTL', async () => {
    const remote = await pulledWithFirst()
    const record = await readTag(bindings, `cache/${remote}` as Repo, 'v1' as Tag)
    expect(record!.via).toMatch(/^[0-9a-f]{16}$/)
    const seen = up.seen.length
    expect((await get(withCredentials('me:first'), `/v2/cache/${remote}/manifests/v1`)).res.status).toBe(200)
    expect(up.seen.length).toBe(seen)   // fresh: not asked
    // The operator changed the credentials: the tag is confirmed with the new ones, not served on the old ones' word.
    up.credentials = 'me:second'
    expect((await get(withCredentials('me:second'), `/v2/cache/${remote}/manifests/v1`)).res.status).toBe(200)
    expect(up.count('HEAD', /\/manifests\//)).toBeGreaterThanOrEqual(1)
    expect((await readTag(bindings, `cache/${remote}` as Repo, 'v1' as Tag))!.via).not.toBe(record!.via)
  })

  it('is not served stale to credentials the upstream refuses', async () => {
    const remote = await pulledWithFirst()
    const { res } = await get(withCredentials('me:revoked'), `/v2/cache/${remote}/manifests/v1`)
    expect(res.status).toBe(502)
    // The credentials that confirmed it still get it stale when the upstream is down.
    up.fault = { match: /./, fault: { kind: 'down' } }
    const stale = await get(withCredentials('me:first', 0), `/v2/cache/${remote}/manifests/v1`)
    expect(stale.res.status).toBe(200)
    expect(stale.res.headers.get('Warning')).toMatch(/^110/)
  })
})

describe('a manifest by digest', () => {
  it('is fetched once, verified and served from R2 afterwards', async () => {
    const remote = repoName('app')
    const img = await up.image(remote, null)
    for (let i = 0; i < 3; i++) {
      const { res, body } = await get(cached(), `/v2/cache/${remote}/manifests/${img.digest}`)
      expect(res.status).toBe(200)
      expect(body).toEqual(img.bytes)
    }
    expect(manifestGets()).toBe(1)
  })

  it('pushed to a local repository, is not served through a proxied namespace: the upstream is asked (404, or 502 when down)', async () => {
    const local = await pushImage(repoName('local'), 'v1')
    const remote = repoName('any')
    const { res, body } = await get(cached(), `/v2/cache/${remote}/manifests/${local.digest}`)
    expect(res.status).toBe(404)
    expect(json(body).errors[0].code).toBe('MANIFEST_UNKNOWN')
    expect(up.count('GET', new RegExp(`/v2/${remote}/manifests/${local.digest}`))).toBe(1)
    up.fault = { match: /./, fault: { kind: 'down' } }
    const down = await get(cached(), `/v2/cache/${remote}/manifests/${local.digest}`, { method: 'HEAD' })
    expect(down.res.status).toBe(502)
    expect(await getManifest(bindings, `cache/${remote}` as Repo, local.digest as Digest)).toBeNull()
  })

  it('is served from the cache when the upstream is down', async () => {
    const remote = repoName('app')
    const img = await up.image(remote, null)
    await get(cached(), `/v2/cache/${remote}/manifests/${img.digest}`)
    up.fault = { match: /./, fault: { kind: 'down' } }
    const { res, body } = await get(cached(), `/v2/cache/${remote}/manifests/${img.digest}`)
    expect(res.status).toBe(200)
    expect(body).toEqual(img.bytes)
    expect(res.headers.get('Warning')).toBeNull()
  })
})

describe('an index', () => {
  it('is cached with the children actually pulled, and only those', async () => {
    const remote = repoName('multi')
    const idx = await up.index(remote, 'v1')
    const { res } = await get(cached(), `/v2/cache/${remote}/manifests/v1`, { headers: { Accept: `${OCI_INDEX}, ${OCI_MANIFEST}` } })
    expect(res.headers.get('Content-Type')).toBe(OCI_INDEX)
    await get(cached(), `/v2/cache/${remote}/manifests/${idx.arm64.digest}`)
    const local = `cache/${remote}` as Repo
    expect(await getManifest(bindings, local, idx.digest as Digest)).not.toBeNull()
    expect(await getManifest(bindings, local, idx.arm64.digest as Digest)).not.toBeNull()
    expect(await getManifest(bindings, local, idx.amd64.digest as Digest)).toBeNull()
  })

  it('gives a client that takes only single manifests the linux/amd64 entry, fetched on demand', async () => {
    const remote = repoName('multi')
    const idx = await up.index(remote, 'v1')
    const { res, body } = await get(cached(), `/v2/cache/${remote}/manifests/v1`, { headers: { Accept: OCI_MANIFEST } })
    expect(res.status).toBe(200)
    expect(res.headers.get('Docker-Content-Digest')).toBe(idx.amd64.digest)
    expect(body).toEqual(idx.amd64.bytes)
  })
})

describe('Docker Hub naming and routing', () => {
  it('maps a one-component name to library/ with dockerHubLibrary, cached under the prefix', async () => {
    const name = `n${Date.now().toString(36)}`
    const img = await up.image(`library/${name}`, 'latest')
    const hub = upstreams({ prefix: 'hub', url: UPSTREAM, dockerHubLibrary: true })
    const { res } = await get(hub, `/v2/hub/${name}/manifests/latest`)
    expect(res.headers.get('Docker-Content-Digest')).toBe(img.digest)
    expect(up.seen.at(-1)?.path).toBe(`/v2/library/${name}/manifests/latest`)
    expect(await readTag(bindings, `hub/library/${name}` as Repo, 'latest' as Tag)).not.toBeNull()
    const again = await get(hub, `/v2/hub/library/${name}/manifests/latest`)
    expect(again.res.headers.get('Docker-Content-Digest')).toBe(img.digest)
    expect(manifestGets()).toBe(1)
  })

  it('host mode: a request on the mirror\'s hostname is the upstream at the root', async () => {
    const name = `n${Date.now().toString(36)}`
    const img = await up.image(`library/${name}`, 'latest')
    const host = upstreams({ host: 'mirror.test', url: UPSTREAM, dockerHubLibrary: true })
    const { res } = await get(host, `http://mirror.test/v2/library/${name}/manifests/latest`)
    expect(res.status).toBe(200)
    expect(res.headers.get('Docker-Content-Digest')).toBe(img.digest)
    expect(res.headers.get('OCI-Namespace')).toBeNull()
    expect(await readTag(bindings, `mirror.test/library/${name}` as Repo, 'latest' as Tag)).not.toBeNull()
  })

  it('ns mode: ?ns=<source host> picks the upstream and the reply carries OCI-Namespace', async () => {
    const remote = repoName('org')
    const img = await up.image(remote, 'v1')
    const ns = upstreams({ prefix: 'quay', url: UPSTREAM, ns: ['quay.io'] })
    const { res } = await get(ns, `/v2/${remote}/manifests/v1?ns=quay.io`)
    expect(res.status).toBe(200)
    expect(res.headers.get('Docker-Content-Digest')).toBe(img.digest)
    expect(res.headers.get('OCI-Namespace')).toBe('quay.io')
  })

  it('ns mode: an ns no upstream answers for is ignored and never dialled', async () => {
    const remote = repoName('org')
    await up.image(remote, 'v1')
    const ns = upstreams({ prefix: 'quay', url: UPSTREAM, ns: ['quay.io'] })
    const { res } = await get(ns, `/v2/${remote}/manifests/v1?ns=evil.example`)
    expect(res.status).toBe(404)
    expect(res.headers.get('OCI-Namespace')).toBeNull()
    expect(up.seen).toEqual([])
  })
})
