/** The upstream client (src/proxy/upstream.ts): anonymous, Basic and the Bearer token flow, tokens cached per scope. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { parseChallenge } from '../../src/proxy/upstream'
import { repoName } from '../helpers'
import { FakeUpstream, get, REALM, UPSTREAM, upstreams } from './fake-upstream'

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
