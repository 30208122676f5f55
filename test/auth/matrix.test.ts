/**
 * Every identity against every endpoint, with AUTH_MODE "token". Blob and upload routes
 * are asserted to the exact status; manifest, tag, referrer and catalog routes only to the
 * auth outcome (401/403, or neither), so these tests do not depend on their behaviour.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import {
  authEnv, basic, bearer, codeOf, fresh, issueExpired, open, PASSWORDS, ROBOT_TOKEN, seedBlob, send, tokenFor,
} from './setup'
import type { Env } from '../../src/env'

type Need = 'login' | 'pull' | 'push' | 'delete' | 'catalog'
/** 'ok': allowed (the route's own answer), else the auth layer's status. */
type Outcome = 'ok' | 401 | 403

interface Fixture {
  repo: string
  source: string
  blob: string
  mountable: string
  manifest: string
  manifestDigest: string
}

interface Endpoint {
  name: string
  need: Need
  /** The exact status when allowed; null: only "not 401/403" is asserted. */
  status: number | null
  request(f: Fixture): [string, RequestInit]
  /** Scopes a client asks for besides the challenge's (docker adds the mount source's pull). */
  also?(f: Fixture): string[]
}

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json'

const ENDPOINTS: Endpoint[] = [
  { name: 'GET /v2/', need: 'login', status: 200, request: () => ['/v2/', {}] },
  { name: 'HEAD blob', need: 'pull', status: 200, request: (f) => [`/v2/${f.repo}/blobs/${f.blob}`, { method: 'HEAD' }] },
  { name: 'GET blob', need: 'pull', status: 200, request: (f) => [`/v2/${f.repo}/blobs/${f.blob}`, {}] },
  { name: 'GET manifest', need: 'pull', status: null, request: (f) => [`/v2/${f.repo}/manifests/v1`, { headers: { Accept: MANIFEST_TYPE } }] },
  { name: 'HEAD manifest', need: 'pull', status: null, request: (f) => [`/v2/${f.repo}/manifests/v1`, { method: 'HEAD' }] },
  { name: 'GET tags', need: 'pull', status: null, request: (f) => [`/v2/${f.repo}/tags/list`, {}] },
  { name: 'GET referrers', need: 'pull', status: null, request: (f) => [`/v2/${f.repo}/referrers/${f.manifestDigest}`, {}] },
  { name: 'POST upload', need: 'push', status: 202, request: (f) => [`/v2/${f.repo}/blobs/uploads/`, { method: 'POST' }] },
  {
    name: 'POST mount',
    need: 'push',
    status: 201,
    request: (f) => [`/v2/${f.repo}/blobs/uploads/?mount=${f.mountable}&from=${f.source}`, { method: 'POST' }],
    also: (f) => [`repository:${f.source}:pull`],
  },
  {
    name: 'PUT manifest',
    need: 'push',
    status: null,
    request: (f) => [`/v2/${f.repo}/manifests/v2`, { method: 'PUT', body: f.manifest, headers: { 'Content-Type': MANIFEST_TYPE } }],
  },
  { name: 'GET catalog', need: 'catalog', status: null, request: () => ['/v2/_catalog', {}] },
  { name: 'DELETE blob', need: 'delete', status: 202, request: (f) => [`/v2/${f.repo}/blobs/${f.blob}`, { method: 'DELETE' }] },
  { name: 'DELETE manifest', need: 'delete', status: null, request: (f) => [`/v2/${f.repo}/manifests/${f.manifestDigest}`, { method: 'DELETE' }] },
]

/** How an identity authenticates a request that needs `scopes` (the challenge's, and any a client adds). */
type Authenticate = (e: Env, scopes: string[]) => Promise<string | null>

const viaToken = (credentials: string | null): Authenticate => (e, scopes) => tokenFor(e, credentials, ...scopes).then(bearer)

const ALL = (o: Outcome): Record<Need, Outcome> => ({ login: o, pull: o, push: o, delete: o, catalog: o })
// A signed-in caller without the catalog right gets the catalog of what it may pull, not 403.
const READER: Record<Need, Outcome> = { login: 'ok', pull: 'ok', push: 403, delete: 403, catalog: 'ok' }
const PUSHER: Record<Need, Outcome> = { login: 'ok', pull: 'ok', push: 'ok', delete: 403, catalog: 'ok' }

