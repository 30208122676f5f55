/**
 * The web UI through the worker: pages at /, what they show and hide, CSRF-safe deletes,
 * sign-in sessions, and the catalog filtered to what a signed-in caller may pull.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { basic, authEnv, open, PASSWORDS, SECRET, SERVICE, send, tokenFor, fresh } from '../auth/setup'
import { SESSION_COOKIE } from '../../src/auth/session'
import { issueRefreshToken, issueSessionToken } from '../../src/auth/tokens'
import type { Env } from '../../src/env'
import { putReport, type GcReport } from '../../src/storage/gc-reports'
import { api, build, index, MT, ociArtifact, ociImage, push, pushBlobOf, tagsOf, type Built } from '../manifests/fixtures'
import { randomBlob } from '../helpers'
import { formatBytes } from '../../src/ui/format'

const EVIL = '<script>alert(1)</script>'

/** Bindings that record each R2 and KV list call's options. */
function listing(e: Env): { env: Env; r2: R2ListOptions[]; kv: KVNamespaceListOptions[] } {
  const r2: R2ListOptions[] = []
  const kv: KVNamespaceListOptions[] = []
  const wrap = <T extends object>(target: T, log: unknown[]): T => new Proxy(target, {
    get(t, prop) {
      const v = Reflect.get(t, prop) as unknown
      if (typeof v !== 'function') return v
      return prop === 'list' ? (o: unknown) => (log.push(o ?? {}), v.call(t, o)) : v.bind(t)
    },
  })
  return { env: { ...e, BLOBS: wrap(e.BLOBS, r2), LINKS: wrap(e.LINKS, kv) }, r2, kv }
}

/** An OCI image whose config carries labels, ports, entrypoint and history (config and layers pushed). */
async function labelledImage(repo: string, labels: Record<string, string>): Promise<Built> {
  const config = await pushBlobOf(repo, MT.ociConfig, JSON.stringify({
    os: 'linux', architecture: 'amd64', created: '2026-03-04T05:06:07Z',
    config: { Entrypoint: ['/app'], Cmd: ['serve'], Labels: labels, ExposedPorts: { '8080/tcp': {} } },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [{ created_by: 'COPY app /app' }],
  }))
  const layer = await pushBlobOf(repo, MT.ociLayer, randomBlob(3000))
  return build({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [layer] })
}

const page = async (path: string, init?: RequestInit, e?: Env) => {
  const res = e ? await send(e, path, init) : await api(path, init)
  return { res, text: await res.text() }
}

/** A form POST as the browser sends it from one of our pages. */
const form = (fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit => {
  const body = new URLSearchParams(fields).toString()
  return {
    method: 'POST',
    body,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(body.length), Origin: 'http://registry.test', 'Sec-Fetch-Site': 'same-origin', ...headers },
    redirect: 'manual',
  }
}

