/** The proxy layer (src/proxy/layer.ts): proxied namespaces are read-only, allow-listed, under AUTH_RULES, in the catalog. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/env'
import { pushBlob, randomBlob, repoName } from '../helpers'
import { authEnv, basic } from '../auth/setup'
import { FakeUpstream, get, UPSTREAM, upstreams } from './fake-upstream'
import { pushImage } from '../gc/setup'

let up: FakeUpstream
beforeEach(() => {
  up = new FakeUpstream().install()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const hub = upstreams({ prefix: 'hub', url: UPSTREAM, host: 'mirror.test' })
const errors = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)).errors as { code: string; detail: unknown }[]

describe('writes to a proxied namespace', () => {
  it.each([
    ['starting an upload', 'POST', '/v2/hub/org/app/blobs/uploads/'],
    ['mounting a blob into it', 'POST', `/v2/hub/org/app/blobs/uploads/?mount=sha256:${'a'.repeat(64)}&from=team/app`],
    ['putting a manifest', 'PUT', '/v2/hub/org/app/manifests/v1'],
    ['deleting a manifest', 'DELETE', '/v2/hub/org/app/manifests/v1'],
    ['deleting a blob', 'DELETE', `/v2/hub/org/app/blobs/sha256:${'a'.repeat(64)}`],
    ['pushing in host mode', 'POST', 'http://mirror.test/v2/org/app/blobs/uploads/'],
  ])('%s: 405 UNSUPPORTED naming the namespace as a read-only cache, never the upstream\'s URL', async (_name, method, path) => {
    const { res, body } = await get(hub, path, { method, body: method === 'PUT' ? '{}' : undefined })
    expect(res.status).toBe(405)
    const [e] = errors(body)
    expect(e!.code).toBe('UNSUPPORTED')
    expect(String(e!.detail)).toBe('hub/ is a read-only cache of an upstream registry: push to the upstream instead')
    expect(new TextDecoder().decode(body)).not.toContain('upstream.test')
    expect(up.seen).toEqual([])
  })

  it('with auth on, authenticates first: anonymous 401, a user without push 403, one with push 405', async () => {
    const settings = { ...(await authEnv()), ...hub, AUTH_RULES: JSON.stringify([
      { repos: 'hub/*', anonymous: ['pull'], users: ['rita'], actions: ['pull'] },
      { repos: 'hub/*', users: ['paul'], actions: ['pull', 'push', 'delete'] },
    ]) }
    const path = '/v2/hub/org/app/blobs/uploads/'
    const anonymous = await get(settings, path, { method: 'POST' })
    expect(anonymous.res.status).toBe(401)
    expect(anonymous.res.headers.get('WWW-Authenticate')).toContain('scope="repository:hub/org/app:pull,push"')
    expect(new TextDecoder().decode(anonymous.body)).not.toContain('upstream.test')
    expect((await get(settings, path, { method: 'POST', headers: { Authorization: basic('rita', 'rita-reads') } })).res.status).toBe(403)
    const pusher = await get(settings, path, { method: 'POST', headers: { Authorization: basic('paul', 'paul-pushes') } })
    expect(pusher.res.status).toBe(405)
    expect(errors(pusher.body)[0]!.detail).toBe('hub/ is a read-only cache of an upstream registry: push to the upstream instead')
    const del = await get(settings, '/v2/hub/org/app/manifests/v1', { method: 'DELETE' })
    expect(del.res.status).toBe(401)
    expect(up.seen).toEqual([])
  })

  it('leaves pushes elsewhere alone', async () => {
    expect(await pushBlob(repoName('team'), randomBlob(100))).toMatch(/^sha256:/)
  })
})

describe('the allow-list', () => {
  const listed = upstreams({ prefix: 'hub', url: UPSTREAM, repositories: ['org/*'] })

  it('lets listed repositories through', async () => {
    const remote = `org/${repoName('app').replace('/', '-')}`
    const img = await up.image(remote, 'v1')
    const { res } = await get(listed, `/v2/hub/${remote}/manifests/v1`)
    expect(res.headers.get('Docker-Content-Digest')).toBe(img.digest)
  })

  it('refuses others with NAME_UNKNOWN, without asking the upstream', async () => {
    const { res, body } = await get(listed, '/v2/hub/other/app/manifests/v1')
    expect(res.status).toBe(404)
    expect(errors(body)[0]!.code).toBe('NAME_UNKNOWN')
    expect(up.seen).toEqual([])
  })
})

describe('AUTH_RULES on proxied repositories', () => {
  const withAuth = async (rules: unknown[]): Promise<Partial<Env>> => ({ ...(await authEnv()), ...hub, AUTH_RULES: JSON.stringify(rules) })

  it('apply to the local name: anonymous pulls need a rule for hub/*', async () => {
    const remote = repoName('org')
    await up.image(remote, 'v1')
    const closed = await get(await withAuth([{ repos: 'team-a/*', users: ['rita'], actions: ['pull'] }]), `/v2/hub/${remote}/manifests/v1`)
    expect(closed.res.status).toBe(401)
    expect(closed.res.headers.get('WWW-Authenticate')).toContain(`scope="repository:hub/${remote}:pull"`)
    expect(up.seen).toEqual([])
    const open = await get(await withAuth([{ repos: 'hub/*', anonymous: ['pull'] }]), `/v2/hub/${remote}/manifests/v1`)
    expect(open.res.status).toBe(200)
  })

  it('a token asked for the name as the client sees it (host mode, short Docker Hub name) is granted for the local name', async () => {
    const name = `n${Date.now().toString(36)}`
    await up.image(`library/${name}`, 'v1')
    const settings = { ...(await authEnv()), ...upstreams({ prefix: 'hub', host: 'mirror.test', url: UPSTREAM, dockerHubLibrary: true }), AUTH_RULES: JSON.stringify([{ repos: 'hub/*', anonymous: ['pull'] }]) }
    const challenge = await get(settings, `http://mirror.test/v2/${name}/manifests/v1`, { headers: { Authorization: 'Bearer x' } })
    expect(challenge.res.status).toBe(401)
    const token = await get(settings, `http://mirror.test/token?service=mirror.test&scope=repository:${name}:pull`)
    const { token: jwt, scope } = JSON.parse(new TextDecoder().decode(token.body)) as { token: string; scope: string }
    expect(scope).toBe(`repository:hub/library/${name}:pull`)
    const { res } = await get(settings, `http://mirror.test/v2/${name}/manifests/v1`, { headers: { Authorization: `Bearer ${jwt}` } })
    expect(res.status).toBe(200)
  })

  it('a client asking /token for exactly the challenge\'s scope (crane, containerd) pulls through a host-mode mirror', async () => {
    const name = `n${Date.now().toString(36)}`
    await up.image(`library/${name}`, 'v1')
    const settings = { ...(await authEnv()), ...upstreams({ prefix: 'hub', host: 'mirror.test', url: UPSTREAM, dockerHubLibrary: true }), AUTH_RULES: JSON.stringify([{ repos: 'hub/*', anonymous: ['pull'] }]) }
    const challenge = await get(settings, `http://mirror.test/v2/${name}/manifests/v1`, { headers: { Authorization: 'Bearer x' } })
    expect(challenge.res.status).toBe(401)
    const asked = /scope="([^"]+)"/.exec(challenge.res.headers.get('WWW-Authenticate') ?? '')![1]!
    const token = await get(settings, `http://mirror.test/token?service=mirror.test&scope=${encodeURIComponent(asked)}`)
    const { token: jwt, scope } = JSON.parse(new TextDecoder().decode(token.body)) as { token: string; scope: string }
    expect(scope).toBe(`repository:hub/library/${name}:pull`)
    const { res } = await get(settings, `http://mirror.test/v2/${name}/manifests/v1`, { headers: { Authorization: `Bearer ${jwt}` } })
    expect(res.status).toBe(200)
  })

  it('a signed-in user without a rule for the repository is DENIED', async () => {
    const remote = repoName('org')
    await up.image(remote, 'v1')
    const settings = await withAuth([{ repos: 'team-a/*', users: ['rita'], actions: ['pull'] }])
    const { res } = await get(settings, `/v2/hub/${remote}/manifests/v1`, { headers: { Authorization: basic('rita', 'rita-reads') } })
    expect(res.status).toBe(403)
  })
})

describe('mounting from a proxied repository', () => {
  it('a Docker Hub short name in `from` (hub/nginx) mounts from hub/library/nginx, with the token /token gave for it', async () => {
    const name = `n${Date.now().toString(36)}`
    const img = await up.image(`library/${name}`, 'v1')
    const settings = { ...(await authEnv()), ...upstreams({ prefix: 'hub', url: UPSTREAM, dockerHubLibrary: true }), AUTH_RULES: JSON.stringify([
      { repos: 'hub/*', anonymous: ['pull'] },
      { repos: 'team-a/*', users: ['paul'], actions: ['pull', 'push'] },
    ]) }
    expect((await get(settings, `/v2/hub/${name}/blobs/${img.config}`)).res.status).toBe(200)
    // docker asks /token for its own names: the target's push and the source's pull.
    const target = repoName('team-a')
    const token = await get(settings, `/token?service=registry.test&scope=repository:${target}:pull,push&scope=repository:hub/${name}:pull`, {
      headers: { Authorization: basic('paul', 'paul-pushes') },
    })
    const { token: jwt } = JSON.parse(new TextDecoder().decode(token.body)) as { token: string }
    const mount = await get(settings, `/v2/${target}/blobs/uploads/?mount=${img.config}&from=hub/${name}`, {
      method: 'POST', headers: { Authorization: `Bearer ${jwt}` },
    })
    expect(mount.res.status).toBe(201)
    expect(mount.res.headers.get('Location')).toBe(`/v2/${target}/blobs/${img.config}`)
  })
})

describe('the catalog', () => {
  it('lists proxied repositories that have content cached', async () => {
    const remote = repoName('cat')
    await up.image(remote, 'v1')
    await get(hub, `/v2/hub/${remote}/manifests/v1`)
    const { body } = await get(hub, `/v2/_catalog?n=1000&last=hub/${remote.slice(0, -1)}`)
    expect(JSON.parse(new TextDecoder().decode(body)).repositories).toContain(`hub/${remote}`)
  })

  it('on a mirror host lists that mirror\'s repositories by the names that pull them there, and no local one', async () => {
    const remote = repoName('cat')
    await up.image(remote, 'v1')
    await get(hub, `/v2/hub/${remote}/manifests/v1`)
    const local = await pushImage(repoName('cat'), 'v1')
    const all = JSON.parse(new TextDecoder().decode((await get(hub, '/v2/_catalog?n=10000')).body)).repositories as string[]
    const mirrored = JSON.parse(new TextDecoder().decode((await get(hub, 'http://mirror.test/v2/_catalog?n=10000')).body)).repositories as string[]
    expect(mirrored).toContain(remote)
    expect(mirrored.every((n) => all.includes(`hub/${n}`))).toBe(true)
    expect(all).toContain(local.repo)
    expect(mirrored.length).toBe(all.filter((n) => n.startsWith('hub/')).length)
    // Its pull command on the mirror host would pull the upstream's image of that name instead.
    expect(mirrored).not.toContain(local.repo)
    // Paginated by the mirror's names.
    const page = await get(hub, 'http://mirror.test/v2/_catalog?n=1')
    const first = JSON.parse(new TextDecoder().decode(page.body)).repositories as string[]
    expect(first).toEqual([mirrored[0]])
    if (mirrored.length > 1) {
      expect(page.res.headers.get('Link')).toBe(`</v2/_catalog?n=1&last=${encodeURIComponent(mirrored[0]!)}>; rel="next"`)
      const next = await get(hub, `http://mirror.test/v2/_catalog?n=1&last=${mirrored[0]}`)
      expect(JSON.parse(new TextDecoder().decode(next.body)).repositories).toEqual([mirrored[1]])
    }
  })

  it('the web UI on a mirror host shows no repository (its pull commands would pull the upstream\'s image)', async () => {
    const local = await pushImage(repoName('ui'), 'v1')
    const home = await get(hub, 'http://mirror.test/')
    const page = new TextDecoder().decode(home.body)
    expect(home.res.status).toBe(404)
    expect(page).toContain('pull-through mirror')
    expect(page).not.toContain(local.repo)
    const repo = await get(hub, `http://mirror.test/r/${local.repo}`)
    expect(repo.res.status).toBe(404)
    expect(new TextDecoder().decode(repo.body)).not.toContain('docker pull')
    // The registry's own hostname is unchanged.
    expect((await get(hub, `/r/${local.repo}`)).res.status).toBe(200)
  })

  it('a trailing dot on the mirror host\'s name (a fully qualified name) is the same mirror', async () => {
    const remote = repoName('org')
    const img = await up.image(remote, 'v1')
    const { res } = await get(hub, `http://mirror.test./v2/${remote}/manifests/v1`)
    expect(res.status).toBe(200)
    expect(res.headers.get('Docker-Content-Digest')).toBe(img.digest)
  })
})
