/** What the collector deletes, per category and mode, and what it never deletes. */
import { describe, expect, it } from 'vitest'
import { bindings, listObjects, repoName, sha256 } from '../helpers'
import { gcConfig } from '../../src/gc/config'
import { keys } from '../../src/storage/keys'
import type { Digest, Repo } from '../../src/names'
import type { Env } from '../../src/env'
import { driver, gc, gcEnv, INDEX, metered, pulls, pushImage, pushManifest, putBlob, putChunkedBlob, via, violations, WRITES } from './setup'

const env = gcEnv()
const exists = async (key: string) => (await bindings.BLOBS.head(key)) !== null
const live = async (digest: string) => {
  const o = await bindings.BLOBS.head(keys.blob(digest as Digest))
  return o !== null && o.customMetadata?.gone === undefined
}
const link = (repo: string, d: string) => bindings.LINKS.get(keys.blobLink(repo as Repo, d as Digest))
const untag = (repo: string, tag: string) => via(`/v2/${repo}/manifests/${tag}`, { method: 'DELETE' })

describe('untagged mode', () => {
  it('removes an untagged manifest, its links and its blobs (pointer index and bytes together), keeps the tagged image pullable', async () => {
    const repo = repoName('gc')
    const kept = await pushImage(repo, 'keep')
    const dropped = await pushImage(repo, 'drop')
    const pointer = (await bindings.BLOBS.head(keys.blob(dropped.layer as Digest)))!.customMetadata!.at!
    expect(pointer).toMatch(/^data\//)
    expect((await untag(repo, 'drop')).status).toBe(202)

    const report = await gc(env, { untagged: true })
    expect(report.repositories[repo]).toMatchObject({ manifests: { count: 1 }, links: { count: 2 } })
    expect(await exists(keys.manifest(repo as Repo, dropped.digest as Digest))).toBe(false)
    expect(await link(repo, dropped.layer)).toBeNull()
    expect(await live(dropped.layer)).toBe(false)
    expect(await live(dropped.config)).toBe(false)
    expect(await exists(pointer)).toBe(false)
    expect(await pulls(kept)).toBe(true)
    expect(await violations(env)).toEqual([])
  })

  it('keeps children of a tagged index and referrers of a reachable subject; drops an untagged index with its children', async () => {
    const repo = repoName('gc')
    const a = await pushImage(repo, null)
    const b = await pushImage(repo, null)
    const index = (children: typeof a[]) => JSON.stringify({
      schemaVersion: 2, mediaType: INDEX,
      manifests: children.map((c) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: c.digest, size: c.bytes.length, platform: { os: 'linux', architecture: 'amd64' } })),
    })
    await pushManifest(repo, 'multi', index([a]), INDEX)
    const sig = await pushImage(repo, null, { digest: a.digest, size: a.bytes.length })
    const orphanIndex = index([b])
    await pushManifest(repo, await sha256(orphanIndex), orphanIndex, INDEX)
    const sigOfB = await pushImage(repo, null, { digest: b.digest, size: b.bytes.length })

    await gc(env, { untagged: true })
    expect(await pulls(a)).toBe(true)
    expect(await pulls(sig)).toBe(true)
    expect(await exists(keys.referrer(repo as Repo, a.digest as Digest, sig.digest as Digest))).toBe(true)
    expect(await exists(keys.manifest(repo as Repo, (await sha256(orphanIndex)) as Digest))).toBe(false)
    expect(await exists(keys.manifest(repo as Repo, b.digest as Digest))).toBe(false)
    expect(await exists(keys.manifest(repo as Repo, sigOfB.digest as Digest))).toBe(false)
    expect(await exists(keys.referrer(repo as Repo, b.digest as Digest, sigOfB.digest as Digest))).toBe(false)
    expect(await violations(env)).toEqual([])
  })

  it('removes a referrer entry whose manifest is gone', async () => {
    const repo = repoName('gc')
    const a = await pushImage(repo, 'v')
    const ghost = `sha256:${'e'.repeat(64)}`
    await bindings.BLOBS.put(keys.referrer(repo as Repo, a.digest as Digest, ghost as Digest), null)
    await gc(env, { untagged: true })
    expect(await exists(keys.referrer(repo as Repo, a.digest as Digest, ghost as Digest))).toBe(false)
  })
})

