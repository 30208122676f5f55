/** The collector's tests: a short-grace registry, image pushes, a Runner standing in for Workflows. */
import { callWith, bindings, sha256, listObjects } from '../helpers'
import type { Env } from '../../src/env'
import { collect, SIZES, type Runner, type Sizes } from '../../src/gc/collector'
import { inlineFleet } from '../../src/gc/fleet'
import type { RunParams } from '../../src/gc/params'
import type { GcReport } from '../../src/storage/gc-reports'

/** Grace and settle 0: everything is "old" at once (GC_TEST_SHORT_GRACE). */
export const SHORT: Partial<Env> = { GC_GRACE_SECONDS: '0', GC_SETTLE_SECONDS: '0', GC_TEST_SHORT_GRACE: 'true' }
export const gcEnv = (more: Partial<Env> = {}): Env => ({ ...bindings, ...SHORT, ...more })
export const via = (path: string, init?: RequestInit, more: Partial<Env> = {}) => callWith({ ...SHORT, ...more }, path, init)

export const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const INDEX = 'application/vnd.oci.image.index.v1+json'

/** Monolithic blob push (POST ?digest=): its bytes live at blobs/<alg>/<hex>. */
export async function putBlob(repo: string, bytes: Uint8Array): Promise<string> {
  const digest = await sha256(bytes)
  const res = await via(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes, headers: { 'Content-Length': String(bytes.length) } })
  if (res.status !== 201) throw new Error(`blob push: ${res.status} ${await res.text()}`)
  return digest
}

/** Chunked blob push (PATCH with Content-Range, then PUT): a pointer index naming data/<id>/…. */
export async function putChunkedBlob(repo: string, bytes: Uint8Array): Promise<string> {
  const digest = await sha256(bytes)
  const post = await via(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  const patch = await via(post.headers.get('location')!, {
    method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length), 'Content-Range': `0-${bytes.length - 1}` },
  })
  const put = await via(`${patch.headers.get('location')}&digest=${digest}`, { method: 'PUT' })
  if (put.status !== 201) throw new Error(`chunked push: ${put.status} ${await put.text()}`)
  return digest
}

export interface Image { repo: string; digest: string; config: string; layer: string; bytes: string }

/** An image with a fresh config and layer (the layer chunked: pointer-indexed), tagged `tag` unless null. */
export async function pushImage(repo: string, tag: string | null, subject?: { digest: string; size: number }): Promise<Image> {
  const config = await putBlob(repo, crypto.getRandomValues(new Uint8Array(40)))
  const layer = await putChunkedBlob(repo, crypto.getRandomValues(new Uint8Array(300)))
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 40 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: 300 }],
  }
  if (subject) doc.subject = { mediaType: MANIFEST, ...subject }
  const bytes = JSON.stringify(doc)
  const digest = await pushManifest(repo, tag ?? (await sha256(bytes)), bytes, MANIFEST)
  return { repo, digest, config, layer, bytes }
}

export async function pushManifest(repo: string, ref: string, bytes: string, type: string): Promise<string> {
  const res = await via(`/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: bytes, headers: { 'Content-Type': type } })
  if (res.status !== 201) throw new Error(`manifest push: ${res.status} ${await res.text()}`)
  return res.headers.get('docker-content-digest')!
}

/** Whether an image pulls completely: manifest by digest, then each blob's bytes. */
export async function pulls(img: Image): Promise<boolean> {
  const m = await via(`/v2/${img.repo}/manifests/${img.digest}`, { headers: { Accept: MANIFEST } })
  if (m.status !== 200) return false
  await m.arrayBuffer()
  for (const d of [img.config, img.layer]) {
    const b = await via(`/v2/${img.repo}/blobs/${d}`)
    const body = new Uint8Array(await b.arrayBuffer())
    if (b.status !== 200 || (await sha256(body)) !== d) return false
  }
  return true
}

export interface Driver extends Runner {
  steps: string[]
}

/**
 * A Runner as Workflows behave: a step's result is kept in `memo` (shared by a resumed run);
 * `crashAt`: the run dies when it starts its k-th step (after `crashAfter` = true: once it ran).
 */
export function driver(opts: { memo?: Map<string, unknown>; crashAt?: number; crashAfter?: boolean; onSleep?: () => Promise<void> } = {}): Driver {
  const memo = opts.memo ?? new Map<string, unknown>()
  const steps: string[] = []
  let entered = 0 // steps started (a shard's steps run inside the parent's "await" step: inline fleet)
  return {
    steps,
    async do<T>(name: string, fn: () => Promise<T>): Promise<T> {
      if (memo.has(name)) return memo.get(name) as T
      const k = entered++
      if (opts.crashAt === k && !opts.crashAfter) throw new Crash(name)
      const value = structuredClone(((await fn()) ?? null) as T)
      if (opts.crashAt === k && opts.crashAfter) throw new Crash(name) // the work done, its result lost
      steps.push(name)
      memo.set(name, value)
      return value
    },
    async sleep() {
      await opts.onSleep?.()
    },
  }
}

export class Crash extends Error {}

export const params = (p: Partial<RunParams> = {}): RunParams => ({ dryRun: false, untagged: false, repo: null, ...p })

let runs = 0
/** A run; `id`: resume that run (a Workflow instance keeps its id). */
export function gc(env: Env, p: Partial<RunParams>, runner: Runner = driver(), id = `gc-test-${runs++}`, sizes: Sizes = SIZES): Promise<GcReport> {
  return collect(env, id, params(p), runner, inlineFleet(env, runner), sizes)
}

/** Shards of a few keys each: every repository, digest and upload range its own shard, or nearly. */
export const TINY: Sizes = { repoKeys: 3, heldPerBlobShard: 1 }

/**
 * The registry's invariants: every tag names a stored manifest; every live index entry's bytes
 * exist. Returns the violations.
 */
export async function violations(env: Env): Promise<string[]> {
  const out: string[] = []
  let cursor: string | undefined
  do {
    const page = await env.LINKS.list<{ digest?: string }>({ prefix: 'repos/', cursor })
    for (const k of page.keys) {
      const m = /^repos\/(.+)\+tags\/(.+)$/.exec(k.name)
      if (m && k.metadata?.digest && !(await env.BLOBS.head(`repos/${m[1]}+manifests/${k.metadata.digest}`))) out.push(`tag ${k.name} names a missing manifest`)
    }
    cursor = page.list_complete ? undefined : page.cursor
  } while (cursor)
  for (const o of await listObjects('blobs/')) {
    const meta = o.customMetadata ?? {}
    if (meta.gone) continue
    if (meta.at && !(await env.BLOBS.head(meta.at))) out.push(`index ${o.key} without bytes at ${meta.at}`)
  }
  return out
}

/** Bindings that count every call by method name. */
export function metered(env: Env): { env: Env; calls: Record<string, number> } {
  const calls: Record<string, number> = {}
  const wrap = <T extends object>(target: T, prefix: string): T =>
    new Proxy(target, {
      get(t, prop, receiver) {
        const v = Reflect.get(t, prop, receiver)
        if (typeof v !== 'function') return v
        return (...args: unknown[]) => {
          const name = `${prefix}.${String(prop)}`
          calls[name] = (calls[name] ?? 0) + 1
          return (v as (...a: unknown[]) => unknown).apply(t, args)
        }
      },
    })
  return { env: { ...env, BLOBS: wrap(env.BLOBS, 'r2'), LINKS: wrap(env.LINKS, 'kv') }, calls }
}

export const WRITES = /\.(put|delete|createMultipartUpload|resumeMultipartUpload)$/
