/**
 * The events layer: every visible change reports itself, whoever makes it (routes, the web UI,
 * the pull-through cache), after it is stored; pulls are counted from the answer.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { authEnv, basic, PASSWORDS } from '../auth/setup'
import { randomBlob, repoName, sha256 } from '../helpers'
import { eventsOf, send, withEndpoints, type Recorded } from './setup'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const ALL = { name: 'all', url: 'https://hooks.example.com/all', actions: ['push', 'pull', 'mount', 'delete'] }

afterEach(() => vi.restoreAllMocks())

async function blob(r: Recorded, repo: string, bytes = randomBlob(100), headers: Record<string, string> = {}): Promise<string> {
  const digest = await sha256(bytes)
  const res = await send(r.env, `/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes, headers: { 'Content-Length': String(bytes.length), ...headers } })
  expect(res.status).toBe(201)
  return digest
}

async function image(r: Recorded, repo: string, headers: Record<string, string> = {}) {
  const config = await blob(r, repo, new TextEncoder().encode(`{"architecture":"amd64","os":"linux","n":"${crypto.randomUUID()}"}`), headers)
  const layer = await blob(r, repo, randomBlob(300), headers)
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 10 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: 300 }],
  }))
  return { config, layer, manifest, digest: await sha256(manifest) }
}

const put = (r: Recorded, repo: string, ref: string, bytes: Uint8Array, headers: Record<string, string> = {}) =>
  send(r.env, `/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: bytes, headers: { 'Content-Type': OCI_MANIFEST, ...headers } })

describe('events of pushes', () => {
  it('reports a completed blob upload as push, and a manifest pushed by tag as one push with its tag', async () => {
    const r = withEndpoints([ALL])
    const repo = repoName('ev')
    const img = await image(r, repo)
    r.events.sent.length = 0
    expect((await put(r, repo, 'v1', img.manifest, { 'User-Agent': 'skopeo/1.9', 'cf-ray': '8f1c2a3b4c5d6e7f-FRA', 'cf-connecting-ip': '203.0.113.9' })).status).toBe(201)
    const [ev, ...rest] = eventsOf(r.events)
    expect(rest).toEqual([])
    expect(ev).toMatchObject({
      action: 'push',
      target: { repository: repo, digest: img.digest, tag: 'v1', mediaType: OCI_MANIFEST, size: img.manifest.length, length: img.manifest.length, url: `http://registry.test/v2/${repo}/manifests/${img.digest}` },
      request: { id: '8f1c2a3b4c5d6e7f-FRA', addr: '203.0.113.9', host: 'registry.test', method: 'PUT', useragent: 'skopeo/1.9' },
      actor: { name: 'anonymous' },
      source: { addr: 'registry.test' },
    })
    expect(ev!.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(Date.parse(ev!.timestamp)).toBeGreaterThan(Date.now() - 60_000)
  })

  it('reports blob uploads (every upload path) as push with the blob size', async () => {
    const r = withEndpoints([ALL])
    const repo = repoName('ev')
    const bytes = randomBlob(1234)
    const digest = await blob(r, repo, bytes)
    expect(eventsOf(r.events)).toMatchObject([{ action: 'push', target: { repository: repo, digest, mediaType: 'application/octet-stream', size: 1234, length: 1234 } }])
    // A session (POST, PATCH, PUT) too.
    const other = randomBlob(500)
    const post = await send(r.env, `/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    const patch = await send(r.env, post.headers.get('location')!, { method: 'PATCH', body: other, headers: { 'Content-Length': '500' } })
    expect(eventsOf(r.events)).toHaveLength(1) // nothing visible yet
    await send(r.env, `${patch.headers.get('location')}&digest=${await sha256(other)}`, { method: 'PUT' })
    expect(eventsOf(r.events)[1]).toMatchObject({ action: 'push', target: { digest: await sha256(other), size: 500 } })
  })

  it('reports a push by digest with ?tag= as one push per tag, and without tags as one untagged push', async () => {
    const r = withEndpoints([ALL])
    const repo = repoName('ev')
    const img = await image(r, repo)
    r.events.sent.length = 0
    expect((await put(r, repo, `${img.digest}?tag=a&tag=b&tag=a`, img.manifest)).status).toBe(201)
    expect(eventsOf(r.events).map((e) => [e.action, e.target.tag])).toEqual([['push', 'a'], ['push', 'b']])
    // One change, one delivery: both events in one envelope (one message).
    expect(r.events.sent).toHaveLength(1)
    r.events.sent.length = 0
    expect((await put(r, repo, img.digest, img.manifest)).status).toBe(201)
    const [untagged] = eventsOf(r.events)
    expect(untagged!.target.tag).toBeUndefined()
    expect(untagged!.target.digest).toBe(img.digest)
    // The delivery's webhook-id is the event's own id when it carries one event.
    expect(r.events.sent[0]!.id).toBe(untagged!.id)
  })

  it('reports a mount with fromRepository (and a mount without from names the blob\'s first repository)', async () => {
    const r = withEndpoints([ALL])
    const source = repoName('ev')
    const target = repoName('ev')
    const digest = await blob(r, source)
    r.events.sent.length = 0
    const res = await send(r.env, `/v2/${target}/blobs/uploads/?mount=${digest}&from=${source}`, { method: 'POST' })
    expect(res.status).toBe(201)
    expect(eventsOf(r.events)).toMatchObject([{ action: 'mount', target: { repository: target, digest, fromRepository: source } }])
    const third = repoName('ev')
    await send(r.env, `/v2/${third}/blobs/uploads/?mount=${digest}`, { method: 'POST' })
    expect(eventsOf(r.events)[1]).toMatchObject({ action: 'mount', target: { repository: third, fromRepository: source } })
  })

  it('reports nothing for a change that failed (a manifest naming an unknown blob, an upload with the wrong digest)', async () => {
    const r = withEndpoints([ALL])
    const repo = repoName('ev')
    const img = await image(r, repo)
    r.events.sent.length = 0
    const other = repoName('ev')
    expect((await put(r, other, 'v1', img.manifest)).status).toBe(400)
    const bytes = randomBlob(10)
    const wrong = await sha256(randomBlob(10))
    expect((await send(r.env, `/v2/${repo}/blobs/uploads/?digest=${wrong}`, { method: 'POST', body: bytes, headers: { 'Content-Length': '10' } })).status).toBe(400)
    expect(r.events.sent).toEqual([])
  })

  it('sends nothing at all when no endpoint wants the event (no queue call)', async () => {
    const r = withEndpoints([{ name: 'deletes', url: 'https://hooks.example.com/d', actions: ['delete'] }])
    const repo = repoName('ev')
    await image(r, repo)
    expect(r.events.calls).toBe(0)
    const none = withEndpoints([])
    await image(none, repoName('ev'))
    expect(none.events.calls).toBe(0)
  })
})

describe('events of deletes', () => {
  it('reports a tag delete with the manifest it named, and a manifest delete with the tags it removed', async () => {
    const r = withEndpoints([ALL])
    const repo = repoName('ev')
    const img = await image(r, repo)
    await put(r, repo, `${img.digest}?tag=one&tag=two&tag=three`, img.manifest)
    r.events.sent.length = 0
    expect((await send(r.env, `/v2/${repo}/manifests/one`, { method: 'DELETE' })).status).toBe(202)
    expect(eventsOf(r.events)).toMatchObject([{ action: 'delete', target: { repository: repo, tag: 'one', digest: img.digest, mediaType: OCI_MANIFEST } }])
    expect((await send(r.env, `/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' })).status).toBe(202)
    const del = eventsOf(r.events)[1]!
    expect(del).toMatchObject({ action: 'delete', target: { repository: repo, digest: img.digest, mediaType: OCI_MANIFEST } })
    expect(del.target.tags!.sort()).toEqual(['three', 'two'])
    expect(del.target.tag).toBeUndefined()
  })

  it('reports a blob deleted from a repository', async () => {
    const r = withEndpoints([ALL])
    const repo = repoName('ev')
    const digest = await blob(r, repo)
    r.events.sent.length = 0
    expect((await send(r.env, `/v2/${repo}/blobs/${digest}`, { method: 'DELETE' })).status).toBe(202)
    expect(eventsOf(r.events)).toMatchObject([{ action: 'delete', target: { repository: repo, digest, mediaType: 'application/octet-stream' } }])
  })

  it('reports nothing for a delete of what is not there', async () => {
    const r = withEndpoints([ALL])
    const repo = repoName('ev')
    await image(r, repo)
    r.events.sent.length = 0
    expect((await send(r.env, `/v2/${repo}/manifests/nope`, { method: 'DELETE' })).status).toBe(404)
    expect((await send(r.env, `/v2/${repo}/manifests/sha256:${'0'.repeat(64)}`, { method: 'DELETE' })).status).toBe(404)
    expect((await send(r.env, `/v2/${repo}/blobs/sha256:${'0'.repeat(64)}`, { method: 'DELETE' })).status).toBe(404)
    expect(r.events.sent).toEqual([])
  })

  it('reports a delete from the web UI with the viewer as actor', async () => {
    const r = withEndpoints([ALL])
    const repo = repoName('ev')
    const img = await image(r, repo)
    await put(r, repo, 'gone', img.manifest)
    r.events.sent.length = 0
    const res = await send(r.env, `/r/${repo}/-/delete`, {
      method: 'POST',
      body: 'reference=gone',
      headers: { Origin: 'http://registry.test', 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': '14' },
    })
    expect(res.status).toBe(303)
    expect(eventsOf(r.events)).toMatchObject([{ action: 'delete', target: { tag: 'gone' }, actor: { name: 'anonymous' }, request: { method: 'POST' } }])
  })
})

describe('events of pulls', () => {
  const ACCEPT = { Accept: OCI_MANIFEST }

  it('counts a manifest GET by tag and by digest, never a HEAD or a 304', async () => {
    const r = withEndpoints([ALL], { PULL_STATS: 'true' })
    const repo = repoName('ev')
    const img = await image(r, repo)
    await put(r, repo, 'v1', img.manifest)
    r.events.sent.length = 0
    expect((await send(r.env, `/v2/${repo}/manifests/v1`, { headers: ACCEPT })).status).toBe(200)
    expect((await send(r.env, `/v2/${repo}/manifests/${img.digest}`, { headers: ACCEPT })).status).toBe(200)
    expect((await send(r.env, `/v2/${repo}/manifests/v1`, { method: 'HEAD', headers: ACCEPT })).status).toBe(200)
    expect((await send(r.env, `/v2/${repo}/manifests/v1`, { headers: { ...ACCEPT, 'If-None-Match': `"${img.digest}"` } })).status).toBe(304)
    expect((await send(r.env, `/v2/${repo}/manifests/nope`, { headers: ACCEPT })).status).toBe(404)
    expect(r.pulls.sent.map((p) => [p.repo, p.digest])).toEqual([[repo, img.digest], [repo, img.digest]])
    expect(eventsOf(r.events).map((e) => [e.action, e.target.tag ?? null, e.request!.method])).toEqual([['pull', 'v1', 'GET'], ['pull', null, 'GET']])
    expect(eventsOf(r.events)[0]!.target).toMatchObject({ digest: img.digest, mediaType: OCI_MANIFEST, size: img.manifest.length })
  })

  it('neither counts nor reports pulls by default (PULL_STATS off, actions without pull)', async () => {
    const r = withEndpoints([{ name: 'default', url: 'https://hooks.example.com/d' }])
    const repo = repoName('ev')
    const img = await image(r, repo)
    await put(r, repo, 'v1', img.manifest)
    r.events.sent.length = 0
    r.events.calls = 0
    expect((await send(r.env, `/v2/${repo}/manifests/v1`, { headers: ACCEPT })).status).toBe(200)
    expect(r.pulls.calls).toBe(0)
    expect(r.events.calls).toBe(0)
  })
})

describe('who and what', () => {
  it('names the signed-in identity as actor (a user, a robot), anonymous otherwise', async () => {
    const endpoints = withEndpoints([ALL])
    const env = await authEnv({ NOTIFICATIONS: endpoints.env.NOTIFICATIONS, NOTIFICATION_SECRETS: endpoints.env.NOTIFICATION_SECRETS, EVENTS: endpoints.env.EVENTS })
    const r = { ...endpoints, env }
    const repo = repoName('team-a')
    const bytes = randomBlob(40)
    const digest = await sha256(bytes)
    const push = (auth: string) => send(env, `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: 'POST', body: bytes, headers: { 'Content-Length': '40', Authorization: auth },
    })
    expect((await push(basic('paul', PASSWORDS.paul))).status).toBe(201)
    expect((await push(basic('robot:ci', 'erbt__62vPg2e1WbvDblQ8wKjsLZfqBXMxJlbjSHMb8NA3Ok'))).status).toBe(201)
    expect(eventsOf(r.events).map((e) => e.actor.name)).toEqual(['paul', 'robot:ci'])
  })

  it('fails closed on a bad setting: every request answers 500 and nothing is stored', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const r = withEndpoints([{ name: 'x', url: 'http://example.com/not-https' }])
    const repo = repoName('ev')
    const bytes = randomBlob(10)
    const digest = await sha256(bytes)
    const res = await send(r.env, `/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes, headers: { 'Content-Length': '10' } })
    expect(res.status).toBe(500)
    expect((await send(r.env, '/v2/')).status).toBe(500)
    const good = withEndpoints([ALL])
    expect((await send(good.env, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
  })

  it('keeps the change when the queue refuses, and logs the events in full', async () => {
    const r = withEndpoints([ALL])
    const repo = repoName('ev')
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    r.events.refuse = 2
    const bytes = randomBlob(10)
    const digest = await blob(r, repo, bytes)
    expect(r.events.sent).toEqual([])
    const logged = error.mock.calls.map((c) => c[0] as { event?: string; events?: { target: { digest: string } }[] }).find((l) => l.event === 'events.not-queued')!
    expect(logged.events![0]!.target.digest).toBe(digest)
    expect((await send(r.env, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200)
    // One refusal only: the second try goes through.
    r.events.refuse = 1
    await blob(r, repo)
    expect(r.events.sent).toHaveLength(1)
  })
})
