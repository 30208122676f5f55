/** Rendering of the UI's pages from data: escaping above all, and what each page shows. */
import { describe, expect, it } from 'vitest'
import type { Viewer } from '../../src/auth/session'
import type { GcReport } from '../../src/storage/gc-reports'
import { formatBytes, shortDigest } from '../../src/ui/format'
import { CONTENT_SECURITY_POLICY } from '../../src/ui/layout'
import { confirmDeletePage, signInPage } from '../../src/ui/pages/forms'
import { kindOf, manifestPage, type ManifestData } from '../../src/ui/pages/manifest'
import { referrersPage } from '../../src/ui/pages/referrers'
import { repositoriesPage } from '../../src/ui/pages/repositories'
import { repositoryPage } from '../../src/ui/pages/repository'
import { storagePage, storagePoints } from '../../src/ui/pages/storage'
import type { Descriptor } from '../../src/manifests/handler'
import type { Digest } from '../../src/names'

const OPEN: Viewer = { access: undefined, authEnabled: false, user: null, global: true, csrf: null, setCookie: null }
const EVIL = '<script>alert(1)</script>'
const D = `sha256:${'ab'.repeat(32)}`
const D2 = `sha256:${'cd'.repeat(32)}`

/** No element the data could have made: the only <script> is the page's own external one. */
function expectNoInjectedMarkup(text: string): void {
  expect(text.match(/<script/g)).toEqual(['<script'])
  expect(text).toContain('<script src="/ui/app.js')
  expect(text).not.toMatch(/<img|<b>/)
}

const image = (labels: Record<string, string>): ManifestData => ({
  repo: 'team/app',
  host: 'registry.example',
  tag: 'v1',
  digest: D,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  text: JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D2, size: 10 },
    layers: [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D2, size: 3000, annotations: { 'org.opencontainers.image.title': '<b>layer</b>' } },
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D, size: 1000 },
    ],
    annotations: { [`key${EVIL}`]: `"><img src=x onerror=alert(1)>` },
  }),
  config: {
    os: 'linux',
    architecture: 'arm64',
    variant: 'v8',
    created: '2026-01-02T03:04:05Z',
    config: { Entrypoint: ['/bin/sh', '-c'], Cmd: [EVIL], Labels: labels, ExposedPorts: { '80/tcp': {}, '443/tcp': {} } },
    history: [{ created: '2026-01-01T00:00:00Z', created_by: `RUN echo ${EVIL}` }, { created_by: 'CMD x', empty_layer: true }],
  },
  canDelete: true,
})