const IDENTITIES: { name: string; authenticate: Authenticate; expect: Record<Need, Outcome> }[] = [
  { name: 'anonymous, no credentials', authenticate: async () => null, expect: ALL(401) },
  { name: 'anonymous token', authenticate: viaToken(null), expect: { ...ALL(401), login: 'ok' } },
  { name: 'reader (Basic)', authenticate: async () => basic('rita', PASSWORDS.rita), expect: READER },
  { name: 'reader (token)', authenticate: viaToken(basic('rita', PASSWORDS.rita)), expect: READER },
  { name: 'pusher on team-a/* (Basic)', authenticate: async () => basic('paul', PASSWORDS.paul), expect: PUSHER },
  { name: 'pusher on team-a/* (token)', authenticate: viaToken(basic('paul', PASSWORDS.paul)), expect: PUSHER },
  { name: 'admin (token)', authenticate: viaToken(basic('alice', PASSWORDS.alice)), expect: ALL('ok') },
  { name: 'robot (Basic)', authenticate: async () => basic('robot:ci', ROBOT_TOKEN), expect: PUSHER },
  { name: 'robot (token)', authenticate: viaToken(basic('robot:ci', ROBOT_TOKEN)), expect: PUSHER },
  { name: 'wrong password (Basic)', authenticate: async () => basic('paul', 'nope'), expect: ALL(401) },
  { name: 'unknown robot (Basic)', authenticate: async () => basic('robot:gone', ROBOT_TOKEN), expect: ALL(401) },
  { name: 'expired token', authenticate: async (_e, scopes) => bearer(await issueExpired('paul', scopes)), expect: ALL(401) },
  {
    name: 'token for another repository',
    authenticate: (e, scopes) =>
      viaToken(basic('paul', PASSWORDS.paul))(e, scopes.map((s) => s.replace(/^repository:.*$/, 'repository:team-a/other:pull,push,delete'))),
    // The token holds team-a/other only: where the rules would give paul more, 401 sends the
    // client back for a token with that scope; where they would not, 403.
    expect: { login: 'ok', pull: 401, push: 401, delete: 403, catalog: 'ok' },
  },
]

