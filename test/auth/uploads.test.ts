/** Uploads and mounts with auth on: sessions belong to who opened them; mounts reveal nothing. */
import { beforeAll, describe, expect, it } from 'vitest'
import type { Env } from '../../src/env'
import { authEnv, basic, bearer, codeOf, fresh, PASSWORDS, ROBOT_TOKEN, seedBlob, send, tokenFor } from './setup'

const PAUL = basic('paul', PASSWORDS.paul)
const ROBOT = basic('robot:ci', ROBOT_TOKEN)

describe('upload sessions with auth on', () => {
  let e: Env
  beforeAll(async () => {
    e = await authEnv()
  })

  it('continue only for the identity that opened them, whatever token it holds', async () => {
    const repo = fresh('team-a')
    const bytes = crypto.getRandomValues(new Uint8Array(100))
    const token = async () => bearer(await tokenFor(e, PAUL, `repository:${repo}:pull,push`))
    const post = await send(e, `/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { Authorization: await token() } })
    expect(post.status).toBe(202)
    const location = post.headers.get('location')!

    // robot:ci may push to team-a/* too, but this session is paul's.
    for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
      const stolen = await send(e, location, { method, headers: { Authorization: ROBOT } })
      expect(stolen.status, method).toBe(404)
      expect(await codeOf(stolen)).toBe('BLOB_UPLOAD_UNKNOWN')
    }

    // paul goes on with a fresh token (docker refetches them during long pushes), then Basic.
    const patch = await send(e, location, {
      method: 'PATCH', body: bytes, headers: { Authorization: await token(), 'Content-Length': '100' },
    })
    expect(patch.status).toBe(202)
    const digest = 'sha256:' + [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('')
    const put = await send(e, `${patch.headers.get('location')}&digest=${digest}`, { method: 'PUT', headers: { Authorization: PAUL } })
    expect(put.status).toBe(201)
  })

  it('carry the identity in the signed state', async () => {
    const repo = fresh('team-a')
    const post = await send(e, `/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { Authorization: PAUL } })
    const location = post.headers.get('location')!
    // The signature covers it, so it cannot be edited away (upload/state tests check forgeries).
    const state = new URL(location, 'http://x').searchParams.get('_state')!
    const json = JSON.parse(atob(state.split('.')[0]!.replaceAll('-', '+').replaceAll('_', '/')))
    expect(json.sub).toBe('paul')
  })
})

