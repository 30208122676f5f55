/**
 * CI jobs signing in with OIDC identity tokens (user `oidc`, the token as password): to /token
 * (GET with Basic, OAuth2 POST form) and with Basic straight on /v2/. The issuers are local
 * (issuer.ts): keys made per run, discovery and JWKS answered through the worker's fetch.
 */
import { exportSPKI, importJWK, SignJWT, type CryptoKey } from 'jose'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Env } from '../../../src/env'
import { authEnv, basic, bearer, claimsOf, codeOf, fresh, RULES, send, SERVICE, tokenFor } from '../setup'
import { AUDIENCE, b64url, interceptIssuers, TestIssuer } from './issuer'

/** GitHub-shaped claims of acme/app on main. */
const MAIN = { repository: 'acme/app', repository_owner: 'acme', ref: 'refs/heads/main' }
const FEATURE = { ...MAIN, sub: 'repo:acme/app:ref:refs/heads/feature', ref: 'refs/heads/feature' }
const OIDC_RULES = [
  { repos: 'acme/*', oidc: { issuer: 'gh', claims: { repository_owner: 'acme', ref: 'refs/heads/main' } }, actions: ['pull', 'push'] },
  { repos: 'acme/*', oidc: { issuer: 'gh', claims: { repository_owner: 'acme', ref: 'refs/heads/*' } }, actions: ['pull'] },
  { repos: 'gh/${repository}', oidc: { issuer: 'gh', claims: { repository_owner: 'acme' } }, actions: ['pull', 'push'] },
  // OIDC callers are not "anyone signed in".
  { repos: 'team-a/*', users: ['*'], actions: ['pull'] },
  { catalog: ['*'] },
]

const oidc = (token: string) => basic('oidc', token)
const form = (fields: Record<string, string>): RequestInit => ({
  method: 'POST', body: new URLSearchParams(fields), headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
})

let gh: TestIssuer
let other: TestIssuer
let esKid: string
let e: Env

beforeAll(async () => {
  interceptIssuers()
  gh = await TestIssuer.create()
  esKid = await gh.addKey('ES256', true)
  other = await TestIssuer.create()
  e = await authEnv({
    AUTH_OIDC: JSON.stringify([gh.entry('gh'), other.entry('other', { jwks_uri: other.jwksUri })]),
    AUTH_RULES: JSON.stringify([...RULES, ...OIDC_RULES]),
  })
})

afterEach(() => {
  vi.useRealTimers()
})

const ALL_SCOPES = [
  'repository:acme/app:pull,push,delete', 'repository:gh/acme/app:pull,push', 'repository:gh/acme/other:pull',
  'repository:public/site:pull,push', 'repository:team-a/x:pull', 'repository:private/y:pull', 'registry:catalog:*',
]

describe('GET /token as user oidc', () => {
  it('issues a registry token with exactly the actions the matching rules grant, and no refresh token', async () => {
    const query = ALL_SCOPES.map((s) => `&scope=${encodeURIComponent(s)}`).join('')
    const res = await send(e, `/token?service=${SERVICE}&offline_token=true${query}`, {
      headers: { Authorization: oidc(await gh.token(MAIN)) },
    })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { token: string; scope: string; refresh_token?: string }
    // public/site: anonymous pull; team-a/* ("users": ["*"]), private/*, the catalog: nothing.
    expect(body.scope).toBe('repository:acme/app:pull,push repository:gh/acme/app:pull,push repository:public/site:pull')
    expect(body.refresh_token).toBeUndefined()
    expect(claimsOf(body.token)).toMatchObject({ sub: 'oidc:gh:repo:acme/app:ref:refs/heads/main', aud: SERVICE })
  })

  it('accepts ES256 as well as RS256', async () => {
    const token = await tokenFor(e, oidc(await gh.token(MAIN, esKid)), 'repository:acme/app:pull,push')
    expect(claimsOf(token).access).toEqual([{ type: 'repository', name: 'acme/app', actions: ['pull', 'push'] }])
  })

  it('grants a feature branch only what its rules say (pull), and lets the token open /v2/', async () => {
    const token = await tokenFor(e, oidc(await gh.token(FEATURE)), 'repository:acme/app:pull,push')
    expect(claimsOf(token).access).toEqual([{ type: 'repository', name: 'acme/app', actions: ['pull'] }])
    expect((await send(e, '/v2/', { headers: { Authorization: bearer(token) } })).status).toBe(200)
  })

  it('binds rules to their issuer: the same claims from another trusted issuer get nothing', async () => {
    const token = await tokenFor(e, oidc(await other.token({ ...MAIN, aud: AUDIENCE })), 'repository:acme/app:pull,push')
    expect(claimsOf(token)).toMatchObject({ sub: 'oidc:other:repo:acme/app:ref:refs/heads/main', access: [] })
  })
})