async function fixture(): Promise<Fixture> {
  const repo = fresh('team-a')
  const source = fresh('team-a')
  const config = new TextEncoder().encode('{}')
  const layer = crypto.getRandomValues(new Uint8Array(100))
  const [blob, mountable, configDigest, layerDigest] = await Promise.all([
    seedBlob(repo), seedBlob(source), seedBlob(repo, config), seedBlob(repo, layer),
  ])
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
  })
  const put = await send(open, `/v2/${repo}/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'Content-Type': MANIFEST_TYPE } })
  return { repo, source, blob, mountable, manifest, manifestDigest: put.headers.get('docker-content-digest') ?? '' }
}

/** The `scope` of a Bearer challenge, or null. */
const scopeOf = (challenge: string | null): string | null => /scope="([^"]*)"/.exec(challenge ?? '')?.[1] ?? null

describe.each(IDENTITIES)('$name', (identity) => {
  let e: Env
  let f: Fixture
  beforeAll(async () => {
    e = await authEnv()
    f = await fixture()
  })

  it.each(ENDPOINTS)('$name', async (endpoint) => {
    const [path, init] = endpoint.request(f)
    // As a client does: try, read the challenge, authenticate for the scope it names.
    const probe = await send(e, path, { method: init.method ?? 'GET' })
    expect(probe.status).toBe(401)
    const challenged = scopeOf(probe.headers.get('www-authenticate'))
    const authorization = await identity.authenticate(e, [...(challenged ? [challenged] : []), ...(endpoint.also?.(f) ?? [])])
    const res = await send(e, path, { ...init, headers: { ...init.headers, ...(authorization ? { Authorization: authorization } : {}) } })
    const expected = identity.expect[endpoint.need]
    const code = await codeOf(res)
    if (expected === 'ok') {
      if (endpoint.status !== null) expect(res.status, `${code}`).toBe(endpoint.status)
      else expect([401, 403], `${res.status} ${code}`).not.toContain(res.status)
    } else {
      expect(res.status, `${code}`).toBe(expected)
      if (init.method !== 'HEAD') expect(code).toBe(expected === 401 ? 'UNAUTHORIZED' : 'DENIED')
      if (expected === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="http:\/\/registry\.test\/token",service="registry\.test"/)
      else expect(res.headers.get('www-authenticate')).toBeNull()
    }
  })
})

describe('challenges', () => {
  let e: Env
  beforeAll(async () => {
    e = await authEnv()
  })
  const digest = 'sha256:' + 'a'.repeat(64)

  it.each([
    ['GET', '/v2/', ''],
    ['GET', `/v2/team-a/app/blobs/${digest}`, ',scope="repository:team-a/app:pull"'],
    ['HEAD', `/v2/team-a/app/manifests/v1`, ',scope="repository:team-a/app:pull"'],
    ['GET', `/v2/team-a/app/tags/list`, ',scope="repository:team-a/app:pull"'],
    ['GET', `/v2/team-a/app/referrers/${digest}`, ',scope="repository:team-a/app:pull"'],
    ['POST', `/v2/team-a/app/blobs/uploads/`, ',scope="repository:team-a/app:pull,push"'],
    ['PATCH', `/v2/team-a/app/blobs/uploads/x`, ',scope="repository:team-a/app:pull,push"'],
    ['DELETE', `/v2/team-a/app/blobs/uploads/x`, ',scope="repository:team-a/app:pull,push"'],
    ['PUT', `/v2/team-a/app/manifests/v1`, ',scope="repository:team-a/app:pull,push"'],
    ['DELETE', `/v2/team-a/app/manifests/${digest}`, ',scope="repository:team-a/app:delete"'],
    ['DELETE', `/v2/team-a/app/blobs/${digest}`, ',scope="repository:team-a/app:delete"'],
    ['GET', `/v2/_catalog`, ',scope="registry:catalog:*"'],
    // A mount also names pull on its source, space-separated in one scope (as distribution does).
    ['POST', `/v2/team-a/app/blobs/uploads/?mount=${digest}&from=team-b/lib`, ',scope="repository:team-a/app:pull,push repository:team-b/lib:pull"'],
    ['POST', `/v2/team-a/app/blobs/uploads/?mount=${digest}`, ',scope="repository:team-a/app:pull,push"'],
    ['POST', `/v2/team-a/app/blobs/uploads/?mount=${digest}&from=team-a/app`, ',scope="repository:team-a/app:pull,push"'],
    ['POST', `/v2/team-a/app/blobs/uploads/?mount=${digest}&from=Not%5CValid`, ',scope="repository:team-a/app:pull,push"'],
    ['POST', `/v2/team-a/app/blobs/uploads/?from=team-b/lib`, ',scope="repository:team-a/app:pull,push"'],
  ])('%s %s names exactly the scope it needs', async (method, path, scope) => {
    const res = await send(e, path, { method })
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="http://registry.test/token",service="registry.test"${scope}`)
  })

  it('uses the request scheme and host for the realm, and AUTH_SERVICE for the service', async () => {
    const res = await send(await authEnv({ AUTH_SERVICE: 'registry.example' }), 'https://cr.example.com/v2/', {})
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="https://cr.example.com/token",service="registry.example"')
  })

  it('marks expired or tampered tokens invalid_token', async () => {
    const expired = await issueExpired('paul', ['repository:team-a/app:pull'])
    const [h, p, s] = (await tokenFor(e, basic('paul', PASSWORDS.paul), 'repository:team-a/app:pull')).split('.')
    const forged = JSON.parse(atob(p!.replaceAll('-', '+').replaceAll('_', '/')))
    forged.access[0].actions.push('delete')
    const tampered = [h, btoa(JSON.stringify(forged)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, ''), s].join('.')
    for (const token of [expired, tampered, 'not.a.jwt', 'garbage']) {
      const res = await send(e, `/v2/team-a/app/blobs/${digest}`, { method: 'DELETE', headers: { Authorization: bearer(token) } })
      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toContain(',error="invalid_token"')
    }
  })

  it('refuses a token signed with another key, or for another service', async () => {
    const credentials = basic('paul', PASSWORDS.paul)
    const otherKey = await authEnv({ AUTH_TOKEN_SECRET: 'another-secret-another-secret-another-secret' })
    const foreignKey = await tokenFor(otherKey, credentials, 'repository:team-a/app:pull')
    const elsewhere = await send(await authEnv({ AUTH_SERVICE: 'elsewhere' }), '/token?scope=repository:team-a/app:pull', {
      headers: { Authorization: credentials },
    })
    const foreignService = ((await elsewhere.json()) as { token: string }).token
    for (const token of [foreignKey, foreignService]) {
      const res = await send(e, `/v2/team-a/app/blobs/${digest}`, { headers: { Authorization: bearer(token) } })
      expect(res.status).toBe(401)
    }
  })

  it('answers with headers and no body to HEAD', async () => {
    const res = await send(e, `/v2/team-a/app/blobs/${digest}`, { method: 'HEAD' })
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toContain('scope="repository:team-a/app:pull"')
    expect(await res.text()).toBe('')
  })

  it('refuses an oversized Authorization header unread', async () => {
    const res = await send(e, '/v2/', { headers: { Authorization: 'Basic ' + 'A'.repeat(10_000) } })
    expect(res.status).toBe(401)
  })

  it('refuses an unknown scheme', async () => {
    const res = await send(e, '/v2/', { headers: { Authorization: 'Token abc' } })
    expect(res.status).toBe(401)
  })
})

