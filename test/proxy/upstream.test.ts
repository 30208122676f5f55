/** The upstream client (src/proxy/upstream.ts): anonymous, Basic and the Bearer token flow, tokens cached per scope. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { parseChallenge } from '../../src/proxy/upstream'
import { repoName } from '../helpers'
import { ADMIN, CDN, FakeUpstream, get, privateUpstream, REALM, twoEntries, UPSTREAM, upstreams } from './fake-upstream'

let up: FakeUpstream
beforeEach(() => {
  up = new FakeUpstream().install()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const hub = (credentials?: string, extra: Record<string, unknown> = {}) => ({
  ...upstreams({ prefix: 'hub', url: UPSTREAM, tagTtlSeconds: 0, ...extra }),
  ...(credentials ? { UPSTREAM_CREDENTIALS: JSON.stringify({ hub: credentials }) } : {}),
})
const tokenRequests = () => up.seen.filter((s) => s.url.startsWith(REALM))
const errors = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)).errors as { code: string; detail: { upstream: string } }[]

describe('the Bearer token flow', () => {
  it('anonymous: challenge, token from the realm for the repository\'s pull scope, request again', async () => {
    up.auth = 'token'
    const remote = repoName('org')
    const img = await up.image(remote, 'v1')
    const { res } = await get(hub(), `/v2/hub/${remote}/manifests/v1`)
    expect(res.headers.get('Docker-Content-Digest')).toBe(img.digest)
    const [token] = tokenRequests()
    const url = new URL(token!.url)
    expect(url.searchParams.get('service')).toBe('fake.upstream')
    expect(url.searchParams.get('scope')).toBe(`repository:${remote}:pull`)
    expect(token!.authorization).toBeNull()
    expect(up.seen.at(-1)?.authorization).toMatch(/^Bearer tok-/)
  })

  it('with credentials: the token server gets them as Basic', async () => {
    up.auth = 'token'
    up.credentials = 'me:s3cret'
    const remote = repoName('org')
    await up.image(remote, 'v1')
    const { res } = await get(hub('me:s3cret'), `/v2/hub/${remote}/manifests/v1`)
    expect(res.status).toBe(200)
    expect(tokenRequests()[0]!.authorization).toBe(`Basic ${btoa('me:s3cret')}`)
  })

  it('caches the token per scope until it expires: one token for many requests of a repository', async () => {
    up.auth = 'token'
    const remote = repoName('org')
    const img = await up.image(remote, 'v1')
    for (let i = 0; i < 3; i++) await get(hub(), `/v2/hub/${remote}/manifests/v1`)
    await get(hub(), `/v2/hub/${remote}/blobs/${img.config}`)
    expect(tokenRequests()).toHaveLength(1)
    const other = repoName('org')
    await up.image(other, 'v1')
    await get(hub(), `/v2/hub/${other}/manifests/v1`)
    expect(tokenRequests()).toHaveLength(2)
  })

  it('fetches a new token once the old one has expired', async () => {
    up.auth = 'token'
    up.tokenSeconds = 5 // within the safety margin: expired as soon as it is issued
    const remote = repoName('org')
    await up.image(remote, 'v1')
    await get(hub(), `/v2/hub/${remote}/manifests/v1`)
    await get(hub(), `/v2/hub/${remote}/manifests/v1`)
    expect(tokenRequests()).toHaveLength(2)
  })

  it('wrong credentials, nothing cached: 502 saying the upstream refused them', async () => {
    up.auth = 'token'
    up.credentials = 'me:right'
    const remote = repoName('org')
    await up.image(remote, 'v1')
    const { res, body } = await get(hub('me:wrong'), `/v2/hub/${remote}/manifests/v1`)
    expect(res.status).toBe(502)
    expect(errors(body)[0]!.detail.upstream).toMatch(/token server refused us \(401\)/)
  })

  it('a token server rate limiting: 429 with its Retry-After', async () => {
    up.auth = 'token'
    up.fault = { match: /^\/token$/, fault: { kind: 'status', status: 429, headers: { 'Retry-After': '60' } } }
    const { res } = await get(hub(), `/v2/hub/${repoName('org')}/manifests/v1`)
    expect(res.status).toBe(429)
    expect(res.headers.get('Retry-After')).toBe('60')
  })
})

describe('two entries on one upstream, one with credentials (tokens are cached per entry and credentials)', () => {
  // As in the issue: `tk` has the upstream's credentials, `anon` none; the upstream lets anyone pull public/*.
  const both = twoEntries({ tagTtlSeconds: 0 })
  const privateImage = async () => {
    privateUpstream(up)
    const remote = repoName('team-a')
    return { remote, img: await up.image(remote, 'v1') }
  }

  it('the anonymous entry cannot read a private repository after the other entry pulled it with its token', async () => {
    const { remote, img } = await privateImage()
    expect((await get(both, `/v2/anon/${remote}/manifests/v1`)).res.status).toBe(502)   // a fresh instance: refused
    const tk = await get(both, `/v2/tk/${remote}/manifests/v1`)
    expect(tk.res.status).toBe(200)
    expect((await get(both, `/v2/tk/${remote}/blobs/${img.layers[0]}`)).res.status).toBe(200)
    const before = up.seen.length
    for (const path of [`manifests/v1`, `manifests/${img.digest}`, `blobs/${img.layers[0]}`, `blobs/${img.config}`, 'tags/list']) {
      const { res } = await get(both, `/v2/anon/${remote}/${path}`)
      expect(res.status, path).not.toBe(200)
    }
    // Every token anon presented was one issued without credentials.
    const credentialed = new Set(up.tokens.filter((t) => t.authorization !== null).map((t) => `Bearer ${t.token}`))
    const sent = up.seen.slice(before).filter((s) => s.authorization?.startsWith('Bearer '))
    expect(sent.length).toBeGreaterThan(0)
    for (const s of sent) expect(credentialed.has(s.authorization!), s.path).toBe(false)
  })

  it('each entry gets its own token for the same scope; the anonymous one still pulls what is public', async () => {
    privateUpstream(up)
    const remote = repoName('public')
    await up.image(remote, 'v1')
    expect((await get(both, `/v2/tk/${remote}/manifests/v1`)).res.status).toBe(200)
    expect((await get(both, `/v2/anon/${remote}/manifests/v1`)).res.status).toBe(200)
    expect(tokenRequests().map((t) => t.authorization)).toEqual([`Basic ${btoa(ADMIN)}`, null])
  })

  it('an entry whose credentials changed does not reuse the token the old ones earned', async () => {
    const { remote } = await privateImage()
    expect((await get(both, `/v2/tk/${remote}/manifests/v1`)).res.status).toBe(200)
    const changed = { ...both, UPSTREAM_CREDENTIALS: JSON.stringify({ tk: 'admin:wrong' }) }
    expect((await get(changed, `/v2/tk/${remote}/manifests/v1`)).res.status).toBe(502)
  })
})

describe('credentials go to the upstream and its own realm only', () => {
  it('a redirect target answering 401 gets no credentials, its realm is never asked, its challenge never kept', async () => {
    // As in the issue: the upstream serves blobs anonymously, by a redirect; the entry has credentials.
    up.redirectBlobs = true
    up.cdnChallenges = true
    const remote = repoName('some')
    const img = await up.image(remote, 'v1')
    const settings = hub('upuser:uppass')
    const { res } = await get(settings, `/v2/hub/${remote}/blobs/${img.layers[0]}`)
    expect(res.status).toBe(502)
    const cdn = up.seen.filter((s) => s.url.startsWith(CDN))
    expect(cdn.length).toBeGreaterThan(0)
    expect(cdn.every((s) => s.authorization === null)).toBe(true)
    expect(up.seen.some((s) => s.path === '/steal')).toBe(false)
    // Later requests of the upstream (any repository) carry our own Basic credentials, never a token of the CDN's realm.
    up.cdnChallenges = false
    const other = repoName('some')
    await up.image(other, 'v1')
    expect((await get(settings, `/v2/hub/${other}/manifests/v1`)).res.status).toBe(200)
    expect(up.seen.some((s) => s.authorization === 'Bearer stolen' || s.path === '/steal')).toBe(false)
    expect(up.seen.filter((s) => s.url.startsWith(UPSTREAM)).every((s) => s.authorization === null)).toBe(true)
  })

  it('a redirected token request carries no credentials past the redirect', async () => {
    up.auth = 'token'
    up.credentials = 'me:s3cret'
    const remote = repoName('org')
    await up.image(remote, 'v1')
    const realm = up.fetch.bind(up)
    // The realm redirects to a host of its own choosing.
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const req = new Request(input as RequestInfo, init)
      if (req.url.startsWith(REALM)) {
        up.seen.push({ method: req.method, url: req.url, path: new URL(req.url).pathname, authorization: req.headers.get('authorization') })
        return new Response(null, { status: 302, headers: { Location: `${CDN}/steal` } })
      }
      return realm(req)
    })
    await get(hub('me:s3cret'), `/v2/hub/${remote}/manifests/v1`)
    const steal = up.seen.filter((s) => s.path === '/steal')
    expect(steal).toHaveLength(1)
    expect(steal[0]!.authorization).toBeNull()
  })
})

describe('Basic and bare tokens', () => {
  it('answers a Basic challenge with the configured user:password', async () => {
    up.auth = 'basic'
    up.credentials = 'me:pw'
    const remote = repoName('org')
    await up.image(remote, 'v1')
    const { res } = await get(hub('me:pw'), `/v2/hub/${remote}/manifests/v1`)
    expect(res.status).toBe(200)
    expect(up.seen.at(-1)?.authorization).toBe(`Basic ${btoa('me:pw')}`)
    expect(tokenRequests()).toHaveLength(0)
  })

  it('a Basic challenge without credentials: 502 asking for UPSTREAM_CREDENTIALS', async () => {
    up.auth = 'basic'
    const { res, body } = await get(hub(), `/v2/hub/${repoName('org')}/manifests/v1`)
    expect(res.status).toBe(502)
    expect(errors(body)[0]!.detail.upstream).toMatch(/UPSTREAM_CREDENTIALS/)
  })

  it('sends a bare token as Bearer from the first request', async () => {
    const remote = repoName('org')
    await up.image(remote, 'v1')
    await get(hub('ghp_abc'), `/v2/hub/${remote}/manifests/v1`)
    expect(up.seen[0]!.authorization).toBe('Bearer ghp_abc')
  })

  it('anonymous upstreams get no Authorization at all', async () => {
    const remote = repoName('org')
    await up.image(remote, 'v1')
    await get(hub(), `/v2/hub/${remote}/manifests/v1`)
    expect(up.seen.every((s) => s.authorization === null)).toBe(true)
  })
})

describe('parseChallenge', () => {
  it('reads Bearer parameters, quoted or not, and Basic', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"'))
      .toEqual({ scheme: 'bearer', realm: 'https://auth.docker.io/token', service: 'registry.docker.io' })
    expect(parseChallenge('bearer realm=https://a.test/t, service=svc')).toEqual({ scheme: 'bearer', realm: 'https://a.test/t', service: 'svc' })
    expect(parseChallenge('Basic realm="Registry Realm"')).toMatchObject({ scheme: 'basic' })
    expect(parseChallenge('Negotiate abc')).toBeNull()
    expect(parseChallenge(null)).toBeNull()
  })
})
