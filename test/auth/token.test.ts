import { beforeAll, describe, expect, it } from 'vitest'
import { hashPassword } from '../../src/auth/passwords'
import type { Env } from '../../src/env'
import {
  authEnv, basic, bearer, claimsOf, codeOf, fresh, PASSWORDS, ROBOT_TOKEN, seedBlob, send, SERVICE, tokenFor,
} from './setup'

const form = (fields: Record<string, string | string[]>): RequestInit => {
  const body = new URLSearchParams()
  for (const [k, v] of Object.entries(fields)) for (const x of [v].flat()) body.append(k, x)
  return { method: 'POST', body, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }
}

interface TokenReply {
  token: string
  access_token: string
  expires_in: number
  issued_at: string
  scope: string
  refresh_token?: string
}

describe('GET /token', () => {
  let e: Env
  beforeAll(async () => {
    e = await authEnv()
  })

  it('answers docker with a token holding only what the rules grant', async () => {
    const res = await send(e, `/token?account=paul&client_id=docker&offline_token=false&service=${SERVICE}`
      + '&scope=repository:team-a/app:pull,push,delete&scope=repository:private/x:pull&scope=registry:catalog:*', {
      headers: { Authorization: basic('paul', PASSWORDS.paul) },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('application/json')
    expect(res.headers.get('cache-control')).toBe('no-store')
    const body = (await res.json()) as TokenReply
    expect(body.access_token).toBe(body.token)
    expect(body.expires_in).toBe(300)
    expect(Math.abs(Date.parse(body.issued_at) - Date.now())).toBeLessThan(60_000)
    expect(body.scope).toBe('repository:team-a/app:pull,push')
    expect(body.refresh_token).toBeUndefined()
    const claims = claimsOf(body.token)
    expect(claims).toMatchObject({
      iss: 'edge-registry',
      sub: 'paul',
      aud: SERVICE,
      access: [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }],
    })
    expect((claims.exp as number) - (claims.iat as number)).toBe(300)
  })

  it('gives anonymous callers an anonymous token (no sub) with public pulls only', async () => {
    const res = await send(e, '/token?scope=repository:public/site:pull,push&scope=repository:team-a/app:pull')
    expect(res.status).toBe(200)
    const claims = claimsOf(((await res.json()) as TokenReply).token)
    expect(claims.sub).toBeUndefined()
    expect(claims.access).toEqual([{ type: 'repository', name: 'public/site', actions: ['pull'] }])
  })

  it('issues a token without scope for docker login, and it opens /v2/', async () => {
    const token = await tokenFor(e, basic('rita', PASSWORDS.rita))
    expect(claimsOf(token).access).toEqual([])
    expect((await send(e, '/v2/', { headers: { Authorization: bearer(token) } })).status).toBe(200)
  })

  it('accepts several scopes in one parameter, and ignores unknown actions and types', async () => {
    const scope = encodeURIComponent('repository:team-a/app:pull,frobnicate,* repository(plugin):team-a/p:pull registry:catalog:*')
    const res = await send(e, `/token?scope=${scope}`, { headers: { Authorization: basic('alice', PASSWORDS.alice) } })
    expect(((await res.json()) as TokenReply).scope).toBe('repository:team-a/app:pull registry:catalog:*')
  })

  it.each([
    ['repository:team-a', 'TOKEN_REQUEST_INVALID'],
    ['repository:team-a/app:', 'TOKEN_REQUEST_INVALID'],
    ['repository::pull', 'TOKEN_REQUEST_INVALID'],
    ['repository:Team-A/App:pull', 'NAME_INVALID'],
    [Array.from({ length: 11 }, (_, i) => `repository:r${i}:pull`).join(' '), 'TOKEN_REQUEST_INVALID'],
  ])('answers 400 to the malformed scope %s, before checking credentials', async (scope, code) => {
    const res = await send(e, `/token?scope=${encodeURIComponent(scope)}`, { headers: { Authorization: basic('paul', 'wrong') } })
    expect(res.status).toBe(400)
    expect(await codeOf(res)).toBe(code)
  })

  it('answers 400 for another service', async () => {
    const res = await send(e, '/token?service=other.example&scope=repository:team-a/app:pull')
    expect(res.status).toBe(400)
    expect(await codeOf(res)).toBe('TOKEN_REQUEST_INVALID')
  })

  it.each([
    ['a wrong password', basic('paul', 'wrong')],
    ['an unknown user', basic('mallory', 'x')],
    ['a wrong robot token', basic('robot:ci', 'erbt_wrong')],
    ['an unknown robot', basic('robot:nobody', ROBOT_TOKEN)],
    ['a malformed header', 'Basic %%%'],
    ['another scheme', 'Bearer abc'],
  ])('answers 401 UNAUTHORIZED to %s', async (_name, authorization) => {
    const res = await send(e, '/token?scope=repository:public/site:pull', { headers: { Authorization: authorization } })
    expect(res.status).toBe(401)
    expect(await codeOf(res)).toBe('UNAUTHORIZED')
    expect(res.headers.get('www-authenticate')).toBe(`Basic realm="${SERVICE}"`)
  })

  it('signs robots in as robot:<name>, however the client split the credentials', async () => {
    for (const authorization of [basic('robot:ci', ROBOT_TOKEN), basic('robot', `ci:${ROBOT_TOKEN}`)]) {
      const res = await send(e, '/token?scope=repository:team-a/app:pull,push', { headers: { Authorization: authorization } })
      expect(res.status).toBe(200)
      const claims = claimsOf(((await res.json()) as TokenReply).token)
      expect(claims.sub).toBe('robot:ci')
      expect(claims.access).toEqual([{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }])
    }
  })

  it('adds a refresh token for docker login (offline_token=true), never for anonymous', async () => {
    const signedIn = await send(e, '/token?offline_token=true&client_id=docker', { headers: { Authorization: basic('paul', PASSWORDS.paul) } })
    expect(((await signedIn.json()) as TokenReply).refresh_token).toMatch(/^ey/)
    const anonymous = await send(e, '/token?offline_token=true&client_id=docker')
    expect(((await anonymous.json()) as TokenReply).refresh_token).toBeUndefined()
  })

  it('does not exist on an open registry', async () => {
    const res = await send(await authEnv({ AUTH_MODE: 'none' }), '/token?scope=repository:a:pull')
    expect(res.status).toBe(404)
  })
})

describe('POST /token', () => {
  let e: Env
  beforeAll(async () => {
    e = await authEnv()
  })

  it('grants a password form as containerd sends it (space-separated scopes)', async () => {
    const res = await send(e, '/token', form({
      grant_type: 'password', username: 'paul', password: PASSWORDS.paul, service: SERVICE, client_id: 'containerd',
      scope: 'repository:team-a/app:pull,push repository:public/site:pull',
    }))
    expect(res.status).toBe(200)
    const body = (await res.json()) as TokenReply
    expect(body.scope).toBe('repository:team-a/app:pull,push repository:public/site:pull')
    expect(body.refresh_token).toBeUndefined()
    expect(claimsOf(body.access_token).sub).toBe('paul')
  })

  it('accepts robots in either credential split', async () => {
    for (const [username, password] of [['robot:ci', ROBOT_TOKEN], ['robot', `ci:${ROBOT_TOKEN}`]] as const) {
      const res = await send(e, '/token', form({ grant_type: 'password', username, password, scope: 'repository:team-a/app:push' }))
      expect(res.status).toBe(200)
      expect(claimsOf(((await res.json()) as TokenReply).token).sub).toBe('robot:ci')
    }
  })

  it('refreshes: access_type=offline gives a refresh token that buys access tokens with current rules', async () => {
    const first = await send(e, '/token', form({ grant_type: 'password', username: 'paul', password: PASSWORDS.paul, access_type: 'offline' }))
    const refresh = ((await first.json()) as TokenReply).refresh_token!
    expect(refresh).toBeTruthy()
    const res = await send(e, '/token', form({ grant_type: 'refresh_token', refresh_token: refresh, service: SERVICE, scope: 'repository:team-a/app:pull,push' }))
    expect(res.status).toBe(200)
    const body = (await res.json()) as TokenReply
    expect(body.scope).toBe('repository:team-a/app:pull,push')
    expect(claimsOf(body.token).sub).toBe('paul')
    // Rules are read at every refresh: take paul's push away and the next token lacks it.
    const fewer = await authEnv({ AUTH_RULES: JSON.stringify([{ repos: 'team-a/*', users: ['paul'], actions: ['pull'] }]) })
    const later = await send(fewer, '/token', form({ grant_type: 'refresh_token', refresh_token: refresh, scope: 'repository:team-a/app:pull,push' }))
    expect(((await later.json()) as TokenReply).scope).toBe('repository:team-a/app:pull')
  })

  it('ends refresh tokens when the password changes', async () => {
    const first = await send(e, '/token', form({ grant_type: 'password', username: 'paul', password: PASSWORDS.paul, access_type: 'offline' }))
    const refresh = ((await first.json()) as TokenReply).refresh_token!
    const users = JSON.parse(e.AUTH_USERS!) as Record<string, string>
    const changed = await authEnv({ AUTH_USERS: JSON.stringify({ ...users, paul: await hashPassword('new-password', 1000) }) })
    const res = await send(changed, '/token', form({ grant_type: 'refresh_token', refresh_token: refresh }))
    expect(res.status).toBe(401)
    // ... and the old password with it, although it was verified (and cached) a moment ago.
    const old = await send(changed, '/token', form({ grant_type: 'password', username: 'paul', password: PASSWORDS.paul }))
    expect(old.status).toBe(401)
  })

  it('keeps refresh and access tokens apart', async () => {
    const reply = await send(e, '/token?offline_token=true&scope=repository:team-a/app:pull', { headers: { Authorization: basic('paul', PASSWORDS.paul) } })
    const { token, refresh_token } = (await reply.json()) as TokenReply
    const repo = fresh('team-a')
    const digest = await seedBlob(repo)
    expect((await send(e, `/v2/${repo}/blobs/${digest}`, { headers: { Authorization: bearer(refresh_token!) } })).status).toBe(401)
    expect((await send(e, '/token', form({ grant_type: 'refresh_token', refresh_token: token }))).status).toBe(401)
  })

  it.each([
    ['a wrong password', { grant_type: 'password', username: 'paul', password: 'wrong' }],
    ['no credentials', { grant_type: 'password' }],
    ['a forged refresh token', { grant_type: 'refresh_token', refresh_token: 'eyJhbGciOiJIUzI1NiJ9.e30.x' }],
  ])('answers 401 to %s', async (_name, fields) => {
    const res = await send(e, '/token', form(fields))
    expect(res.status).toBe(401)
    expect(await codeOf(res)).toBe('UNAUTHORIZED')
  })

  it('answers 400 to an unknown grant, a body that is not a form, or an oversized one', async () => {
    const cases: RequestInit[] = [
      form({ grant_type: 'client_credentials' }),
      { method: 'POST', body: '{"grant_type":"password"}', headers: { 'Content-Type': 'application/json' } },
      form({ grant_type: 'password', username: 'paul', password: 'x'.repeat(20_000) }),
      form({ grant_type: 'password', username: 'paul', password: PASSWORDS.paul, scope: 'repository:a' }),
    ]
    for (const init of cases) {
      const res = await send(e, '/token', init)
      expect(res.status).toBe(400)
      expect(await codeOf(res)).toBe('TOKEN_REQUEST_INVALID')
    }
  })
})