describe('web UI, open registry', () => {
  let repo: string
  let image: Built
  beforeAll(async () => {
    repo = fresh('uitest')
    image = await labelledImage(repo, { evil: EVIL, 'org.opencontainers.image.title': 'demo' })
    await push(repo, 'v1', image)
    await push(repo, 'v2', image)
  })

  it('serves the repositories page at / as HTML with a strict CSP, private and uncached', async () => {
    const { res, text } = await page(`/?q=${encodeURIComponent(repo)}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'")
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(text).toContain(`<a href="/r/${repo}">${repo}</a>`)
    // Tag count and size from the tag records: two tags, one manifest, counted once.
    expect(text).toContain(`<td class="num">2</td><td class="num">`)
  })

  it('counts a layer two tags share once in a repository\'s size, and reads at most 2 KV lists per repository shown', async () => {
    const shared = fresh('uishared')
    const one = await ociImage(shared, { layers: 1 })
    const two = await build({ ...JSON.parse(one.text), config: await pushBlobOf(shared, MT.ociConfig, '{"architecture":"arm64","os":"linux"}') })
    await push(shared, 'a', one)
    await push(shared, 'b', two)
    const doc = JSON.parse(one.text) as { config: { size: number }; layers: { size: number }[] }
    const other = JSON.parse(two.text) as { config: { size: number } }
    const distinct = doc.config.size + doc.layers[0]!.size + other.config.size // the layer once
    const m = listing(open)
    const { text } = await page(`/?q=${encodeURIComponent(shared)}`, undefined, m.env)
    expect(text).toContain(`<td class="num">2</td><td class="num">${formatBytes(distinct)}</td>`)
    expect(m.kv.length).toBeLessThanOrEqual(2)
  })

  it('shows a page of 50 repositories for at most 1 R2 list per 1,000 names and 2 KV lists per row', async () => {
    const m = listing(open)
    const { text } = await page('/', undefined, m.env)
    const rows = (text.match(/<tr data-name=/g) ?? []).length
    expect(rows).toBeGreaterThan(0)
    expect(rows).toBeLessThanOrEqual(50)
    expect(m.kv.length).toBeLessThanOrEqual(2 * rows)
    expect(m.kv.every((o) => /^repos\/.+\+(tags\/)?$/.test(o.prefix ?? ''))).toBe(true)
    expect(m.r2.length).toBe(1)
  })

  it('filters repositories by a part of the name, and pages after a name', async () => {
    const other = fresh('uitest')
    await push(other, 'v1', await ociImage(other))
    const both = await page(`/?q=uitest/`)
    expect(both.text).toContain(repo)
    expect(both.text).toContain(other)
    const after = await page(`/?q=uitest/&last=${encodeURIComponent(repo)}`)
    expect(after.text).not.toContain(`>${repo}<`)
    expect(after.text).toContain(other)
    expect((await page(`/?q=${encodeURIComponent(other)}`)).text).not.toContain(`>${repo}<`)
  })

  it('lists tags with short digest, type, size and push time', async () => {
    const { res, text } = await page(`/r/${repo}?sort=tag&order=asc`)
    expect(res.status).toBe(200)
    expect(text.indexOf('>v1</a>')).toBeLessThan(text.indexOf('>v2</a>'))
    expect(text).toContain(image.digest.slice(7, 19))
    expect(text).toContain('OCI image')
    expect(text).toMatch(/<time datetime="\d{4}-\d\d-\d\dT/)
    expect(text).toContain(`value="docker pull registry.test/${repo}:`)
    expect(text).toContain('Delete<span class="sr"> tag v1</span>')
  })

  it('shows an image\'s config with a <script> label as text', async () => {
    const { res, text } = await page(`/r/${repo}/-/manifest/v1`)
    expect(res.status).toBe(200)
    expect(text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(text).not.toContain(EVIL)
    expect(text).toContain('8080/tcp')
    expect(text).toContain('COPY app /app')
    expect(text).toContain('2026-03-04T05:06:07Z')
    expect(text).toContain(image.digest)
  })

  it('shows an index\'s platforms (recorded with the tag) linking to each child', async () => {
    const r = fresh('uitest')
    const amd = await ociImage(r, { platform: { os: 'linux', architecture: 'amd64' } })
    const arm = await ociImage(r, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } })
    await push(r, amd.digest, amd)
    await push(r, arm.digest, arm)
    const idx = await index(MT.ociIndex, [{ built: amd, platform: { os: 'linux', architecture: 'amd64' } }, { built: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }])
    await push(r, 'multi', idx)
    expect((await page(`/r/${r}`)).text).toContain('<td>linux/amd64, linux/arm64/v8</td>')
    const { text } = await page(`/r/${r}/-/manifest/multi`)
    expect(text).toContain(`href="/r/${r}/-/manifest/${arm.digest}"`)
    expect(text).toContain('linux/arm64/v8')
  })

  it('groups referrers by artifactType', async () => {
    const sig = await ociArtifact(repo, 'application/vnd.example.sig', image.descriptor, { annotations: { who: EVIL } })
    await push(repo, sig.digest, sig)
    const { text } = await page(`/r/${repo}/-/referrers/${image.digest}`)
    expect(text).toContain('<code>application/vnd.example.sig</code> <span class="muted">(1)</span>')
    expect(text).toContain(`href="/r/${repo}/-/manifest/${sig.digest}"`)
    expect(text).not.toContain(EVIL)
  })

  it('writes nothing to KV or R2 while browsing', async () => {
    const writes: string[] = []
    const spy = <T extends object>(target: T, name: string, methods: string[]): T =>
      new Proxy(target, {
        get(t, p) {
          const v = Reflect.get(t, p) as unknown
          if (typeof v !== 'function') return v
          if (methods.includes(String(p))) writes.push(`${name}.${String(p)}`)
          return (v as (...a: unknown[]) => unknown).bind(t)
        },
      })
    const e = { ...open, LINKS: spy(open.LINKS, 'KV', ['put', 'delete']), BLOBS: spy(open.BLOBS, 'R2', ['put', 'delete', 'createMultipartUpload']) }
    for (const path of ['/', `/r/${repo}`, `/r/${repo}/-/manifest/v1`, `/r/${repo}/-/manifest/${image.digest}`, `/r/${repo}/-/referrers/${image.digest}`, '/storage', `/r/${repo}/-/delete?reference=v1`]) {
      expect((await send(e, path)).status, path).toBe(200)
    }
    expect(writes).toEqual([])
  })

  it('answers an unknown repository or reference with a 404 page, a bad name with 400', async () => {
    expect((await page('/r/uitest/absent')).res.status).toBe(404)
    expect((await page(`/r/${repo}/-/manifest/nope`)).res.status).toBe(404)
    const bad = await page('/r/UPPER/case')
    expect(bad.res.status).toBe(400)
    expect(bad.res.headers.get('content-type')).toContain('text/html')
  })

  it('leaves /v2/, /token and unknown paths to the API', async () => {
    expect((await api('/v2/')).status).toBe(200)
    const unknown = await api('/nope/x')
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toMatchObject({ errors: [{ code: 'NOT_FOUND' }] })
    expect((await api('/token')).status).toBe(404)                          // no token server on an open registry
    expect((await api(`/v2/${repo}/tags/list`)).headers.get('content-type')).toBe('application/json')
  })

  it('serves its stylesheet and script, cacheable', async () => {
    const css = await api('/ui/app.css?v=1')
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8')
    expect(css.headers.get('cache-control')).toContain('immutable')
    expect((await api('/ui/app.js')).headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect((await api('/ui/other.js')).status).toBe(404)
    expect((await api('/ui/constructor')).status).toBe(404)
  })

  it('declares a site icon on every page and serves it, at /favicon.ico too (no 404 in the browser console)', async () => {
    const { text } = await page('/')
    const href = /<link rel="icon" href="([^"]+)" type="image\/svg\+xml">/.exec(text)?.[1]
    expect(href).toMatch(/^\/ui\/icon\.svg\?v=\w+$/)
    for (const path of [href!, '/favicon.ico']) {
      const res = await api(path)
      expect(res.status, path).toBe(200)
      expect(res.headers.get('content-type'), path).toBe('image/svg+xml')
      expect(await res.text(), path).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
    }
  })

  it('deletes a tag from a form posted by its own page, and refuses one from elsewhere', async () => {
    const r = fresh('uitest')
    const m = await ociImage(r)
    await push(r, 'keep', m)
    await push(r, 'gone', m)
    const cross = await api(`/r/${r}/-/delete`, form({ reference: 'gone' }, { Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' }))
    expect(cross.status).toBe(403)
    const noOrigin = await api(`/r/${r}/-/delete`, { ...form({ reference: 'gone' }), headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': '15' } })
    expect(noOrigin.status).toBe(403)
    expect(await tagsOf(r)).toEqual(['gone', 'keep'])
    const ok = await api(`/r/${r}/-/delete`, form({ reference: 'gone' }))
    expect(ok.status).toBe(303)
    expect(ok.headers.get('location')).toBe(`/r/${r}`)
    expect(await tagsOf(r)).toEqual(['keep'])
  })

  it('deletes a manifest by digest, with its tags', async () => {
    const r = fresh('uitest')
    const m = await ociImage(r)
    await push(r, 'a', m)
    expect((await api(`/r/${r}/-/delete`, form({ reference: m.digest }))).status).toBe(303)
    expect((await api(`/v2/${r}/manifests/${m.digest}`)).status).toBe(404)
    expect(await tagsOf(r)).toEqual([])
  })

  it('offers no delete when deletes are disabled, and refuses one', async () => {
    const e = { ...open, DELETE_ENABLED: 'false' }
    expect((await page(`/r/${repo}`, {}, e)).text).not.toContain('/-/delete')
    expect((await send(e, `/r/${repo}/-/delete`, form({ reference: 'v1' }))).status).toBe(403)
  })

  it('refuses a delete while READ_ONLY (405, saying so): the tag stays', async () => {
    const r = fresh('uitest')
    await push(r, 'v', await ociImage(r))
    const res = await api(`/r/${r}/-/delete`, form({ reference: 'v' }), { READ_ONLY: 'true' })
    expect(res.status).toBe(405)
    expect(await res.text()).toContain('read-only')
    expect(await tagsOf(r)).toEqual(['v'])
  })

  it('refuses to delete an immutable tag, or the manifest it names, with 403 naming the rule: the tag stays', async () => {
    const r = fresh('uitest')
    const m = await ociImage(r)
    await push(r, 'v1.0', m)
    const immutable = { IMMUTABLE_TAGS: '["v*"]' }
    for (const reference of ['v1.0', m.digest]) {
      const res = await api(`/r/${r}/-/delete`, form({ reference }), immutable)
      expect(res.status).toBe(403)
      expect(await res.text()).toContain('IMMUTABLE_TAGS[0]')
    }
    expect(await tagsOf(r)).toEqual(['v1.0'])
  })

  it('refuses a delete in a pull-through cache\'s namespace (405, as DELETE /v2/ does): the cached tag stays', async () => {
    const r = fresh('uiproxy')
    await push(r, 'latest', await ociImage(r))
    const cache = { UPSTREAMS: JSON.stringify([{ prefix: 'uiproxy', url: 'https://upstream.test' }]) }
    expect(await (await api(`/r/${r}`, {}, cache)).text()).not.toContain('/-/delete')
    expect(await (await api(`/r/${r}`)).text()).toContain('/-/delete')
    expect((await api(`/v2/${r}/manifests/latest`, { method: 'DELETE' }, cache)).status).toBe(405)
    const res = await api(`/r/${r}/-/delete`, form({ reference: 'latest' }), cache)
    expect(res.status).toBe(405)
    expect(await res.text()).toContain('read-only cache')
    expect(await tagsOf(r)).toEqual(['latest'])
  })

  it('charts stored bytes from the collector\'s reports', async () => {
    const report: GcReport = {
      id: '20261201T000000Z-uitest', started: '2026-12-01T00:00:00Z', finished: '2026-12-01T00:01:00Z', dryRun: false, untagged: false, repo: null,
      repositories: {}, totals: { manifests: 1, links: 2, blobs: 3, uploads: 0, bytes: 5000 }, freed: { manifests: 0, blobs: 5000, uploads: 0 }, kept: { blobs: 10, bytes: 123_000_000 },
    }
    await putReport(open, report)
    const { text } = await page('/storage')
    expect(text).toContain('<svg class="chart"')
    expect(text).toContain('123 MB')
    expect(text).toContain(report.id)
  })
})

describe('web UI, token auth', () => {
  let e: Env
  let pub: string
  let team: string
  let priv: string
  beforeAll(async () => {
    e = await authEnv()
    pub = fresh('public')
    team = fresh('team-a')
    priv = fresh('private')
    for (const r of [pub, team, priv]) await push(r, 'v1', await ociImage(r))
  })

  /** Signs in through the form: the session cookie ("name=value"). */
  async function signIn(user: keyof typeof PASSWORDS): Promise<string> {
    const res = await send(e, '/sign-in', form({ username: user, password: PASSWORDS[user], next: '/' }))
    expect(res.status).toBe(303)
    return res.headers.get('set-cookie')!.split(';')[0]!
  }

  it('shows anonymous viewers only what anonymous may pull', async () => {
    const { text } = await page('/?q=', {}, e)
    expect(text).toContain(pub)
    expect(text).not.toContain(team)
    expect(text).not.toContain(priv)
    expect(text).toContain('Sign in')
    expect(text).not.toContain('href="/storage"')
  })

  it('answers a repository the viewer may not pull exactly like an absent one', async () => {
    const hidden = await page(`/r/${priv}`, {}, e)
    const absent = await page(`/r/private/nothing-here`, {}, e)
    expect(hidden.res.status).toBe(404)
    expect(hidden.text).toBe(absent.text)
    for (const path of [`/r/${priv}/-/manifest/v1`, `/r/${priv}/-/referrers/sha256:${'a'.repeat(64)}`, `/r/${priv}/-/delete?reference=v1`]) {
      expect((await send(e, path)).status, path).toBe(404)
    }
  })

  it('signs in with a session cookie that is HttpOnly, Secure and SameSite=Strict', async () => {
    const res = await send(e, '/sign-in', form({ username: 'rita', password: PASSWORDS.rita, next: `/r/${team}` }))
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe(`/r/${team}`)
    const cookie = res.headers.get('set-cookie')!
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[^;]+~[^;]+; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=\\d+$`))
  })

  it('refuses wrong credentials and never redirects off the site', async () => {
    expect((await send(e, '/sign-in', form({ username: 'rita', password: 'nope' }))).status).toBe(401)
    for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example']) {
      const res = await send(e, '/sign-in', form({ username: 'rita', password: PASSWORDS.rita, next }))
      expect(res.headers.get('location'), next).toBe('/')
    }
  })

  it('never puts a byte a header cannot hold into Location: anything outside printable ASCII goes home', async () => {
    // `/\x7f` answered 502 under wrangler dev ("Invalid header value char"); a tab or newline is
    // dropped from a URL by browsers, so `/\t/evil.example` would have become `//evil.example`.
    for (const next of ['/\x7f', '/a\x7fb', '/\t/evil.example', '/\n/evil.example', '/ä', '/a b', '/\u2028', '/\ud800']) {
      const res = await send(e, '/sign-in', form({ username: 'rita', password: PASSWORDS.rita, next }))
      expect(res.status, JSON.stringify(next)).toBe(303)
      expect(res.headers.get('location'), JSON.stringify(next)).toBe('/')
    }
    const kept = await send(e, '/sign-in', form({ username: 'rita', password: PASSWORDS.rita, next: '/r/team-a/x?sort=tag&q=%C3%A4' }))
    expect(kept.headers.get('location')).toBe('/r/team-a/x?sort=tag&q=%C3%A4')
    const shown = await send(e, `/sign-in?next=${encodeURIComponent('/\x7f')}`)
    expect(await shown.text()).toContain('name="next" value="/"')
  })

  it('shows a signed-in user what the rules let them pull, without delete unless granted', async () => {
    const cookie = await signIn('rita')
    const { text } = await page('/', { headers: { Cookie: cookie } }, e)
    expect(text).toContain('Signed in as <strong>rita</strong>')
    expect(text).toContain(team)
    expect(text).not.toContain(priv)
    expect((await page(`/r/${team}`, { headers: { Cookie: cookie } }, e)).text).not.toContain('/-/delete')
  })

  it('lets a user with delete delete, with the CSRF token of their session only', async () => {
    const r = fresh('private')
    await push(r, 'a', await ociImage(r))
    await push(r, 'b', await ociImage(r))
    const cookie = await signIn('alice')
    const confirm = await page(`/r/${r}/-/delete?reference=a`, { headers: { Cookie: cookie } }, e)
    const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(confirm.text)![1]!
    const other = /name="csrf" value="([0-9a-f]+)"/.exec((await page('/', { headers: { Cookie: await signIn('alice') } }, e)).text)![1]!
    expect(other).not.toBe(csrf)
    expect((await send(e, `/r/${r}/-/delete`, form({ reference: 'a' }, { Cookie: cookie }))).status).toBe(403)
    expect((await send(e, `/r/${r}/-/delete`, form({ reference: 'a', csrf: other }, { Cookie: cookie }))).status).toBe(403)
    expect((await send(e, `/r/${r}/-/delete`, form({ reference: 'a', csrf }, { Cookie: cookie }))).status).toBe(303)
    expect((await send(e, `/r/${r}/-/delete`, form({ reference: 'b', csrf }))).status).toBe(404)   // anonymous: not even visible
    const tags = await send(e, `/v2/${r}/tags/list`, { headers: { Authorization: basic('alice', PASSWORDS.alice) } })
    expect(((await tags.json()) as { tags: string[] }).tags).toEqual(['b'])
  })

  it('renews an expired session token from the refresh token', async () => {
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
    const expired = await issueSessionToken(key, SERVICE, 'alice', Date.now() - 3600_000)
    const alice = (await e.AUTH_USERS && JSON.parse(e.AUTH_USERS!).alice) as string
    const refresh = await issueRefreshToken(key, SERVICE, 'alice', alice.split('$')[2]!)
    const res = await send(e, `/r/${priv}`, { headers: { Cookie: `${SESSION_COOKIE}=${expired.token}~${refresh.token}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('set-cookie')).toMatch(new RegExp(`^${SESSION_COOKIE}=.+~${refresh.token.replaceAll('.', '\\.')}; Path=/`))
  })

  it('does not take an API token (narrowed to one scope) as a session', async () => {
    const token = await tokenFor(e, basic('alice', PASSWORDS.alice), `repository:${team}:pull`)
    const res = await send(e, `/r/${priv}`, { headers: { Cookie: `${SESSION_COOKIE}=${token}~${token}` } })
    expect(res.status).toBe(404)
  })

  it('signs out', async () => {
    const cookie = await signIn('alice')
    const csrf = /name="csrf" value="([0-9a-f]+)"/.exec((await page('/', { headers: { Cookie: cookie } }, e)).text)![1]!
    const res = await send(e, '/sign-out', form({ csrf }, { Cookie: cookie }))
    expect(res.status).toBe(303)
    expect(res.headers.get('set-cookie')).toBe(`${SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0`)
  })

  it('shows the storage page only to those who may list the catalog', async () => {
    expect((await send(e, '/storage')).status).toBe(404)
    expect((await send(e, '/storage', { headers: { Cookie: await signIn('rita') } })).status).toBe(404)
    expect((await send(e, '/storage', { headers: { Cookie: await signIn('alice') } })).status).toBe(200)
  })
})

describe('GET /v2/_catalog with auth', () => {
  let e: Env
  let team: string
  let priv: string
  beforeAll(async () => {
    e = await authEnv()
    team = fresh('team-a')
    priv = fresh('private')
    for (const r of [team, priv]) await push(r, 'v1', await ociImage(r))
  })

  const catalog = async (authorization: string | null) => {
    const res = await send(e, '/v2/_catalog', { headers: authorization ? { Authorization: authorization } : {} })
    return { status: res.status, names: res.status === 200 ? ((await res.json()) as { repositories: string[] }).repositories : [] }
  }

  it('lists, for a signed-in user without the catalog right, the repositories they may pull', async () => {
    const rita = await catalog(basic('rita', PASSWORDS.rita))
    expect(rita.status).toBe(200)
    expect(rita.names).toContain(team)
    expect(rita.names).not.toContain(priv)
    // team-a/* by her rule, public/* as anyone may.
    expect(rita.names.every((n) => n.startsWith('team-a/') || n.startsWith('public/'))).toBe(true)
  })

  it('lists it only under the prefixes the caller\'s rules name (one R2 list each), never the whole registry', async () => {
    for (let i = 0; i < 3; i++) {
      const r = fresh('elsewhere')
      await push(r, 'v1', await ociImage(r))
    }
    const m = listing(e)
    const res = await send(m.env, '/v2/_catalog', { headers: { Authorization: basic('rita', PASSWORDS.rita) } })
    const names = ((await res.json()) as { repositories: string[] }).repositories
    expect(names).toContain(team)
    expect(names.some((n) => n.startsWith('elsewhere'))).toBe(false)
    // rita: team-a/* by her rule, public/* as anyone may: two prefixes, one list each.
    expect(m.r2.map((o) => o.prefix).sort()).toEqual(['repos/public/', 'repos/team-a/'])
  })

  it('does the same with a token that lacks the catalog scope', async () => {
    const token = await tokenFor(e, basic('rita', PASSWORDS.rita), 'registry:catalog:*')
    const rita = await catalog(`Bearer ${token}`)
    expect(rita.status).toBe(200)
    expect(rita.names).toContain(team)
    expect(rita.names).not.toContain(priv)
  })

  it('lists everything for the catalog right, and still challenges anonymous callers', async () => {
    const alice = await catalog(basic('alice', PASSWORDS.alice))
    expect(alice.names).toEqual(expect.arrayContaining([team, priv]))
    expect((await catalog(null)).status).toBe(401)
  })
})
