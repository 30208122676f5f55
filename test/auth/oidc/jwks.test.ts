/** Where the issuer's keys come from: discovery or jwks_uri, the edge cache, and how often it is asked. */
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { parseIssuers } from '../../../src/auth/oidc/config'
import { keySet, REFETCH_MS } from '../../../src/auth/oidc/jwks'
import { verifyIdToken } from '../../../src/auth/oidc/verify'
import { keys } from '../../../src/storage/keys'
import { b64url, interceptIssuers, TestIssuer } from './issuer'

const ORIGIN = 'http://registry.test'
const CLAIMS = { repository_owner: 'acme' }

beforeAll(() => {
  interceptIssuers()
  vi.spyOn(console, 'log').mockImplementation(() => {})
  vi.spyOn(console, 'warn').mockImplementation(() => {})
})

const issuersOf = (...entries: Record<string, unknown>[]) => parseIssuers(JSON.stringify(entries))

describe('the key set of an issuer', () => {
  it('is found by discovery, fetched once, then kept (memory and the edge cache)', async () => {
    const issuer = await TestIssuer.create()
    const issuers = issuersOf(issuer.entry('gh'))
    for (let i = 0; i < 3; i++) expect(await verifyIdToken(issuers, ORIGIN, await issuer.token(CLAIMS))).toMatchObject({ alias: 'gh' })
    expect(issuer.fetched).toEqual(['/.well-known/openid-configuration', '/keys'])
    const cached = await caches.default.match(keys.cachedJwks(ORIGIN, issuer.url, null))
    expect(cached?.headers.get('cache-control')).toBe('max-age=3600')
    expect(Number(cached?.headers.get('x-fetched-at'))).toBeGreaterThan(Date.now() - 60_000)
    expect(((await cached!.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid)).toEqual([issuer.firstKid])
  })

  it('comes from jwks_uri without discovery when it is configured', async () => {
    const issuer = await TestIssuer.create()
    const issuers = issuersOf(issuer.entry('gl', { jwks_uri: issuer.jwksUri }))
    expect(await verifyIdToken(issuers, ORIGIN, await issuer.token(CLAIMS))).not.toBeNull()
    expect(issuer.fetched).toEqual(['/keys'])
  })

  it('is read from the edge cache when this isolate has none (another isolate fetched it)', async () => {
    const issuer = await TestIssuer.create()
    const entry = issuersOf(issuer.entry('gh')).byAlias.get('gh')!
    const jwks = { keys: [issuer.publicJwk(issuer.firstKid)] }
    await caches.default.put(keys.cachedJwks(ORIGIN, issuer.url, null), new Response(JSON.stringify(jwks), {
      headers: { 'Cache-Control': 'max-age=3600', 'X-Fetched-At': String(Date.now()) },
    }))
    expect((await keySet(entry, ORIGIN)).jwks).toEqual(jwks)
    expect(issuer.fetched).toEqual([])
  })

  it('is fetched once whatever Host the sign-ins name (a Host per request cannot make it be downloaded again, or held again)', async () => {
    const issuer = await TestIssuer.create()
    const issuers = issuersOf(issuer.entry('gh'))
    // A made-up token of that issuer is enough to make the registry look for its keys.
    const forged = `${b64url(JSON.stringify({ alg: 'RS256', kid: issuer.firstKid }))}.${b64url(JSON.stringify({ iss: issuer.url, sub: 'x' }))}.AAAA`
    for (let i = 0; i < 5; i++) expect(await verifyIdToken(issuers, `http://host-${i}.registry.test:${8000 + i}`, forged)).toBeNull()
    expect(await verifyIdToken(issuers, 'https://registry.test', await issuer.token(CLAIMS))).toMatchObject({ alias: 'gh' })
    expect(issuer.fetched).toEqual(['/.well-known/openid-configuration', '/keys'])
  })

  it('is refused when the discovery document names another issuer (OIDC Discovery 4.3)', async () => {
    const issuer = await TestIssuer.create()
    // Configured (and in the token) with a trailing slash; its discovery document says it without.
    const issuers = issuersOf({ ...issuer.entry('gh'), issuer: `${issuer.url}/` })
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    expect(await verifyIdToken(issuers, ORIGIN, await issuer.token({ ...CLAIMS, iss: `${issuer.url}/` }))).toBeNull()
    expect(issuer.fetched).toEqual(['/.well-known/openid-configuration'])
    expect(warn.mock.calls.at(-1)?.[0]).toMatchObject({ event: 'oidc.refused', issuer: 'gh', reason: expect.stringContaining('discovery of gh: "issuer" is not') })
  })

  it('is retried at most every 10 s while the issuer cannot be reached, whatever Host asks', async () => {
    const issuer = await TestIssuer.create()
    const issuers = issuersOf(issuer.entry('gh'))
    issuer.down = true
    const token = await issuer.token(CLAIMS)
    const t0 = Date.now()
    expect(await verifyIdToken(issuers, ORIGIN, token, t0)).toBeNull()
    expect(await verifyIdToken(issuers, ORIGIN, token, t0 + 5_000)).toBeNull()
    for (let i = 0; i < 5; i++) expect(await verifyIdToken(issuers, `http://host-${i}.registry.test`, token, t0 + 5_000 + i)).toBeNull()
    expect(issuer.fetched).toHaveLength(1)
    issuer.down = false
    expect(await verifyIdToken(issuers, ORIGIN, token, t0 + 11_000)).not.toBeNull()
    expect(issuer.fetched).toEqual(['/.well-known/openid-configuration', '/.well-known/openid-configuration', '/keys'])
  })
})

describe('unknown kids', () => {
  it('make the JWKS be fetched again at most once a minute, however many arrive', async () => {
    const issuer = await TestIssuer.create()
    const issuers = issuersOf(issuer.entry('gh', { jwks_uri: issuer.jwksUri }))
    const t0 = Date.now()
    const at = async (ms: number, kid?: string) => {
      const now = t0 + ms
      return verifyIdToken(issuers, ORIGIN, await issuer.token(CLAIMS, kid, Math.floor(now / 1000)), now)
    }
    expect(await at(0)).not.toBeNull()
    const made = await Promise.all(Array.from({ length: 20 }, () => issuer.addKey('RS256', false)))
    // 20 made-up kids in the first minute, concurrently and one by one: no fetch.
    expect((await Promise.all(made.map((kid) => at(1000, kid)))).every((r) => r === null)).toBe(true)
    for (const kid of made) expect(await at(REFETCH_MS - 1000, kid)).toBeNull()
    expect(issuer.fetched).toEqual(['/keys'])
    // After a minute, one fetch serves every unknown kid of the next minute, concurrent ones included.
    expect((await Promise.all(made.map((kid) => at(REFETCH_MS + 1000, kid)))).every((r) => r === null)).toBe(true)
    expect(issuer.fetched).toEqual(['/keys', '/keys'])
    // A key rotated in meanwhile waits for the next minute, then is found.
    const rotated = await issuer.addKey('ES256', true)
    expect(await at(REFETCH_MS + 2000, rotated)).toBeNull()
    expect(await at(2 * REFETCH_MS + 2000, rotated)).not.toBeNull()
    expect(issuer.fetched).toEqual(['/keys', '/keys', '/keys'])
    // Known keys never cause a fetch.
    expect(await at(2 * REFETCH_MS + 3000)).not.toBeNull()
    expect(issuer.fetched).toHaveLength(3)
  })
})
