/** The collector against concurrent pushes, and cut at every step then resumed. */
import { describe, expect, it } from 'vitest'
import { bindings, repoName, sha256, streamOf } from '../helpers'
import { keys } from '../../src/storage/keys'
import type { Digest, Repo } from '../../src/names'
import { Crash, driver, gc, gcEnv, MANIFEST, pulls, pushImage, pushManifest, putBlob, putChunkedBlob, via, violations, type Image } from './setup'

const env = gcEnv()

/**
 * The settle time (GC_SETTLE_SECONDS ≥ LINK_CACHE_SECONDS + KV propagation) lets every location's
 * copy of a link expire before the sweep; with settle 0 here, the test expires this location's copy.
 */
const expireCachedLink = (repo: string, d: string) => caches.default.delete(keys.cachedLink('http://registry.test', repo as Repo, d as Digest))

/** A manifest naming `layer` (already in the repository) with a fresh config. */
async function imageOver(repo: string, layer: string, tag: string): Promise<Image> {
  const config = await putBlob(repo, crypto.getRandomValues(new Uint8Array(40)))
  const doc = { schemaVersion: 2, mediaType: MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 40 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: 300 }] }
  const bytes = JSON.stringify(doc)
  return { repo, digest: await pushManifest(repo, tag, bytes, MANIFEST), config, layer, bytes }
}

describe('the race: a push re-uses a blob while a run collects it', () => {
  it('HEAD sees the (marked) blob, the client skips the upload, PUTs the manifest during the run: the image pulls', async () => {
    const repo = repoName('race')
    const layer = await putChunkedBlob(repo, crypto.getRandomValues(new Uint8Array(300)))   // uploaded, unused: a candidate
    let pushed: Image | null = null
    const report = await gc(env, {}, driver({
      onSleep: async () => {
        await expireCachedLink(repo, layer)
        expect((await via(`/v2/${repo}/blobs/${layer}`, { method: 'HEAD' })).status).toBe(200)
        pushed = await imageOver(repo, layer, 'v1')
      },
    }))
    expect(await pulls(pushed!)).toBe(true)
    expect(report.repositories[repo]?.links.count ?? 0).toBe(0)
    // The HEAD read the marked link and kept it (the mark says so); the sweep left it.
    expect((await bindings.BLOBS.head(keys.gcLinkMark(repo as Repo, layer as Digest)))?.customMetadata?.state).toBe('kept')
    expect(await violations(env)).toEqual([])
  })

  it('a push that read the link before the mark (a stale copy) is rescued by the second look', async () => {
    const repo = repoName('race')
    const layer = await putChunkedBlob(repo, crypto.getRandomValues(new Uint8Array(300)))
    // The manifest lands during the settle time without reading the mark: its link read came earlier.
    const link = await bindings.LINKS.get(keys.blobLink(repo as Repo, layer as Digest))
    let pushed: Image | null = null
    await gc(env, {}, driver({
      onSleep: async () => {
        await bindings.LINKS.put(keys.blobLink(repo as Repo, layer as Digest), link!, { metadata: { t: 0 } }) // as the stale copy had it
        pushed = await imageOver(repo, layer, 'v1')
      },
    }))
    expect(await pulls(pushed!)).toBe(true)
  })

  it('a cross-repository mount of a blob being collected during the run: the mounted image pulls', async () => {
    const a = repoName('race')
    const b = repoName('race')
    const layer = await putChunkedBlob(a, crypto.getRandomValues(new Uint8Array(300)))
    let pushed: Image | null = null
    await gc(env, {}, driver({
      onSleep: async () => {
        await expireCachedLink(a, layer)
        expect((await via(`/v2/${b}/blobs/uploads/?mount=${layer}&from=${a}`, { method: 'POST' })).status).toBe(201)
        pushed = await imageOver(b, layer, 'v1')
      },
    }))
    expect(await pulls(pushed!)).toBe(true)
  })

  it('after the run swept a link, HEAD answers 404 and a re-upload makes a pullable image', async () => {
    const repo = repoName('race')
    const bytes = crypto.getRandomValues(new Uint8Array(300))
    const layer = await putChunkedBlob(repo, bytes)
    await gc(env, {})
    await expireCachedLink(repo, layer)
    expect((await via(`/v2/${repo}/blobs/${layer}`, { method: 'HEAD' })).status).toBe(404)
    await putChunkedBlob(repo, bytes)
    expect(await pulls(await imageOver(repo, layer, 'v1'))).toBe(true)
  })

  it('a re-upload during the settle time keeps link and bytes for a manifest pushed after the run', async () => {
    const repo = repoName('race')
    const bytes = crypto.getRandomValues(new Uint8Array(300))
    const layer = await putChunkedBlob(repo, bytes)
    await gc(env, {}, driver({ onSleep: async () => void (await putChunkedBlob(repo, bytes)) }))
    await expireCachedLink(repo, layer)
    expect(await pulls(await imageOver(repo, layer, 'late'))).toBe(true)
  })

  it('a monolithic re-upload of a blob whose index the run is sweeping stores fresh bytes', async () => {
    const repo = repoName('race')
    const bytes = crypto.getRandomValues(new Uint8Array(300))
    const layer = await putBlob(repo, bytes)
    const other = repoName('race')
    let pushed: Image | null = null
    await gc(env, {}, driver({
      onSleep: async () => {
        await putBlob(other, bytes) // heads the marked index: keeps it
        pushed = await imageOver(other, layer, 'v1')
      },
    }))
    expect(await pulls(pushed!)).toBe(true)
  })
})