describe('default mode', () => {
  it('keeps untagged manifests (and what they name) but drops links no manifest uses, and their bytes', async () => {
    const repo = repoName('gc')
    const untagged = await pushImage(repo, 'x')
    await untag(repo, 'x')
    const unused = await putBlob(repo, crypto.getRandomValues(new Uint8Array(77)))
    const report = await gc(env, {})
    expect(report.repositories[repo]?.links.count).toBe(1)
    expect(await pulls(untagged)).toBe(true)
    expect(await link(repo, unused)).toBeNull()
    expect(await live(unused)).toBe(false)
  })

  it('keeps bytes another repository still links', async () => {
    const a = repoName('gc')
    const b = repoName('gc')
    const shared = await putBlob(a, crypto.getRandomValues(new Uint8Array(50)))
    expect((await via(`/v2/${b}/blobs/uploads/?mount=${shared}&from=${a}`, { method: 'POST' })).status).toBe(201)
    const img = await pushImage(b, 'v1')
    await pushManifest(b, 'v2', JSON.stringify({ ...JSON.parse(img.bytes), layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: shared, size: 50 }] }), 'application/vnd.oci.image.manifest.v1+json')
    await gc(env, {})
    expect(await link(a, shared)).toBeNull()
    expect(await live(shared)).toBe(true)
  })

  it('with --repo touches only matching repositories and leaves blobs and uploads alone', async () => {
    const a = repoName('only')
    const b = repoName('other')
    const ua = await putBlob(a, crypto.getRandomValues(new Uint8Array(33)))
    const ub = await putBlob(b, crypto.getRandomValues(new Uint8Array(33)))
    const report = await gc(env, { repo: 'only/*' })
    expect(await link(a, ua)).toBeNull()
    expect(await live(ua)).toBe(true)
    expect(await link(b, ub)).not.toBeNull()
    expect(report.totals.blobs).toBe(0)
  })
})

describe('uploads', () => {
  const OLD = String(Date.now() - 8 * 86_400_000)
  it('deletes objects and cancelled markers of sessions past the upload expiry, never a blob\'s bytes', async () => {
    await bindings.BLOBS.put('data/abandoned1/w1', new Uint8Array(10), { customMetadata: { started: OLD } })
    await bindings.BLOBS.put('data/cancelled1', null, { customMetadata: { cancelled: OLD } })
    await bindings.BLOBS.put('data/young1/w1', new Uint8Array(10), { customMetadata: { started: String(Date.now()) } })
    const repo = repoName('gc')
    const img = await pushImage(repo, 'v')
    const at = (await bindings.BLOBS.head(keys.blob(img.layer as Digest)))!.customMetadata!.at!
    const report = await gc(env, {})
    expect(report.totals.uploads).toBeGreaterThanOrEqual(2)
    expect(await exists('data/abandoned1/w1')).toBe(false)
    expect(await exists('data/cancelled1')).toBe(false)
    expect(await exists('data/young1/w1')).toBe(true)
    expect(await exists(at)).toBe(true)
    expect(await pulls(img)).toBe(true)
  })
})

