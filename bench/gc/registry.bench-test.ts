/**
 * A synthetic registry built through the storage layer (the same R2/KV records pushes write):
 * repositories × 25 manifests × 4 blobs (config + 3 layers, a quarter of them pointer-indexed),
 * one manifest in five untagged, one unused link per repository: 247 objects per repository,
 * as many repositories as BENCH_GC_OBJECTS asks. Then a dry run and a real run (untagged mode)
 * of the sharded collector, timed, every binding call counted, steps and step state per instance.
 */
import { it } from 'vitest'
import { bindings } from '../../test/helpers'
import { driver, gc, gcEnv, metered } from '../../test/gc/setup'
import { SIZES } from '../../src/gc/collector'
import { keys } from '../../src/storage/keys'
import type { Digest, Repo, Tag } from '../../src/names'

const OBJECTS_PER_REPO = 247
const REPOS = Math.max(1, Math.round(Number((bindings as unknown as Record<string, string>).BENCH_GC_OBJECTS ?? 49_400) / OBJECTS_PER_REPO))
/** BENCH_GC_SHARD_SCALE: shards this many times smaller than production's (to see shard counts grow at sizes a laptop builds). */
const SCALE = Math.max(1, Number((bindings as unknown as Record<string, string>).BENCH_GC_SHARD_SCALE ?? 1))
const sizes = { repoKeys: Math.ceil(SIZES.repoKeys / SCALE), heldPerBlobShard: Math.ceil(SIZES.heldPerBlobShard / SCALE) }
const MANIFESTS = 25 // per repository
const LAYERS = 3 // + config

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
const digestOf = async (bytes: Uint8Array) => `sha256:${hex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))}` as Digest

async function blob(repo: Repo, i: number): Promise<Digest> {
  const bytes = crypto.getRandomValues(new Uint8Array(64))
  const d = await digestOf(bytes)
  let at = keys.blob(d)
  if (i % 4 === 0) {
    at = keys.uploadWrite(hex(crypto.getRandomValues(new Uint8Array(16))), 0)
    await Promise.all([
      bindings.BLOBS.put(at, bytes, { customMetadata: { repo, started: String(Date.now()) } }),
      bindings.BLOBS.put(keys.blob(d), null, { customMetadata: { at, size: '64', repo } }),
    ])
  } else {
    await bindings.BLOBS.put(at, bytes, { customMetadata: { repo } })
  }
  await bindings.LINKS.put(keys.blobLink(repo, d), JSON.stringify({ at, size: 64 }), { metadata: { t: Date.now(), size: 64 } })
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

/** Repositories built at once: the local store is the bottleneck, not the CPU. */
const PARALLEL = 8

it(`collects a registry of ${REPOS} repositories`, async () => {
  const t0 = Date.now()
  const build = async (r: number) => {
    const repo = `bench/r${String(r).padStart(6, '0')}` as Repo
    await Promise.all(Array.from({ length: MANIFESTS }, (_, m) => image(repo, m)))
    await blob(repo, 1) // uploaded, never used
  }
  for (let r = 0; r < REPOS; r += PARALLEL) await Promise.all(Array.from({ length: Math.min(PARALLEL, REPOS - r) }, (_, i) => build(r + i)))
  const built = Date.now() - t0
  const objects = { repositories: REPOS, manifests: REPOS * MANIFESTS, blobs: REPOS * (MANIFESTS * (LAYERS + 1) + 1), tags: REPOS * MANIFESTS * 0.8 }
  const env = gcEnv()
  const out: Record<string, unknown> = { objects, buildMs: built, sizes }
  for (const dryRun of [true, false]) {
    const m = metered(env)
    const start = Date.now()
    const memo = new Map<string, unknown>()
    const steps = driver({ memo })
    const report = await gc(m.env, { dryRun, untagged: true }, steps, undefined, sizes)
    const ms = Date.now() - start
    // Steps and stored step results per Workflow instance: the parent's are the names without "/",
    // a shard's those under "<shard>/" (workflow.ts runs each shard as its own instance).
    const instances = new Map<string, { steps: number; stateBytes: number; maxStepBytes: number }>()
    for (const [name, value] of memo) {
      const at = name.indexOf('/')
      const instance = at < 0 ? 'parent' : name.slice(0, at)
      const i = instances.get(instance) ?? instances.set(instance, { steps: 0, stateBytes: 0, maxStepBytes: 0 }).get(instance)!
      const bytes = new TextEncoder().encode(JSON.stringify(value ?? null)).byteLength
      i.steps++
      i.stateBytes += bytes
      i.maxStepBytes = Math.max(i.maxStepBytes, bytes)
    }
    out[dryRun ? 'dryRun' : 'realRun'] = {
      ms,
      steps: steps.steps.length,
      instances: Object.fromEntries(instances),
      calls: m.calls,
      totals: report.totals,
      kept: report.kept,
    }
  }
  console.log(`BENCH_GC ${JSON.stringify(out)}`)
})