describe('an upload session whose blob the collector swept', () => {
  it('a replayed close (or chunk) of a one-write session answers BLOB_UPLOAD_UNKNOWN: no index entry without bytes', async () => {
    const repo = repoName('replay')
    const bytes = crypto.getRandomValues(new Uint8Array(300))
    const post = await via(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    const patch = await via(post.headers.get('location')!, {
      method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length), 'Content-Range': `0-${bytes.length - 1}` },
    })
    const digest = (await sha256(bytes))
    const close = `${patch.headers.get('location')}&digest=${digest}`
    expect((await via(close, { method: 'PUT' })).status).toBe(201)
    // Nothing names the blob: the run (grace 0) sweeps its link, its index entry and its bytes.
    const report = await gc(env, {})
    expect(report.totals.blobs).toBeGreaterThanOrEqual(1)
    await expireCachedLink(repo, digest)
    // The session is days from its expiry: a client replays the close, or sends a chunk after it.
    const replay = await via(close, { method: 'PUT' })
    expect(replay.status).toBe(404)
    expect(((await replay.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('BLOB_UPLOAD_UNKNOWN')
    const more = await via(patch.headers.get('location')!, {
      method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length), 'Content-Range': `${bytes.length}-${2 * bytes.length - 1}` },
    })
    expect(more.status).toBe(404)
    expect(await violations(env)).toEqual([])
    expect((await via(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404)
    // A fresh upload of the same bytes is a blob again.
    await putChunkedBlob(repo, bytes)
    expect((await via(`/v2/${repo}/blobs/${digest}`)).status).toBe(200)
  })
})

describe('an upload session of one streamed write through parts, whose blob the collector swept', () => {
  it('a replayed close answers BLOB_UPLOAD_UNKNOWN (docker, podman: one PATCH without a length)', async () => {
    const repo = repoName('replay')
    const bytes = crypto.getRandomValues(new Uint8Array(65_536))
    const big = new Uint8Array(11 * 1024 * 1024)
    for (let i = 0; i < big.length; i += bytes.length) big.set(bytes, i)
    big[0] = Math.floor(Math.random() * 256)
    big[1] = Math.floor(Math.random() * 256)
    const digest = await sha256(big)
    const post = await via(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    const patch = await via(post.headers.get('location')!, { method: 'PATCH', body: streamOf(big), duplex: 'half' } as RequestInit)
    expect(patch.status).toBe(202)
    const close = `${patch.headers.get('location')}&digest=${digest}`
    expect((await via(close, { method: 'PUT' })).status).toBe(201)
    expect((await bindings.BLOBS.head(keys.blob(digest as Digest)))!.customMetadata!.at).toMatch(/\/parts$/)
    await gc(env, {})
    await expireCachedLink(repo, digest)
    const replay = await via(close, { method: 'PUT' })
    expect(replay.status).toBe(404)
    expect(((await replay.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await violations(env)).toEqual([])
  })
})

describe('a push that loses the race to the sweep', () => {
  it('sees a swept link as absent (HEAD 404, a manifest naming it MANIFEST_BLOB_UNKNOWN): nothing unpullable is stored', async () => {
    const repo = repoName('race')
    const layer = await putChunkedBlob(repo, crypto.getRandomValues(new Uint8Array(300)))
    const key = keys.blobLink(repo as Repo, layer as Digest)
    const mark = keys.gcLinkMark(repo as Repo, layer as Digest)
    // As a run leaves it between its claim and its KV delete: the link still marked, the mark "swept".
    const etag = (await bindings.BLOBS.put(mark, 'marked r 1', { customMetadata: { state: 'marked' } })).etag
    await bindings.BLOBS.put(mark, 'swept r 2', { customMetadata: { state: 'swept', run: 'r' } })
    const value = JSON.parse((await bindings.LINKS.get(key))!)
    await bindings.LINKS.put(key, JSON.stringify({ ...value, gc: etag }), { metadata: { t: 0 } })
    await expireCachedLink(repo, layer)
    expect((await via(`/v2/${repo}/blobs/${layer}`, { method: 'HEAD' })).status).toBe(404)
    await expect(imageOver(repo, layer, 'v1')).rejects.toThrow(/400.*MANIFEST_BLOB_UNKNOWN/)
  })
})

describe('crash at every step, then resume', () => {
  async function scenario() {
    const repo = repoName('crash')
    const kept = await pushImage(repo, 'keep')
    const dropped = await pushImage(repo, 'drop')
    await via(`/v2/${repo}/manifests/drop`, { method: 'DELETE' })
    const unused = await putChunkedBlob(repo, crypto.getRandomValues(new Uint8Array(100)))
    await bindings.BLOBS.put(`data/crash${repo.replace(/\W/g, '')}/w`, new Uint8Array(3), { customMetadata: { started: '1' } })
    return { repo, kept, dropped, unused }
  }

  async function settled(s: Awaited<ReturnType<typeof scenario>>) {
    expect(await pulls(s.kept)).toBe(true)
    expect(await bindings.BLOBS.head(keys.manifest(s.repo as Repo, s.dropped.digest as Digest))).toBeNull()
    for (const d of [s.dropped.layer, s.unused]) {
      expect(await bindings.LINKS.get(keys.blobLink(s.repo as Repo, d as Digest))).toBeNull()
      const index = await bindings.BLOBS.head(keys.blob(d as Digest))
      expect(index === null || index.customMetadata?.gone !== undefined).toBe(true)
    }
  }

  it('counts the steps of a full run', async () => {
    const s = await scenario()
    const d = driver()
    await gc(env, { untagged: true }, d)
    expect(d.steps.length).toBeGreaterThan(10)
    await settled(s)
  })

  for (const after of [false, true]) {
    it(`a run cut ${after ? 'after' : 'before'} each step leaves the registry consistent; resuming finishes the work`, async () => {
      let total = Infinity
      for (let k = 0; k < total; k++) {
        const s = await scenario()
        const memo = new Map<string, unknown>()
        const cut = driver({ memo, crashAt: k, crashAfter: after })
        const id = `gc-cut-${after}-${k}`
        const result = await gc(env, { untagged: true }, cut, id).then(() => 'done', (e) => (e instanceof Crash ? 'crashed' : e))
        if (result === 'done') {
          total = k
          break
        }
        expect(result).toBe('crashed')
        expect(await violations(env)).toEqual([])
        expect(await pulls(s.kept)).toBe(true)
        // Resume (as Workflows replay stored steps), or a fresh run every other time: both finish.
        const resumed = driver({ memo })
        await (k % 2 ? gc(env, { untagged: true }, resumed, id) : gc(env, { untagged: true }))
        await settled(s).catch((e) => {
          throw new Error(`cut at step ${k} (${[...memo.keys()][k] ?? '?'}), resumed ${k % 2 ? 'from stored steps' : 'afresh'}: ${e}`)
        })
        expect(await violations(env)).toEqual([])
      }
      expect(total).toBeGreaterThan(10)
    })
  }
})