describe('POST /token as user oidc', () => {
  it('issues the same token for the password grant, never a refresh token', async () => {
    const res = await send(e, '/token', form({
      grant_type: 'password', username: 'oidc', password: await gh.token(MAIN), service: SERVICE,
      scope: 'repository:acme/app:pull,push', access_type: 'offline', client_id: 'containerd',
    }))
    expect(res.status).toBe(200)
    const body = (await res.json()) as { scope: string; refresh_token?: string }
    expect(body.scope).toBe('repository:acme/app:pull,push')
    expect(body.refresh_token).toBeUndefined()
  })

  it('answers 401 to a bad token', async () => {
    const res = await send(e, '/token', form({ grant_type: 'password', username: 'oidc', password: await gh.token({ ...MAIN, aud: 'elsewhere' }) }))
    expect(res.status).toBe(401)
  })
})

describe('Basic oidc:<token> on /v2/', () => {
  it('pushes where the rules allow, and binds the upload session to oidc:<alias>:<sub>', async () => {
    const repo = fresh('acme')
    const auth = { Authorization: oidc(await gh.token(MAIN)) }
    expect((await send(e, '/v2/', { headers: auth })).status).toBe(200)
    const post = await send(e, `/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth })
    expect(post.status).toBe(202)
    const state = new URL(post.headers.get('location')!, 'http://x').searchParams.get('_state')!
    expect(JSON.parse(atob(state.split('.')[0]!.replaceAll('-', '+').replaceAll('_', '/'))).sub).toBe('oidc:gh:repo:acme/app:ref:refs/heads/main')
    // Another repository's main branch may push there too, but is another identity: not its session.
    const sibling = await gh.token({ ...MAIN, repository: 'acme/other', sub: 'repo:acme/other:ref:refs/heads/main' })
    const stolen = await send(e, post.headers.get('location')!, { headers: { Authorization: oidc(sibling) } })
    expect(await codeOf(stolen)).toBe('BLOB_UPLOAD_UNKNOWN')
  })

  it('answers 403 DENIED where a valid token\'s claims match no rule, and an empty catalog', async () => {
    const evil = await gh.token({ repository: 'evil/app', repository_owner: 'evil', ref: 'refs/heads/main', sub: 'repo:evil/app:ref:refs/heads/main' })
    for (const [path, method] of [[`/v2/${fresh('acme')}/blobs/uploads/`, 'POST'], ['/v2/team-a/x/tags/list', 'GET']] as const) {
      const res = await send(e, path, { method, headers: { Authorization: oidc(evil) } })
      expect(res.status, path).toBe(403)
      expect(await codeOf(res)).toBe('DENIED')
    }
    // The catalog of a caller without the catalog right lists what it may pull: nothing here.
    const catalog = await send(e, '/v2/_catalog', { headers: { Authorization: oidc(evil) } })
    expect(catalog.status).toBe(200)
    expect(await catalog.json()).toEqual({ repositories: [] })
    // A feature branch may pull acme/*, not push.
    const push = await send(e, `/v2/${fresh('acme')}/blobs/uploads/`, { method: 'POST', headers: { Authorization: oidc(await gh.token(FEATURE)) } })
    expect(push.status).toBe(403)
  })

  it('answers 403 DENIED to a registry token of an OIDC caller lacking the action', async () => {
    const token = await tokenFor(e, oidc(await gh.token(FEATURE)), 'repository:acme/app:pull,push', 'repository:team-a/x:pull')
    const res = await send(e, '/v2/acme/app/blobs/uploads/', { method: 'POST', headers: { Authorization: bearer(token) } })
    expect(res.status).toBe(403)
    // team-a/* is pull for "users": ["*"], which OIDC callers are not: denied, not "ask for a token".
    const other = await send(e, '/v2/team-a/x/tags/list', { headers: { Authorization: bearer(token) } })
    expect(other.status).toBe(403)
    expect(await codeOf(other)).toBe('DENIED')
  })
})

describe('refused identity tokens', () => {
  const now = () => Math.floor(Date.now() / 1000)
  const cases: [string, string, () => Promise<string>][] = [
    ['a wrong audience', 'aud', () => gh.token({ ...MAIN, aud: 'https://other-registry.example' })],
    ['an untrusted issuer', 'iss', () => gh.token({ ...MAIN, iss: 'https://evil.example' })],
    ['another trusted issuer\'s iss over this key', 'kid', () => gh.token({ ...MAIN, iss: other.url })],
    ['an expired token (past the leeway)', 'exp', () => gh.token({ ...MAIN, iat: now() - 900, nbf: now() - 900, exp: now() - 61 })],
    ['a token not yet valid', 'nbf', () => gh.token({ ...MAIN, nbf: now() + 300 })],
    ['a token issued in the future', 'iat', () => gh.token({ ...MAIN, iat: now() + 300 })],
    ['a token without exp', 'exp', () => gh.token({ ...MAIN, exp: undefined })],
    ['a token without sub', 'sub', () => gh.token({ ...MAIN, sub: undefined })],
    ['a key the issuer does not publish', 'kid', async () => gh.token(MAIN, await gh.addKey('RS256', false))],
    ['alg none', 'algorithm', async () => `${b64url('{"alg":"none","typ":"JWT"}')}.${b64url(JSON.stringify(claimsOf(await gh.token(MAIN))))}.`],
    ['HS256 signed with the issuer\'s public key', 'algorithm', () => hmacWithPublicKey(MAIN)],
    ['a tampered payload', 'signature', async () => {
      const [h, , s] = (await gh.token(FEATURE)).split('.')
      return `${h}.${b64url(JSON.stringify(claimsOf(await gh.token(MAIN))))}.${s}`
    }],
    ['not a JWT', 'JWT', async () => 'not.a.jwt'],
  ]

  it.each(cases)('401 without detail for %s, the log naming the check (%s)', async (_name, check, make) => {
    const token = await make()
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      const got = await send(e, `/token?service=${SERVICE}&scope=repository:acme/app:pull`, { headers: { Authorization: oidc(token) } })
      expect(got.status).toBe(401)
      expect(await got.json()).toEqual({ errors: [{ code: 'UNAUTHORIZED', message: expect.any(String), detail: null }] })
      const onV2 = await send(e, '/v2/acme/app/tags/list', { headers: { Authorization: oidc(token) } })
      expect(onV2.status).toBe(401)
      expect(onV2.headers.get('www-authenticate')).toMatch(/^Bearer realm=/)
      // The log's oidc.refused event (src/log.ts) says which check failed.
      const refusals = warn.mock.calls.map((c) => c[0] as { event: string; issuer: string | null; reason: string }).filter((l) => l.event === 'oidc.refused')
      expect(refusals.map((l) => l.reason).join('\n')).toContain(check)
    } finally {
      warn.mockRestore()
    }
  })

  it('accepts a token expired by less than the leeway (60 s of clock skew)', async () => {
    const token = await gh.token({ ...MAIN, iat: now() - 900, exp: now() - 30 })
    expect(claimsOf(await tokenFor(e, oidc(token), 'repository:acme/app:pull')).access).toHaveLength(1)
  })

  it('never logs the token', async () => {
    const token = await gh.token({ ...MAIN, aud: 'nope' })
    const log = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      await send(e, '/v2/', { headers: { Authorization: oidc(token) } })
      expect(log).toHaveBeenCalled()
      expect(JSON.stringify(log.mock.calls)).not.toContain(token.split('.')[2])
    } finally {
      log.mockRestore()
    }
  })
})

describe('key rotation', () => {
  it('refuses a new kid until a minute after the last JWKS fetch, then fetches it once and accepts', async () => {
    const issuer = await TestIssuer.create()
    const env = await authEnv({
      AUTH_OIDC: JSON.stringify([issuer.entry('gh')]),
      AUTH_RULES: JSON.stringify(OIDC_RULES.slice(0, 1)),
    })
    const t0 = Date.now()
    vi.useFakeTimers({ toFake: ['Date'], now: t0 })
    const signIn = async (kid?: string) => (await send(env, '/v2/', { headers: { Authorization: oidc(await issuer.token(MAIN, kid)) } })).status
    expect(await signIn()).toBe(200)
    expect(issuer.fetched).toEqual(['/.well-known/openid-configuration', '/keys'])

    const rotated = await issuer.addKey('RS256', true)
    const silence = vi.spyOn(console, 'warn').mockImplementation(() => {})
    for (let i = 0; i < 5; i++) expect(await signIn(rotated)).toBe(401)
    expect(issuer.fetched).toHaveLength(2)                                  // within the minute: no refetch

    vi.setSystemTime(t0 + 61_000)
    expect(await signIn(rotated)).toBe(200)
    expect(issuer.fetched).toEqual(['/.well-known/openid-configuration', '/keys', '/.well-known/openid-configuration', '/keys'])
    expect(await signIn(await issuer.addKey('RS256', false))).toBe(401)    // unknown again: not for another minute
    expect(await signIn()).toBe(200)
    expect(issuer.fetched).toHaveLength(4)
    silence.mockRestore()
  })
})

/** The classic key-confusion forgery: HS256 with the RSA public key (PEM) as the HMAC secret. */
async function hmacWithPublicKey(claims: Record<string, unknown>): Promise<string> {
  const pem = await exportSPKI((await importJWK(gh.publicJwk(gh.firstKid), 'RS256', { extractable: true })) as CryptoKey)
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ iss: gh.url, aud: AUDIENCE, sub: 'repo:acme/app:ref:refs/heads/main', iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: 'HS256', kid: gh.firstKid })
    .sign(new TextEncoder().encode(pem))
}

describe('OIDC callers and the other features', () => {
  let withAdmin: Env
  beforeAll(async () => {
    withAdmin = { ...e, AUTH_RULES: JSON.stringify([...RULES, ...OIDC_RULES, { admin: ['*'] }]) }
  })

  it('never get the admin right, even where "admin": ["*"]: Basic and their registry token are DENIED on /admin/', async () => {
    const id = await gh.token(MAIN)
    expect((await send(withAdmin, '/admin/gc', { headers: { Authorization: oidc(id) } })).status).toBe(403)
    const token = await tokenFor(withAdmin, oidc(id), 'registry:admin:*', 'repository:acme/app:pull')
    expect(claimsOf(token).access).toEqual([{ type: 'repository', name: 'acme/app', actions: ['pull'] }])
    const res = await send(withAdmin, '/admin/gc', { headers: { Authorization: bearer(token) } })
    expect(res.status).toBe(403)
    expect(await codeOf(res)).toBe('DENIED')
    // A user the rule names is an admin (the rule works).
    expect((await send(withAdmin, '/admin/gc', { headers: { Authorization: basic('rita', 'rita-reads') } })).status).toBe(200)
  })

  it('cannot sign in to the web UI (a session holds rules by name): 401, no cookie', async () => {
    const body = new URLSearchParams({ username: 'oidc', password: await gh.token(MAIN), next: '/' }).toString()
    const res = await send(e, '/sign-in', {
      method: 'POST', body, redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(body.length), Origin: 'http://registry.test', 'Sec-Fetch-Site': 'same-origin' },
    })
    expect(res.status).toBe(401)
    expect(res.headers.get('set-cookie')).toBeNull()
  })

  it('with a registry token, list in the catalog exactly the repositories the token may pull', async () => {
    const repo = fresh('acme')
    const seeded = await send(e, `/v2/${repo}/blobs/uploads/?digest=sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855`, {
      method: 'POST', headers: { Authorization: oidc(await gh.token(MAIN)), 'Content-Length': '0' },
    })
    expect(seeded.status).toBe(201)
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', size: 0 }, layers: [] })
    const put = await send(e, `/v2/${repo}/manifests/v1`, { method: 'PUT', body: manifest, headers: { Authorization: oidc(await gh.token(MAIN)), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } })
    expect(put.status).toBe(201)
    const token = await tokenFor(e, oidc(await gh.token(MAIN)), 'registry:catalog:*', `repository:${repo}:pull`)
    const res = await send(e, '/v2/_catalog?n=10000', { headers: { Authorization: bearer(token) } })
    expect(res.status).toBe(200)
    expect(((await res.json()) as { repositories: string[] }).repositories).toEqual([repo])
  })
})