describe('manifest page', () => {
  it('shows a label holding <script> as text, never as markup', () => {
    const text = manifestPage(OPEN, image({ evil: EVIL, [EVIL]: 'key too' })).text
    expect(text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
    expectNoInjectedMarkup(text)
  })

  it('escapes annotations, layer titles, commands and history', () => {
    const text = manifestPage(OPEN, image({})).text
    expect(text).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;')
    expect(text).toContain('&lt;b&gt;layer&lt;/b&gt;')
    expect(text).toContain('RUN echo &lt;script&gt;')
    expectNoInjectedMarkup(text)
  })

  it('summarises an image config: platform, created, entrypoint, cmd, ports, labels, layers, history', () => {
    const text = manifestPage(OPEN, image({ 'org.opencontainers.image.source': 'https://example.com/src' })).text
    expect(text).toContain('linux/arm64/v8')
    expect(text).toContain('2026-01-02T03:04:05Z')
    expect(text).toContain('[&quot;/bin/sh&quot;,&quot;-c&quot;]')
    expect(text).toContain('80/tcp, 443/tcp')
    expect(text).toContain('org.opencontainers.image.source')
    expect(text).toContain('Layers <span class="muted">(2, 4.0 KB)</span>')
    // The bar: widths proportional to the sizes (3000 and 1000 of 1000 units).
    expect(text).toContain('width="750.00"')
    expect(text).toContain('width="250.00"')
    expect(text).toContain('(no layer)')
  })

  it('shows pull commands for docker, podman, crane and oras by tag and by digest', () => {
    const text = manifestPage(OPEN, image({})).text
    for (const cmd of ['docker pull', 'podman pull', 'crane pull', 'oras pull']) {
      expect(text).toContain(`value="${cmd} registry.example/team/app:v1`)
      expect(text).toContain(`value="${cmd} registry.example/team/app@${D}`)
    }
  })

  it('lists an index\'s platforms, each linking to its manifest', () => {
    const text = manifestPage(OPEN, {
      ...image({}),
      mediaType: 'application/vnd.oci.image.index.v1+json',
      config: null,
      text: JSON.stringify({
        schemaVersion: 2,
        manifests: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D, size: 500, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D2, size: 500, platform: { os: 'linux', architecture: 'arm', variant: EVIL } },
        ],
      }),
    }).text
    expect(text).toContain(`<td>linux/amd64</td>`)
    expect(text).toContain(`href="/r/team/app/-/manifest/${D2}"`)
    expect(text).toContain('linux/arm/&lt;script&gt;')
    expectNoInjectedMarkup(text)
  })

  it('shows an artifact\'s artifactType and blobs', () => {
    const doc = { schemaVersion: 2, artifactType: 'application/vnd.example.sbom', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: D, size: 2 }, layers: [{ mediaType: 'text/spdx', digest: D2, size: 42 }] }
    expect(kindOf(doc)).toBe('artifact')
    const text = manifestPage(OPEN, { ...image({}), config: null, text: JSON.stringify(doc) }).text
    expect(text).toContain('Artifact type</dt><dd><code>application/vnd.example.sbom</code>')
    expect(text).toContain('Blobs <span class="muted">(1, 42 B)</span>')
  })

  it('offers delete only when allowed', () => {
    expect(manifestPage(OPEN, { ...image({}), canDelete: false }).text).not.toContain('/-/delete')
    expect(manifestPage(OPEN, image({})).text).toContain('href="/r/team/app/-/delete?reference=v1"')
  })
})

describe('repository page', () => {
  const rows = [{ tag: 'v1', digest: D, mediaType: 'application/vnd.oci.image.index.v1+json', platforms: `linux/amd64, ${EVIL}`, size: 1_500_000, pushed: Date.UTC(2026, 0, 2) }]
  const data = { repo: 'team/app', host: 'r.example', rows, total: 1, sort: 'pushed' as const, desc: true, pageNumber: 1, pages: 1, canDelete: false }

  it('lists tags with short digest, type, platforms (escaped), size and push time', () => {
    const text = repositoryPage(OPEN, data).text
    expect(text).toContain(`<code title="${D}">${shortDigest(D)}</code>`)
    expect(text).toContain('OCI index')
    expect(text).toContain('linux/amd64, &lt;script&gt;')
    expect(text).toContain('1.5 MB')
    expect(text).toContain('<time datetime="2026-01-02T00:00:00.000Z">2026-01-02 00:00 UTC</time>')
    expectNoInjectedMarkup(text)
  })

  it('links column headers to sorting, marking the current one for screen readers', () => {
    const text = repositoryPage(OPEN, data).text
    expect(text).toContain('aria-sort="descending"')
    expect(text).toContain('href="/r/team/app?sort=tag&amp;order=asc"')
    expect(text).toContain('href="/r/team/app?sort=pushed&amp;order=asc"')
  })

  it('pages', () => {
    const text = repositoryPage(OPEN, { ...data, pageNumber: 2, pages: 3 }).text
    expect(text).toContain('href="/r/team/app?sort=pushed&amp;order=desc&amp;page=3" rel="next"')
    expect(text).toContain('href="/r/team/app?sort=pushed&amp;order=desc" rel="prev"')
  })
})

