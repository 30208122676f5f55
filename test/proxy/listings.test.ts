/** Tag lists and referrers of proxied repositories (src/proxy/listings.ts). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { repoName } from '../helpers'
import { FakeUpstream, get, OCI_INDEX, OCI_MANIFEST, UPSTREAM, upstreams } from './fake-upstream'

let up: FakeUpstream
beforeEach(() => {
  up = new FakeUpstream().install()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const hub = upstreams({ prefix: 'hub', url: UPSTREAM, dockerHubLibrary: true })
const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b))

describe('tags/list of a proxied repository', () => {
  it('is the upstream\'s list under the name the client asked for, briefly cached', async () => {
    const name = `n${Date.now().toString(36)}`
    for (const t of ['b', 'a', 'c']) await up.image(`library/${name}`, t)
    const first = await get(hub, `/v2/hub/${name}/tags/list`)
    expect(first.res.status).toBe(200)
    expect(json(first.body)).toEqual({ name: `hub/${name}`, tags: ['a', 'b', 'c'] })
    const again = await get(hub, `/v2/hub/${name}/tags/list`)
    expect(json(again.body).tags).toEqual(['a', 'b', 'c'])
    expect(up.count('GET', /\/tags\/list$/)).toBe(1)
  })

  it('passes pagination on and points the next Link at this registry', async () => {
    const remote = repoName('org')
    for (const t of ['a', 'b', 'c']) await up.image(remote, t)
    const { res, body } = await get(hub, `/v2/hub/${remote}/tags/list?n=2`)
    expect(json(body).tags).toEqual(['a', 'b'])
    expect(res.headers.get('Link')).toBe(`</v2/hub/${remote}/tags/list?last=b&n=2>; rel="next"`)
  })

  it('the upstream down: the tags cached so far, with a Warning', async () => {
    const remote = repoName('org')
    await up.image(remote, 'v1')
    await up.image(remote, 'v2')
    await get(hub, `/v2/hub/${remote}/manifests/v1`)
    up.fault = { match: /\/tags\/list$/, fault: { kind: 'down' } }
    const { res, body } = await get(hub, `/v2/hub/${remote}/tags/list`)
    expect(res.status).toBe(200)
    expect(json(body).tags).toEqual(['v1'])
    expect(res.headers.get('Warning')).toMatch(/^110 /)
  })

  it('is NAME_UNKNOWN when neither the upstream nor the cache knows the repository', async () => {
    const { res, body } = await get(hub, `/v2/hub/${repoName('org')}/tags/list`)
    expect(res.status).toBe(404)
    expect(json(body).errors[0].code).toBe('NAME_UNKNOWN')
  })
})

describe('referrers of a proxied repository', () => {
  it('is the upstream\'s index, with the exact index Content-Type', async () => {
    const remote = repoName('org')
    const img = await up.image(remote, 'v1')
    const sig = { mediaType: OCI_MANIFEST, digest: `sha256:${'5'.repeat(64)}`, size: 10, artifactType: 'application/vnd.example.sig' }
    up.referrers.set(img.digest, [sig])
    const { res, body } = await get(hub, `/v2/hub/${remote}/referrers/${img.digest}`)
    expect(res.headers.get('Content-Type')).toBe(OCI_INDEX)
    expect(json(body)).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [sig] })
  })

  it('an upstream without the referrers API: an empty index', async () => {
    const { res, body } = await get(hub, `/v2/hub/${repoName('org')}/referrers/sha256:${'6'.repeat(64)}`)
    expect(res.status).toBe(200)
    expect(json(body).manifests).toEqual([])
  })
})
