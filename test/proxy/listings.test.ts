/** Tag lists and referrers of proxied repositories (src/proxy/listings.ts). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { repoName } from '../helpers'
import { FakeUpstream, get, OCI_INDEX, OCI_MANIFEST, privateUpstream, twoEntries, UPSTREAM, upstreams } from './fake-upstream'

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

  it('keeps ?ns= in the next Link, so later pages name the upstream\'s repository, not a local one', async () => {
    const routed = upstreams({ prefix: 'hub', url: UPSTREAM, ns: ['docker.io'] })
    const remote = repoName('org')
    for (const t of ['a', 'b', 'c']) await up.image(remote, t)
    const { res, body } = await get(routed, `/v2/${remote}/tags/list?n=2&ns=docker.io`)
    expect(json(body)).toEqual({ name: remote, tags: ['a', 'b'] })
    const link = res.headers.get('Link')!
    expect(link).toBe(`</v2/${remote}/tags/list?last=b&n=2&ns=docker.io>; rel="next"`)
    const next = await get(routed, /<([^>]+)>/.exec(link)![1]!)
    expect(next.res.headers.get('OCI-Namespace')).toBe('docker.io')
    expect(json(next.body)).toEqual({ name: remote, tags: ['c'] })
  })

  it('is cached per spelling: the prefix, short-name and ns requests each get their own name and Link', async () => {
    const both = upstreams({ prefix: 'hub', url: UPSTREAM, dockerHubLibrary: true, ns: ['docker.io'] })
    const name = `n${Date.now().toString(36)}`
    for (const t of ['a', 'b', 'c']) await up.image(`library/${name}`, t)
    const spellings = [
      [`/v2/hub/${name}/tags/list?n=2`, `hub/${name}`],
      [`/v2/hub/library/${name}/tags/list?n=2`, `hub/library/${name}`],
      [`/v2/${name}/tags/list?n=2&ns=docker.io`, name],
      [`/v2/library/${name}/tags/list?n=2&ns=docker.io`, `library/${name}`],
    ] as const
    for (let round = 0; round < 2; round++) {
      for (const [path, asked] of spellings) {
        const { res, body } = await get(both, path)
        expect(json(body), path).toEqual({ name: asked, tags: ['a', 'b'] })
        expect(res.headers.get('Link'), path).toBe(`</v2/${asked}/tags/list?last=b&n=2${path.includes('ns=') ? '&ns=docker.io' : ''}>; rel="next"`)
      }
    }
    expect(up.count('GET', /\/tags\/list$/)).toBe(spellings.length)
  })

  it('is cached per upstream entry and credentials: an entry without them never gets the list another entry\'s credentials obtained', async () => {
    privateUpstream(up)
    const both = twoEntries()
    const secret = repoName('team-a')
    await up.image(secret, 'v1')
    expect(json((await get(both, `/v2/tk/${secret}/tags/list`)).body).tags).toEqual(['v1'])
    const anon = await get(both, `/v2/anon/${secret}/tags/list`)
    expect(anon.res.status).toBe(404)
    expect(new TextDecoder().decode(anon.body)).not.toContain('v1')
    // Changed credentials: asked again, not served from the edge cache the old ones filled.
    const listed = up.count('GET', /\/tags\/list$/)
    await get({ ...both, UPSTREAM_CREDENTIALS: JSON.stringify({ tk: 'admin:other' }) }, `/v2/tk/${secret}/tags/list`)
    expect(up.count('GET', /\/tags\/list$/)).toBeGreaterThan(listed)
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
