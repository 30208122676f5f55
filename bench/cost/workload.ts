/**
 * The cost bench's harness: a workload is a sequence of requests through the real router with
 * metered bindings (meter.ts), each step keeping the binding calls it caused; `print` emits the
 * `BENCH_COST` line bench/lib/cost.mjs prices. Shared by the *.bench-test.ts files.
 */
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { router } from '../../src/router'
import type { Env } from '../../src/env'
import { Meter, meterCaches, meteredKV, meteredR2, randomBytes, type Counts } from './meter'

export const MiB = 1024 * 1024
export const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ')

/** Every binding call of the run (the Cache API is metered on its prototype, once). */
export const meter = new Meter()
meterCaches(() => meter)

export interface Step {
  step: string
  route: string
  status: number
  expected: number[]
  calls: Counts
}

/** One workload's requests, each with the binding calls it caused (background work included). */
export class Workload {
  steps: Step[] = []
  constructor(readonly name: string, readonly origin: string, readonly vars: Partial<Env> = {}) {}

  async send(step: string, method: string, path: string, expected: number[], init: RequestInit = {}) {
    const bindings = env as unknown as Env
    const metered: Env = {
      ...bindings,
      ...this.vars,
      BLOBS: meteredR2(meter, bindings.BLOBS),
      LINKS: meteredKV(meter, bindings.LINKS),
    }
    const url = new URL(path, this.origin)
    const before = meter.snapshot()
    const exec = createExecutionContext()
    const res: Response = await router.fetch(new Request(url, { method, ...init }), metered, exec)
    const body = new Uint8Array(await res.arrayBuffer())
    await waitOnExecutionContext(exec)
    const route = `${method} ${routeOf(url.pathname)}`
    this.steps.push({ step, route, status: res.status, expected, calls: meter.since(before) })
    return { status: res.status, headers: res.headers, body }
  }

  /** HEAD blob → POST → PATCH (framing per client) → PUT ?digest= [→ HEAD blob]. */
  async pushBlob(repo: string, blob: Blob, framing: 'length' | 'chunked' | 'monolithic', headAfter = false) {
    const head = await this.send('HEAD blob', 'HEAD', `/v2/${repo}/blobs/${blob.digest}`, [404, 200])
    if (head.status === 200) return
    if (framing === 'monolithic') {
      const post = await this.send('POST upload', 'POST', `/v2/${repo}/blobs/uploads/`, [202])
      const put = withDigest(post.headers.get('location') ?? '', blob.digest, this.origin)
      await this.send('PUT upload (body)', 'PUT', put, [201], {
        body: blob.bytes,
        headers: { 'Content-Length': String(blob.bytes.byteLength), 'Content-Type': 'application/octet-stream' },
      })
    } else {
      const post = await this.send('POST upload', 'POST', `/v2/${repo}/blobs/uploads/`, [202])
      const patch = await this.send(`PATCH (${framing})`, 'PATCH', post.headers.get('location') ?? '', [202],
        framing === 'length' ? lengthBody(blob.bytes) : streamedBody([blob.bytes]))
      const put = withDigest(patch.headers.get('location') ?? '', blob.digest, this.origin)
      await this.send('PUT ?digest=', 'PUT', put, [201])
    }
    if (headAfter) await this.send('HEAD blob (verify)', 'HEAD', `/v2/${repo}/blobs/${blob.digest}`, [200])
  }

  async pull(repo: string, tag: string, image: Image) {
    await this.send('GET manifest', 'GET', `/v2/${repo}/manifests/${tag}`, [200], { headers: { Accept: MANIFEST_TYPES } })
    for (const blob of [image.config, ...image.layers]) {
      const res = await this.send('GET blob', 'GET', `/v2/${repo}/blobs/${blob.digest}`, [200])
      if ((await sha256(res.body)) !== blob.digest) this.steps.at(-1)!.status = -1
    }
  }

  print(notes: Record<string, unknown> = {}): void {
    console.log(`BENCH_COST ${JSON.stringify({ workload: this.name, origin: this.origin, ...notes, steps: this.steps })}`)
  }
}

export function routeOf(path: string): string {
  if (path === '/v2/') return '/v2/'
  if (/\/blobs\/uploads\/[^/]+$/.test(path)) return 'upload session'
  if (/\/blobs\/uploads\/$/.test(path)) return 'uploads'
  if (/\/blobs\//.test(path)) return 'blob'
  if (/\/manifests\//.test(path)) return 'manifest'
  return path
}

export function withDigest(location: string, digest: string, origin: string): string {
  const u = new URL(location, origin)
  u.searchParams.set('digest', digest)
  return u.pathname + u.search
}

export const lengthBody = (bytes: Uint8Array): RequestInit => ({
  body: bytes,
  headers: { 'Content-Length': String(bytes.byteLength), 'Content-Type': 'application/octet-stream' },
})

/** A body without length (what `Transfer-Encoding: chunked` arrives as). */
export function streamedBody(parts: Uint8Array[]): RequestInit {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of parts) for (let i = 0; i < p.byteLength; i += MiB) c.enqueue(p.slice(i, i + MiB))
      c.close()
    },
  })
  return { body, duplex: 'half', headers: { 'Content-Type': 'application/octet-stream' } } as RequestInit
}

export interface Blob {
  digest: string
  bytes: Uint8Array
}
export interface Image {
  config: Blob
  layers: Blob[]
  manifest: Uint8Array
  manifestDigest: string
}

export async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  return 'sha256:' + [...d].map((b) => b.toString(16).padStart(2, '0')).join('')
}

export async function blob(bytes: Uint8Array): Promise<Blob> {
  return { digest: await sha256(bytes), bytes }
}

/** A realistic small image: ~1.5 KiB config, layers of 2 MiB, 700 KiB and 7 MiB (one over 5 MiB). */
export async function makeImage(): Promise<Image> {
  const configJson = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [] as string[] },
    history: [] as unknown[],
  })
  const config = new TextEncoder().encode(configJson.padEnd(1536, ' '))
  const layers = await Promise.all([2 * MiB, 700 * 1024, 7 * MiB].map((n) => blob(randomBytes(n))))
  const cfg = await blob(config)
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg.digest, size: cfg.bytes.byteLength },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.bytes.byteLength })),
  }))
  return { config: cfg, layers, manifest, manifestDigest: await sha256(manifest) }
}

let n = 0
export const freshRepo = (what: string) => `bench/${what}-${Date.now().toString(36)}${(n++).toString(36)}`

export async function pushImage(w: Workload, repo: string, image: Image, framing: 'length' | 'chunked' | 'monolithic', opts: { headManifest: boolean; headAfter: boolean }) {
  for (const b of [...image.layers, image.config]) await w.pushBlob(repo, b, framing, opts.headAfter)
  if (opts.headManifest) await w.send('HEAD manifest', 'HEAD', `/v2/${repo}/manifests/latest`, [404, 200], { headers: { Accept: MANIFEST_TYPES } })
  await w.send('PUT manifest', 'PUT', `/v2/${repo}/manifests/latest`, [201], {
    body: image.manifest,
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': String(image.manifest.byteLength) },
  })
}