describe('mounts with auth on', () => {
  let e: Env
  let teamBlob: string
  let teamSource: string
  let privateBlob: string
  let privateSource: string
  beforeAll(async () => {
    e = await authEnv()
    teamSource = fresh('team-a')
    privateSource = fresh('private')
    ;[teamBlob, privateBlob] = await Promise.all([seedBlob(teamSource), seedBlob(privateSource)])
  })

  /** POST a mount as `authorization`, then whether the blob became visible in `repo` (HEAD as alice). */
  async function mount(authorization: string, repo: string, digest: string, from?: string) {
    const query = `mount=${digest}${from ? `&from=${from}` : ''}`
    const res = await send(e, `/v2/${repo}/blobs/uploads/?${query}`, { method: 'POST', headers: { Authorization: authorization } })
    const head = await send(e, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: { Authorization: basic('alice', PASSWORDS.alice) } })
    return { status: res.status, location: res.headers.get('location') ?? '', linked: head.status === 200 }
  }

  it('links from a repository the caller can pull', async () => {
    const repo = fresh('team-a')
    expect(await mount(PAUL, repo, teamBlob, teamSource)).toMatchObject({ status: 201, linked: true })
  })

  it('falls back to an upload, linking nothing, from a repository the caller cannot pull', async () => {
    const repo = fresh('team-a')
    const res = await mount(PAUL, repo, privateBlob, privateSource)
    expect(res).toMatchObject({ status: 202, linked: false })
    expect(res.location).toContain(`/v2/${repo}/blobs/uploads/`)
    // The same answer as for a blob that does not exist there.
    const absent = await mount(PAUL, fresh('team-a'), privateBlob, fresh('private'))
    expect(absent).toMatchObject({ status: 202, linked: false })
  })

  it('without a token, is challenged for both scopes; the token as challenged mounts (crane, oras, regctl)', async () => {
    const repo = fresh('team-a')
    const res = await send(e, `/v2/${repo}/blobs/uploads/?mount=${teamBlob}&from=${teamSource}`, { method: 'POST' })
    expect(res.status).toBe(401)
    const scope = /scope="([^"]*)"/.exec(res.headers.get('www-authenticate') ?? '')?.[1]
    expect(scope).toBe(`repository:${repo}:pull,push repository:${teamSource}:pull`)
    // The client asks for exactly that (one `scope` parameter holding both).
    const token = bearer(await tokenFor(e, PAUL, scope!))
    expect(await mount(token, repo, teamBlob, teamSource)).toMatchObject({ status: 201, linked: true })
  })

  it('with a token lacking pull on a source its holder may pull: challenged again (insufficient_scope) for both', async () => {
    const repo = fresh('team-a')
    const narrow = bearer(await tokenFor(e, PAUL, `repository:${repo}:pull,push`))
    const res = await send(e, `/v2/${repo}/blobs/uploads/?mount=${teamBlob}&from=${teamSource}`, { method: 'POST', headers: { Authorization: narrow } })
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toContain(`scope="repository:${repo}:pull,push repository:${teamSource}:pull",error="insufficient_scope"`)
    // Nothing was linked.
    const head = await send(e, `/v2/${repo}/blobs/${teamBlob}`, { method: 'HEAD', headers: { Authorization: basic('alice', PASSWORDS.alice) } })
    expect(head.status).toBe(404)
  })

  it('a caller who may not pull the source gets a plain upload session (202), never a link, and no second challenge', async () => {
    const repo = fresh('team-a')
    // The challenge names the private source; the token endpoint grants paul none of it.
    const res = await send(e, `/v2/${repo}/blobs/uploads/?mount=${privateBlob}&from=${privateSource}`, { method: 'POST' })
    const scope = /scope="([^"]*)"/.exec(res.headers.get('www-authenticate') ?? '')?.[1]
    expect(scope).toBe(`repository:${repo}:pull,push repository:${privateSource}:pull`)
    const token = bearer(await tokenFor(e, PAUL, scope!))
    const mounted = await mount(token, repo, privateBlob, privateSource)
    expect(mounted).toMatchObject({ status: 202, linked: false })
    expect(mounted.location).toContain(`/v2/${repo}/blobs/uploads/`)
  })

  it('with a token, needs the source in the token (as docker asks for it)', async () => {
    const repo = fresh('team-a')
    const withSource = bearer(await tokenFor(e, PAUL, `repository:${repo}:pull,push`, `repository:${teamSource}:pull`))
    expect(await mount(withSource, repo, teamBlob, teamSource)).toMatchObject({ status: 201, linked: true })
    // Asking for the private source in the token does not help: it is not granted.
    const asked = bearer(await tokenFor(e, PAUL, `repository:${repo}:pull,push`, `repository:${privateSource}:pull`))
    expect(await mount(asked, repo, privateBlob, privateSource)).toMatchObject({ status: 202, linked: false })
  })

  it('without `from`, links only a blob whose first repository the caller can pull', async () => {
    expect(await mount(PAUL, fresh('team-a'), teamBlob)).toMatchObject({ status: 201, linked: true })
    expect(await mount(PAUL, fresh('team-a'), privateBlob)).toMatchObject({ status: 202, linked: false })
    expect(await mount(basic('alice', PASSWORDS.alice), fresh('team-a'), privateBlob)).toMatchObject({ status: 201, linked: true })
    expect(await mount(PAUL, fresh('team-a'), 'sha256:' + 'e'.repeat(64))).toMatchObject({ status: 202, linked: false })
  })
})