describe('uploads past the expiry, completed', () => {
  it('keeps the bytes of completed sessions (one write, and multipart parts), never aborting a completed multipart upload', async () => {
    const repo = repoName('gc')
    // Over BUFFER_LIMIT with a Content-Range: through a multipart upload, completed by the PUT.
    const big = crypto.getRandomValues(new Uint8Array(65_536)).slice()
    const layer = new Uint8Array(11 * 1024 * 1024)
    for (let i = 0; i < layer.length; i += big.length) layer.set(big.subarray(0, Math.min(big.length, layer.length - i)), i)
    layer[0] = Math.floor(Math.random() * 256)
    layer[1] = Math.floor(Math.random() * 256)
    const layerDigest = await sha256(layer)
    const post = await via(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    const patch = await via(post.headers.get('location')!, {
      method: 'PATCH', body: layer, headers: { 'Content-Length': String(layer.length), 'Content-Range': `0-${layer.length - 1}` },
    })
    expect(patch.status).toBe(202)
    expect((await via(`${patch.headers.get('location')}&digest=${layerDigest}`, { method: 'PUT' })).status).toBe(201)
    const config = await putChunkedBlob(repo, crypto.getRandomValues(new Uint8Array(40))) // one write, indexed where it is
    const doc = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 40 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    })
    const digest = await pushManifest(repo, 'v1', doc, 'application/vnd.oci.image.manifest.v1+json')
    const partsAt = (await bindings.BLOBS.head(keys.blob(layerDigest as Digest)))!.customMetadata!.at!
    const writeAt = (await bindings.BLOBS.head(keys.blob(config as Digest)))!.customMetadata!.at!
    expect(partsAt).toMatch(/^data\/.+\/parts$/)
    expect(writeAt).toMatch(/^data\/.+\/\d+$/)

    // A run a week later: every session above is past the upload expiry.
    const aborted: string[] = []
    const watched: Env = {
      ...env,
      BLOBS: new Proxy(env.BLOBS, {
        get(t, prop, receiver) {
          const v = Reflect.get(t, prop, receiver) as unknown
          if (prop !== 'resumeMultipartUpload') return typeof v === 'function' ? v.bind(t) : v
          return (key: string, id: string) => {
            const mp = t.resumeMultipartUpload(key, id)
            return { ...mp, uploadPart: mp.uploadPart.bind(mp), complete: mp.complete.bind(mp), abort: () => (aborted.push(key), mp.abort()) }
          }
        },
      }),
    }
    const week = driver({ memo: new Map<string, unknown>([['start', { now: Date.now() + 7 * 86_400_000, started: new Date().toISOString() }]]) })
    const report = await gc(watched, {}, week)
    expect(report.totals.uploads).toBeGreaterThanOrEqual(1) // the sessions' other writes and end marks
    expect(aborted).not.toContain(partsAt)
    expect(await exists(partsAt)).toBe(true)
    expect(await exists(writeAt)).toBe(true)
    expect(await violations(env)).toEqual([])
    const pulled = await via(`/v2/${repo}/blobs/${layerDigest}`)
    expect(await sha256(new Uint8Array(await pulled.arrayBuffer()))).toBe(layerDigest)
    expect(await pulls({ repo, digest, config, layer: layerDigest, bytes: doc })).toBe(true)
  })
})

describe('grace period', () => {
  it('deletes nothing younger than GC_GRACE_SECONDS', async () => {
    const repo = repoName('gc')
    await pushImage(repo, 'x')
    await untag(repo, 'x')
    const unused = await putChunkedBlob(repo, crypto.getRandomValues(new Uint8Array(20)))
    const report = await gc(gcEnv({ GC_GRACE_SECONDS: '3600' }), { untagged: true })
    expect(report.totals).toEqual({ manifests: 0, links: 0, blobs: 0, uploads: 0, bytes: 0 })
    expect(await link(repo, unused)).not.toBeNull()
  })

  it('refuses a grace below an hour unless GC_TEST_SHORT_GRACE is "true", naming the setting', () => {
    expect(() => gcConfig({ ...bindings, GC_GRACE_SECONDS: '60' })).toThrow(/GC_GRACE_SECONDS/)
    expect(() => gcConfig({ ...bindings, GC_GRACE_SECONDS: 'soon' })).toThrow(/GC_GRACE_SECONDS/)
    expect(gcConfig({ ...bindings }).graceMs).toBe(86_400_000)
    expect(gcConfig({ ...bindings, GC_GRACE_SECONDS: '60', GC_SETTLE_SECONDS: '1', GC_TEST_SHORT_GRACE: 'true' })).toEqual({ graceMs: 60_000, settleMs: 1000 })
  })
})

describe('dry run', () => {
  it('writes nothing to R2 or KV and reports exactly what the real run then deletes', async () => {
    const repo = repoName('gc')
    await pushImage(repo, 'keep')
    await pushImage(repo, 'drop')
    await untag(repo, 'drop')
    await putBlob(repo, crypto.getRandomValues(new Uint8Array(90)))
    await bindings.BLOBS.put('data/abandoned2/w', new Uint8Array(5), { customMetadata: { started: String(Date.now() - 8 * 86_400_000) } })
    const before = (await listObjects()).map((o) => o.key).sort()

    const m = metered(env)
    const dry = await gc(m.env, { untagged: true, dryRun: true })
    expect(Object.keys(m.calls).filter((c) => WRITES.test(c))).toEqual([])
    expect((await listObjects()).map((o) => o.key).sort()).toEqual(before)
    expect(dry.totals.manifests).toBeGreaterThanOrEqual(1)

    const real = await gc(env, { untagged: true })
    expect(real.totals).toEqual(dry.totals)
    expect(real.repositories).toEqual(dry.repositories)
    expect(real.kept).toEqual(dry.kept)
  })
})