describe('what a denial reveals', () => {
  let e: Env
  let existing: string
  beforeAll(async () => {
    e = await authEnv()
    existing = fresh('private')
    await seedBlob(existing)
  })

  it('answers the same whether or not a private repository or blob exists', async () => {
    const digest = await seedBlob(existing)
    const absent = fresh('private')
    const answers = []
    for (const authorization of [null, basic('rita', PASSWORDS.rita), bearer(await tokenFor(e, basic('paul', PASSWORDS.paul), `repository:${existing}:pull`))]) {
      for (const repo of [existing, absent]) {
        const res = await send(e, `/v2/${repo}/blobs/${digest}`, { headers: authorization ? { Authorization: authorization } : {} })
        answers.push([res.status, await res.text(), res.headers.get('www-authenticate')?.replace(repo, '<repo>') ?? null])
      }
    }
    expect(answers[0]).toEqual(answers[1])
    expect(answers[2]).toEqual(answers[3])
    expect(answers[4]).toEqual(answers[5])
    expect(answers.map((a) => a[0])).toEqual([401, 401, 403, 403, 403, 403])
  })

  it('lets anyone pull a public repository without credentials, or with an anonymous token', async () => {
    const repo = fresh('public')
    const digest = await seedBlob(repo)
    expect((await send(e, `/v2/${repo}/blobs/${digest}`)).status).toBe(200)
    const token = await tokenFor(e, null, `repository:${repo}:pull,push`)
    expect((await send(e, `/v2/${repo}/blobs/${digest}`, { headers: { Authorization: bearer(token) } })).status).toBe(200)
    const push = await send(e, `/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { Authorization: bearer(token) } })
    expect(push.status).toBe(401)
    expect(push.headers.get('www-authenticate')).toContain(`scope="repository:${repo}:pull,push"`)
  })

  it('still answers NAME_INVALID for a name no repository can have', async () => {
    const res = await send(e, `/v2/Team/App/blobs/sha256:${'a'.repeat(64)}`)
    expect(res.status).toBe(400)
    expect(await codeOf(res)).toBe('NAME_INVALID')
  })

  it('leaves the open registry open (AUTH_MODE "none")', async () => {
    expect((await send(open, '/v2/')).status).toBe(200)
    expect((await send(open, '/token')).status).toBe(404)
  })

  it('fails closed, naming no secret, when token auth is misconfigured', async () => {
    for (const broken of [{ AUTH_TOKEN_SECRET: 'short' }, { AUTH_RULES: '{"repos":' }, { AUTH_USERS: '{"paul":"plaintext"}' }, { AUTH_MODE: 'tokens' }]) {
      const res = await send(await authEnv(broken), '/v2/')
      expect(res.status).toBe(500)
      const body = await res.text()
      expect(body).not.toContain('plaintext')
      expect(body).not.toContain('short')
    }
  })
})
