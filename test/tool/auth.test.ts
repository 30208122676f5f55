import { describe, expect, it } from 'vitest'
import { EXIT } from '../../tool/core/errors.mjs'
import { push } from '../../tool/core/push.mjs'
import { Registry, type Credentials } from '../../tool/core/registry.mjs'
import { authEnv, fresh, PASSWORDS, ROBOT_TOKEN } from '../auth/setup'
import { HOST, memoryImage, routerFetch, type Sent } from './fixtures'

async function pushAs(repo: string, credentials: Credentials | null, log: Sent[] = [], scopes: string[] = [], mountFrom?: string) {
  const fetch = routerFetch(await authEnv(), log)
  const image = await memoryImage([300 * 1024])
  const registry = new Registry({ host: HOST, repository: repo, fetch, plainHttp: true, credentials, scopes })
  return { image, result: await push(image.source, registry, { reference: 'v1', chunkSize: 128 * 1024, mountFrom }) }
}

describe('the Bearer token flow (AUTH_MODE token)', () => {
  it('answers the 401 challenge with a token from the realm (Basic credentials), for pull,push on the repository', async () => {
    const repo = fresh('team-a')
    const sent: Sent[] = []
    const { image, result } = await pushAs(repo, { username: 'paul', password: PASSWORDS.paul }, sent)
    expect(result.digest).toBe(image.digest)
    const tokenRequests = sent.filter((r) => new URL(r.url).pathname === '/token')
    expect(tokenRequests.length).toBe(1)   // one token for the whole push
    expect(new URL(tokenRequests[0]!.url).searchParams.getAll('scope')).toContain(`repository:${repo}:pull,push`)
    expect(tokenRequests[0]!.headers.get('authorization')).toBe(`Basic ${btoa(`paul:${PASSWORDS.paul}`)}`)
    // Every registry request after the first carries the token.
    const after = sent.filter((r) => new URL(r.url).pathname.startsWith('/v2/')).slice(1)
    expect(after.every((r) => r.headers.get('authorization')?.startsWith('Bearer '))).toBe(true)
  })

  it('a robot signs in with its token (user robot:ci)', async () => {
    const { result, image } = await pushAs(fresh('team-a'), { username: 'robot:ci', password: ROBOT_TOKEN })
    expect(result.digest).toBe(image.digest)
  })

  it('mounting asks the token for pull on --mount-from as well', async () => {
    const from = fresh('team-a')
    const creds = { username: 'paul', password: PASSWORDS.paul }
    const fetch = routerFetch(await authEnv())
    const image = await memoryImage([100 * 1024])
    await push(image.source, new Registry({ host: HOST, repository: from, fetch, plainHttp: true, credentials: creds }), { reference: 'v1' })
    const sent: Sent[] = []
    const repo = fresh('team-a')
    const registry = new Registry({ host: HOST, repository: repo, fetch: routerFetch(await authEnv(), sent), plainHttp: true, credentials: creds, scopes: [`repository:${from}:pull`] })
    const result = await push(image.source, registry, { reference: 'v1', mountFrom: from })
    expect(result.blobs).toEqual({ exists: 0, mounted: 2, uploaded: 0 })
    const token = sent.find((r) => new URL(r.url).pathname === '/token')!
    expect(new URL(token.url).searchParams.getAll('scope')).toEqual(expect.arrayContaining([`repository:${repo}:pull,push`, `repository:${from}:pull`]))
  })

  it('an identity token (docker login\'s refresh token) is exchanged at the realm with the refresh_token grant', async () => {
    const bindings = await authEnv()
    const login = await routerFetch(bindings)(`http://${HOST}/token?service=${HOST}&offline_token=true`, {
      headers: { Authorization: `Basic ${btoa(`paul:${PASSWORDS.paul}`)}` },
    })
    const { refresh_token: refresh } = (await login.json()) as { refresh_token: string }
    expect(refresh).toBeTruthy()
    const sent: Sent[] = []
    const image = await memoryImage([50 * 1024])
    const registry = new Registry({ host: HOST, repository: fresh('team-a'), fetch: routerFetch(bindings, sent), plainHttp: true, credentials: { identityToken: refresh } })
    expect((await push(image.source, registry, { reference: 'v1' })).digest).toBe(image.digest)
    const token = sent.find((r) => new URL(r.url).pathname === '/token')!
    expect(token.method).toBe('POST')
  })

  it('wrong credentials fail with exit status 4', async () => {
    const err = await pushAs(fresh('team-a'), { username: 'paul', password: 'wrong' }).catch((e) => e)
    expect(err.exitCode).toBe(EXIT.AUTH)
    expect(err.message).toMatch(/401/)
  })

  it('a user without push rights, or no credentials at all, fails with exit status 4', async () => {
    const rita = await pushAs(fresh('team-a'), { username: 'rita', password: PASSWORDS.rita }).catch((e) => e)
    expect(rita.exitCode).toBe(EXIT.AUTH)
    const anonymous = await pushAs(fresh('team-a'), null).catch((e) => e)
    expect(anonymous.exitCode).toBe(EXIT.AUTH)
  })

  it('a token that expires mid-push is renewed and the request sent again', async () => {
    const repo = fresh('team-a')
    const sent: Sent[] = []
    const inner = routerFetch(await authEnv(), sent)
    let patches = 0
    // The registry forgets the token once, as after 5 minutes: a 401 on the second PATCH.
    const expiring = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (init?.method === 'PATCH' && ++patches === 2) {
        const headers = new Headers(init.headers)
        headers.set('authorization', 'Bearer expired.token.value')
        return inner(input, { ...init, headers })
      }
      return inner(input, init)
    }) as typeof fetch
    const image = await memoryImage([400 * 1024])
    const registry = new Registry({ host: HOST, repository: repo, fetch: expiring, plainHttp: true, credentials: { username: 'paul', password: PASSWORDS.paul } })
    const result = await push(image.source, registry, { reference: 'v1', chunkSize: 128 * 1024 })
    expect(result.digest).toBe(image.digest)
    expect(sent.filter((r) => new URL(r.url).pathname === '/token').length).toBe(2)
  })
})
