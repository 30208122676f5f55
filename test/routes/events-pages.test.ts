/**
 * Events seen by people: GET /admin/events (JSON, admins) and the web UI's Events page (admins),
 * and pulls on the repository and manifest pages (PULL_STATS).
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { authEnv, basic, PASSWORDS, RULES, send as sendAuth } from '../auth/setup'
import { readDeliveryLog } from '../../src/storage/deliveries'
import { randomBlob, repoName, sha256 } from '../helpers'
import { consumeBatch, Receivers, send, withEndpoints } from '../events/setup'

const OCI = 'application/vnd.oci.image.manifest.v1+json'
const LOCAL = 'http://localhost'
afterEach(() => vi.restoreAllMocks())

async function tagged(env: Parameters<typeof send>[0], repo: string, tag: string): Promise<string> {
  const layer = randomBlob(60)
  const digest = await sha256(layer)
  await send(env, `/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: layer, headers: { 'Content-Length': '60' } })
  const m = JSON.stringify({ schemaVersion: 2, mediaType: OCI, config: { mediaType: 'application/vnd.oci.empty.v1+json', digest, size: 60 }, layers: [] })
  const res = await send(env, `/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: m, headers: { 'Content-Type': OCI } })
  expect(res.status).toBe(201)
  return res.headers.get('docker-content-digest')!
}

describe('GET /admin/events', () => {
  it('lists each endpoint with its last deliveries and dead letters, its URL without the query', async () => {
    const receivers = new Receivers().install()
    receivers.answer = (url) => (url.startsWith('https://down.example.com') ? 503 : 200)
    const r = withEndpoints([
      { name: 'up-hook', url: 'https://up.example.com/hook?token=s3cret', format: 'cloudevents' },
      { name: 'down-hook', url: 'https://down.example.com/hook', maxRetries: 0 },
    ])
    const repo = repoName('adm')
    await tagged(r.env, repo, 'v1')
    await consumeBatch(r.env, 'edge-registry-events', r.events.sent.map((body) => ({ body })))
    const res = await send(r.env, `${LOCAL}/admin/events`)
    expect(res.status).toBe(200)
    const body = (await res.json()) as { endpoints: { name: string; url: string; deadLetters: number; deliveries: { id: string; status: number; attempts: number; time: string; outcome: string }[] }[] }
    const [up, down] = body.endpoints
    expect(up).toMatchObject({ name: 'up-hook', url: 'https://up.example.com/hook?…', format: 'cloudevents', deadLetters: 0 })
    expect(JSON.stringify(body)).not.toContain('s3cret')
    expect(up!.deliveries.length).toBe(2) // blob push, manifest push
    expect(up!.deliveries.every((d) => d.status === 200 && d.attempts === 1 && d.outcome === 'delivered' && Date.parse(d.time) > 0)).toBe(true)
    // Each failed its only attempt (maxRetries 0): dead letters.
    expect(down).toMatchObject({ name: 'down-hook', deadLetters: 2 })
    expect(down!.deliveries.map((d) => [d.status, d.outcome])).toEqual([[503, 'dead'], [503, 'dead']])
    expect(r.dlq.sent).toHaveLength(2)
  })

  it('is for admins only', async () => {
    const r = withEndpoints([])
    expect((await send(r.env, 'https://registry.example.com/admin/events')).status).toBe(403)
    const bindings = await authEnv({ AUTH_RULES: JSON.stringify([...RULES, { admin: ['alice'] }]) })
    expect((await sendAuth(bindings, '/admin/events', { headers: { Authorization: basic('alice', PASSWORDS.alice) } })).status).toBe(200)
    expect((await sendAuth(bindings, '/admin/events', { headers: { Authorization: basic('rita', PASSWORDS.rita) } })).status).toBe(403)
    expect((await sendAuth(bindings, '/admin/events')).status).toBe(401)
  })
})

describe('the web UI', () => {
  it('shows admins the Events page with each endpoint\'s deliveries; others get no link and a 404', async () => {
    const receivers = new Receivers().install()
    receivers.answer = () => 200
    const r = withEndpoints([{ name: 'ui-hook', url: 'https://ui.example.com/hook' }])
    const repo = repoName('uiev')
    await tagged(r.env, repo, 'v1')
    await consumeBatch(r.env, 'edge-registry-events', r.events.sent.map((body) => ({ body })))
    const [latest] = (await readDeliveryLog(r.env, 'ui-hook')).deliveries
    const page = await send(r.env, `${LOCAL}/events`)
    expect(page.status).toBe(200)
    const text = await page.text()
    expect(text).toContain('<h2 id="ep-ui-hook">ui-hook</h2>')
    expect(text).toContain(latest!.id)
    expect(text).toContain('delivered')
    expect(await send(r.env, `${LOCAL}/`).then((x) => x.text())).toContain('href="/events"')
    // An open registry's admin pages answer on localhost only, as /admin/ does.
    const remote = await send(r.env, 'https://registry.example.com/events')
    expect(remote.status).toBe(404)
    expect(await send(r.env, 'https://registry.example.com/').then((x) => x.text())).not.toContain('href="/events"')
  })

  it('signed in: the Events page for users the admin rule names only', async () => {
    const bindings = await authEnv({ AUTH_RULES: JSON.stringify([...RULES, { admin: ['alice'] }]) })
    const signIn = async (user: 'alice' | 'rita') => {
      const body = new URLSearchParams({ username: user, password: PASSWORDS[user] }).toString()
      const res = await sendAuth(bindings, '/sign-in', {
        method: 'POST', body, redirect: 'manual',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(body.length), Origin: 'http://registry.test' },
      })
      return res.headers.get('set-cookie')!.split(';')[0]!
    }
    const alice = await sendAuth(bindings, '/events', { headers: { Cookie: await signIn('alice') } })
    expect(alice.status).toBe(200)
    const rita = await sendAuth(bindings, '/events', { headers: { Cookie: await signIn('rita') } })
    expect(rita.status).toBe(404)
  })

  it('shows pulls and the last pull on the repository and manifest pages when PULL_STATS is on', async () => {
    const r = withEndpoints([], { PULL_STATS: 'true' })
    const repo = repoName('uipull')
    const digest = await tagged(r.env, repo, 'v1')
    await tagged(r.env, repo, 'never')
    for (let i = 0; i < 3; i++) await send(r.env, `/v2/${repo}/manifests/v1`, { headers: { Accept: OCI } })
    await consumeBatch(r.env, 'edge-registry-pulls', r.pulls.sent.map((body) => ({ body })))
    const repoPage = await (await send(r.env, `/r/${repo}`)).text()
    expect(repoPage).toContain('<th scope="col" class="num">Pulls</th><th scope="col">Last pulled</th>')
    expect(repoPage).toMatch(/<td class="num">3<\/td><td><time datetime="[^"]+">/)
    expect(repoPage).toContain('<td class="num">0</td><td><span class="muted">never</span></td>')
    const manifestPage = await (await send(r.env, `/r/${repo}/-/manifest/${digest}`)).text()
    expect(manifestPage).toMatch(/<dt>Pulls<\/dt><dd>3<\/dd><dt>Last pulled<\/dt><dd><time /)
    // Off: no column, no statistics read.
    const off = withEndpoints([])
    expect(await (await send(off.env, `/r/${repo}`)).text()).not.toContain('Last pulled')
  })
})
