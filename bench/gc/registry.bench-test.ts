/**
 * A synthetic registry built through the storage layer (the same R2/KV records pushes write):
 * REPOS repositories × MANIFESTS manifests × 4 blobs (config + 3 layers, a quarter of them
 * pointer-indexed), one manifest in five untagged, one unused link per repository; then a dry
 * run and a real run (untagged mode) of the collector, timed, every binding call counted.
 */
import { it } from 'vitest'
import { bindings } from '../../test/helpers'
import { driver, gc, gcEnv, metered } from '../../test/gc/setup'
import { keys } from '../../src/storage/keys'
import type { Digest, Repo, Tag } from '../../src/names'

const REPOS = 200
const MANIFESTS = 25 // per repository → 5,000
const LAYERS = 3 // + config → 20,000 blobs

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
const digestOf = async (bytes: Uint8Array) => `sha256:${hex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))}` as Digest

async function blob(repo: Repo, i: number): Promise<Digest> {
  const bytes = crypto.getRandomValues(new Uint8Array(64))
  const d = await digestOf(bytes)
  let at = keys.blob(d)
  if (i % 4 === 0) {
    at = keys.uploadTail(hex(crypto.getRandomValues(new Uint8Array(16))), 'w')
    await bindings.BLOBS.put(at, bytes, { customMetadata: { repo, started: String(Date.now()) } })
    await bindings.BLOBS.put(keys.blob(d), null, { customMetadata: { at, size: '64', repo } })
  } else {
    await bindings.BLOBS.put(at, bytes, { customMetadata: { repo } })
  }
  await bindings.LINKS.put(keys.blobLink(repo, d), JSON.stringify({ at, size: 64 }), { metadata: { t: Date.now() } })
  return d
}

async function image(repo: Repo, m: number): Promise<void> {
  const ds = await Promise.all(Array.from({ length: LAYERS + 1 }, (_, i) => blob(repo, m * 4 + i)))
  const doc = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: ds[0], size: 64 },
    layers: ds.slice(1).map((digest) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: 64 })),
  }
  const bytes = new TextEncoder().encode(JSON.stringify(doc))
  const d = await digestOf(bytes)
  await bindings.BLOBS.put(keys.manifest(repo, d), bytes, { httpMetadata: { contentType: doc.mediaType } })
  if (m % 5 !== 0) {
    await bindings.LINKS.put(keys.tag(repo, `t${m}` as Tag), bytes, { metadata: { digest: d, mediaType: doc.mediaType, pushed: Date.now(), size: 320 + bytes.length } })
  }
}

it('collects a registry of 20,000 blobs, 5,000 manifests, 200 repositories', async () => {
  const t0 = Date.now()
  for (let r = 0; r < REPOS; r++) {
    const repo = `bench/r${r}` as Repo
    await Promise.all(Array.from({ length: MANIFESTS }, (_, m) => image(repo, m)))
    await blob(repo, 1) // uploaded, never used
  }
  const built = Date.now() - t0
  const objects = { repositories: REPOS, manifests: REPOS * MANIFESTS, blobs: REPOS * (MANIFESTS * (LAYERS + 1) + 1), tags: REPOS * MANIFESTS * 0.8 }
  const env = gcEnv()
  const out: Record<string, unknown> = { objects, buildMs: built }
  for (const dryRun of [true, false]) {
    const m = metered(env)
    const start = Date.now()
    const steps = driver()
    const report = await gc(m.env, { dryRun, untagged: true }, steps)
    out[dryRun ? 'dryRun' : 'realRun'] = { ms: Date.now() - start, steps: steps.steps.length, calls: m.calls, totals: report.totals, kept: report.kept }
  }
  console.log(`BENCH_GC ${JSON.stringify(out)}`)
})