describe('repositories page', () => {
  it('keeps the filter as text and in the next-page link', () => {
    const text = repositoriesPage(OPEN, { rows: [{ name: 'a/b', tags: 3, moreTags: false, lastPush: null, bytes: 2000, moreBytes: false }], q: `"${EVIL}`, next: 'a/b', paged: false }).text
    expect(text).toContain('value="&quot;&lt;script&gt;alert(1)&lt;/script&gt;"')
    expect(text).toContain(`href="/?last=a%2Fb&amp;q=${encodeURIComponent(`"${EVIL}`)}"`)
    expect(text).toContain('<td class="num">3</td><td class="num">2.0 KB</td>')
    expectNoInjectedMarkup(text)
  })
})

describe('referrers page', () => {
  it('groups by artifactType, annotations as text', () => {
    const refs = [
      { mediaType: 'm', digest: D as Digest, size: 10, artifactType: 'application/vnd.example.sig', annotations: { signer: EVIL } },
      { mediaType: 'm', digest: D2 as Digest, size: 10, artifactType: 'application/vnd.example.sbom' },
      { mediaType: 'm', digest: D2 as Digest, size: 10, artifactType: 'application/vnd.example.sig' },
    ] satisfies Descriptor[]
    const text = referrersPage(OPEN, 'team/app', D, refs).text
    expect(text).toContain('<code>application/vnd.example.sig</code> <span class="muted">(2)</span>')
    expect(text).toContain('<code>application/vnd.example.sbom</code> <span class="muted">(1)</span>')
    expect(text.indexOf('vnd.example.sbom')).toBeLessThan(text.indexOf('vnd.example.sig'))
    expect(text).toContain('&lt;script&gt;')
    expectNoInjectedMarkup(text)
  })
})

describe('storage page', () => {
  const report = (id: string, finished: string | null, kept: number, freed: number, dryRun = false): GcReport => ({
    id, started: finished ?? '2026-01-01T00:00:00Z', finished, dryRun, untagged: false, repo: null, repositories: {},
    totals: { manifests: 0, links: 0, blobs: 0, uploads: 0, bytes: freed }, freed: { manifests: 0, blobs: freed, uploads: 0 }, kept: { blobs: 1, bytes: kept },
  })

  it('charts stored bytes per finished run, oldest first; a dry run freed nothing', () => {
    const points = storagePoints([
      report('b', '2026-02-01T00:00:00Z', 800, 200),
      report('a', '2026-01-01T00:00:00Z', 900, 100, true),
      report('c', null, 1, 1),
    ])
    expect(points.map((p) => [p.id, p.stored, p.freed])).toEqual([['a', 1000, 0], ['b', 800, 200]])
    const text = storagePage(OPEN, points).text
    expect(text).toContain('<svg class="chart"')
    expect(text).toContain('<path class="line" d="M60.0,10.0 L590.0,')
    expect(text).toContain('from 1.0 KB to 800 B')
  })

  it('says so when there are no reports', () => {
    expect(storagePage(OPEN, []).text).toContain('No garbage collector reports yet')
  })
})

describe('forms', () => {
  it('carries the CSRF token and escapes what the user typed', () => {
    const viewer: Viewer = { ...OPEN, authEnabled: true, user: 'alice', csrf: 'tok123' }
    const text = confirmDeletePage(viewer, 'team/app', 'v1', true).text
    expect(text).toContain('<input type="hidden" name="csrf" value="tok123">')
    expect(text).toContain('action="/r/team/app/-/delete"')
    const signIn = signInPage({ ...OPEN, authEnabled: true }, `/x"${EVIL}`, EVIL).text
    expect(signIn).toContain('value="/x&quot;&lt;script&gt;')
    expectNoInjectedMarkup(signIn)
  })
})

describe('formats and policy', () => {
  it('writes sizes in decimal units', () => {
    expect([0, 999, 1000, 1_234_567, 5e12].map(formatBytes)).toEqual(['0 B', '999 B', '1.0 KB', '1.2 MB', '5.0 TB'])
  })

  it('allows no inline script or style', () => {
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'")
    expect(CONTENT_SECURITY_POLICY).toContain("style-src 'self'")
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe')
  })
})
