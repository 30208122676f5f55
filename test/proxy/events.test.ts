/**
 * The pull-through cache and events: a fill is a `push` by actor `proxy` (reported by the same
 * layer as a client's push), a client's pull of a proxied repository is that client's `pull`,
 * and PULL_STATS counts it under the local repository.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { repoName } from '../helpers'
import { eventsOf, withEndpoints } from '../events/setup'
import { FakeUpstream, get, OCI_MANIFEST, UPSTREAM, upstreams } from './fake-upstream'

let up: FakeUpstream
beforeEach(() => {
  up = new FakeUpstream().install()
})
afterEach(() => vi.restoreAllMocks())

describe('a proxied pull', () => {
  it('reports the fill as pushes by proxy (manifest, tag, blobs) and the pull as the client\'s; counted under the local name', async () => {
    const r = withEndpoints([{ name: 'all', url: 'https://hooks.example.com/x', actions: ['push', 'pull', 'mount', 'delete'] }], {
      PULL_STATS: 'true', ...upstreams({ prefix: 'cache', url: UPSTREAM, tagTtlSeconds: 300 }),
    })
    const remote = repoName('app')
    const local = `cache/${remote}`
    const img = await up.image(remote, 'v1')
    const manifest = await get(r.env, `/v2/cache/${remote}/manifests/v1`, { headers: { Accept: OCI_MANIFEST } })
    expect(manifest.res.status).toBe(200)
    for (const d of [img.config, ...img.layers]) expect((await get(r.env, `/v2/cache/${remote}/blobs/${d}`)).res.status).toBe(200)
    // Served from the cache now: a pull, no fill.
    await get(r.env, `/v2/cache/${remote}/manifests/v1`, { headers: { Accept: OCI_MANIFEST } })

    const events = eventsOf(r.events)
    const fills = events.filter((e) => e.actor.name === 'proxy')
    expect(fills.every((e) => e.action === 'push' && e.target.repository === local)).toBe(true)
    expect(fills.filter((e) => e.target.digest === img.digest).map((e) => e.target.tag ?? null).sort()).toEqual([null, 'v1'].sort())
    expect(fills.filter((e) => e.target.mediaType === 'application/octet-stream').map((e) => e.target.digest).sort())
      .toEqual([img.config, ...img.layers].sort())
    const pulls = events.filter((e) => e.action === 'pull')
    expect(pulls.map((e) => [e.actor.name, e.target.repository, e.target.tag, e.target.digest])).toEqual([
      ['anonymous', local, 'v1', img.digest], ['anonymous', local, 'v1', img.digest],
    ])
    expect(r.pulls.sent.map((p) => [p.repo, p.digest])).toEqual([[local, img.digest], [local, img.digest]])
  })

  it('reports a revalidated tag that did not move as nothing', async () => {
    const r = withEndpoints([{ name: 'pushes', url: 'https://hooks.example.com/x' }], upstreams({ prefix: 'cache', url: UPSTREAM, tagTtlSeconds: 0 }))
    const remote = repoName('app')
    await up.image(remote, 'v1')
    await get(r.env, `/v2/cache/${remote}/manifests/v1`, { headers: { Accept: OCI_MANIFEST } })
    const before = eventsOf(r.events).length
    await get(r.env, `/v2/cache/${remote}/manifests/v1`, { headers: { Accept: OCI_MANIFEST } })
    expect(up.count('HEAD', /\/manifests\//)).toBe(1)
    expect(eventsOf(r.events).length).toBe(before)
    // Moved upstream: the new manifest and the tag are reported.
    const moved = await up.image(remote, 'v1')
    await get(r.env, `/v2/cache/${remote}/manifests/v1`, { headers: { Accept: OCI_MANIFEST } })
    expect(eventsOf(r.events).slice(before).map((e) => [e.target.digest, e.target.tag ?? null])).toEqual([[moved.digest, null], [moved.digest, 'v1']])
  })
})
