/**
 * The PULLS consumer and what reads its statistics: a batch of counted pulls becomes one write per
 * repository, and `/admin/stats/<name>` answers per manifest its tags, pulls and last pull.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/env'
import type { Pull } from '../../src/events/messages'
import { addPulls, MAX_PULL_ENTRIES, readPullStats } from '../../src/storage/pull-stats'
import { Meter, meteredR2 } from '../../bench/cost/meter'
import { bindings, randomBlob, repoName, sha256 } from '../helpers'
import { consumeBatch, send, withEndpoints } from './setup'

const QUEUE = 'edge-registry-pulls'
const d = (c: string) => `sha256:${c.repeat(64)}`

afterEach(() => vi.restoreAllMocks())

describe('pull statistics', () => {
  it('counts a batch with one R2 get and one R2 put per repository, never one per pull', async () => {
    const [a, b] = [repoName('stats'), repoName('stats')]
    const t = Date.parse('2026-03-01T10:20:30.456Z')
    const pulls: Pull[] = [
      ...Array.from({ length: 40 }, (_, i) => ({ repo: a, digest: d('1'), at: t + i * 1000 })),
      ...Array.from({ length: 9 }, () => ({ repo: a, digest: d('2'), at: t - 3_600_000 })),
      { repo: b, digest: d('3'), at: t },
    ]
    const meter = new Meter()
    const env: Env = { ...bindings, BLOBS: meteredR2(meter, bindings.BLOBS) }
    const { result } = await consumeBatch(env, QUEUE, pulls.map((body) => ({ body })))
    expect(result.explicitAcks).toHaveLength(50)
    expect(meter.counts['r2.get']).toBe(2)
    expect(meter.counts['r2.put']).toBe(2)
    const stats = await readPullStats(bindings, a as never)
    // To the minute: 10:21:09 (the 40th pull) is stored as 10:21.
    expect(stats.get(d('1'))).toEqual({ pulls: 40, last: Date.parse('2026-03-01T10:21:00Z') })
    expect(stats.get(d('2'))).toEqual({ pulls: 9, last: Date.parse('2026-03-01T09:20:00Z') })
    expect((await readPullStats(bindings, b as never)).get(d('3'))!.pulls).toBe(1)
  })

  it(`keeps at most ${MAX_PULL_ENTRIES} manifests a repository, dropping the least recently pulled (a tenant cannot grow it without bound)`, async () => {
    const repo = repoName('many') as never
    const t = Date.parse('2026-03-01T00:00:00Z')
    const hex = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`
    // Every manifest ever pulled, one minute apart: the oldest 5 are past the bound.
    await addPulls(bindings, repo, new Map(Array.from({ length: MAX_PULL_ENTRIES + 5 }, (_, i) => [hex(i), { pulls: 1, last: t + i * 60_000 }])))
    const stats = await readPullStats(bindings, repo)
    expect(stats.size).toBe(MAX_PULL_ENTRIES)
    expect(stats.has(hex(4))).toBe(false)
    expect(stats.has(hex(5))).toBe(true)
    expect(stats.has(hex(MAX_PULL_ENTRIES + 4))).toBe(true)
  })

  it('adds to what is stored, and keeps the latest pull whatever order batches come in', async () => {
    const repo = repoName('stats')
    const t = Date.parse('2026-03-01T10:00:00Z')
    await consumeBatch(bindings, QUEUE, [{ body: { repo, digest: d('1'), at: t + 600_000 } }])
    await consumeBatch(bindings, QUEUE, [{ body: { repo, digest: d('1'), at: t } }, { body: { repo, digest: d('1'), at: t } }])
    expect((await readPullStats(bindings, repo as never)).get(d('1'))).toEqual({ pulls: 3, last: t + 600_000 })
  })

  it('loses no count when two batches write one repository at once (conditional writes)', async () => {
    const repo = repoName('stats')
    const batches = Array.from({ length: 4 }, (_, i) => consumeBatch(bindings, QUEUE, Array.from({ length: 5 }, () => ({ body: { repo, digest: d('1'), at: Date.now() - i } }))))
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const results = await Promise.all(batches)
    expect(results.every((r) => r.result.explicitAcks.length === 5)).toBe(true)
    expect((await readPullStats(bindings, repo as never)).get(d('1'))!.pulls).toBe(20)
  }, 60_000)

  it('retries the pulls of a repository whose write failed, and acks the others', async () => {
    const [bad, good] = [repoName('stats'), repoName('stats')]
    const failing: R2Bucket = new Proxy(bindings.BLOBS, {
      get(target, prop) {
        const value = Reflect.get(target, prop)
        if (prop === 'put') return (key: string, ...rest: unknown[]) => (key.includes(bad) ? Promise.reject(new Error('R2 is down')) : (value as R2Bucket['put']).call(target, key, ...(rest as [never])))
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    vi.spyOn(console, 'error').mockImplementation(() => {})
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void) => { fn(); return 0 }) as never)
    const { result, retries } = await consumeBatch({ ...bindings, BLOBS: failing }, QUEUE, [
      { body: { repo: bad, digest: d('1'), at: Date.now() } }, { body: { repo: good, digest: d('1'), at: Date.now() } },
    ])
    expect(result.explicitAcks).toHaveLength(1)
    expect([...retries.values()]).toEqual([60])
    expect((await readPullStats(bindings, good as never)).get(d('1'))!.pulls).toBe(1)
  })
})

describe('GET /admin/stats/<name>', () => {
  const OCI = 'application/vnd.oci.image.manifest.v1+json'

  it('lists every manifest with its tags, pulls and last pull (null: never pulled), counting real pulls', async () => {
    const r = withEndpoints([], { PULL_STATS: 'true' })
    const repo = repoName('stats')
    const manifests: string[] = []
    for (const tags of [['v1', 'latest'], []]) {
      const layer = randomBlob(50)
      const digest = await sha256(layer)
      await send(r.env, `/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: layer, headers: { 'Content-Length': '50' } })
      const m = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: OCI, config: { mediaType: 'application/vnd.oci.empty.v1+json', digest, size: 50 }, layers: [] }))
      const md = await sha256(m)
      const query = tags.map((t) => `tag=${t}`).join('&')
      expect((await send(r.env, `/v2/${repo}/manifests/${md}${query ? `?${query}` : ''}`, { method: 'PUT', body: m, headers: { 'Content-Type': OCI } })).status).toBe(201)
      manifests.push(md)
    }
    for (const ref of ['v1', 'latest', manifests[0]!]) expect((await send(r.env, `/v2/${repo}/manifests/${ref}`, { headers: { Accept: OCI } })).status).toBe(200)
    await send(r.env, `/v2/${repo}/manifests/v1`, { method: 'HEAD', headers: { Accept: OCI } })
    const before = Date.now()
    await consumeBatch(r.env, QUEUE, r.pulls.sent.map((body) => ({ body })))
    const res = await send(r.env, `http://localhost/admin/stats/${repo}`)
    expect(res.status).toBe(200)
    const body = (await res.json()) as { repository: string; manifests: { digest: string; tags: string[]; pulls: number; lastPulled: string | null }[] }
    expect(body.repository).toBe(repo)
    const byDigest = Object.fromEntries(body.manifests.map((m) => [m.digest, m]))
    expect(Object.keys(byDigest).sort()).toEqual([...manifests].sort())
    expect(byDigest[manifests[0]!]!.tags.sort()).toEqual(['latest', 'v1'])
    expect(byDigest[manifests[0]!]!.pulls).toBe(3)
    expect(Date.parse(byDigest[manifests[0]!]!.lastPulled!)).toBeGreaterThan(before - 120_000)
    expect(byDigest[manifests[1]!]).toEqual({ digest: manifests[1], tags: [], pulls: 0, lastPulled: null })
  })

  it('answers NAME_UNKNOWN for a repository without manifests, and is for admins only', async () => {
    expect((await send(bindings, `http://localhost/admin/stats/${repoName('none')}`)).status).toBe(404)
    expect((await send(bindings, 'https://registry.example.com/admin/stats/a/b')).status).toBe(403)
  })
})
