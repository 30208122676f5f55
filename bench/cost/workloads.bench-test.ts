/**
 * Counts the R2, KV and Cache API calls of each reference workload (shared/COST.md)
 * by sending the clients' request sequences (shared/CLIENTS.md) through the real
 * router with metered bindings. Prints one `BENCH_COST {json}` line per workload;
 * bench/run.mjs prices them. Not part of `npm test`.
 */
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { it } from 'vitest'
import { router } from '../../src/router'
import type { Env } from '../../src/env'
import { Meter, meterCaches, meteredKV, meteredR2, randomBytes, type Counts } from './meter'

const MiB = 1024 * 1024
const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ')

let meter = new Meter()
meterCaches(() => meter)

interface Step {
  step: string
  route: string
  status: number
  expected: number[]
  calls: Counts
}

/** One workload's requests, each with the binding calls it caused (background work included). */
class Workload {
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

function routeOf(path: string): string {
  if (path === '/v2/') return '/v2/'
  if (/\/blobs\/uploads\/[^/]+$/.test(path)) return 'upload session'
  if (/\/blobs\/uploads\/$/.test(path)) return 'uploads'
  if (/\/blobs\//.test(path)) return 'blob'
  if (/\/manifests\//.test(path)) return 'manifest'
  return path
}

function withDigest(location: string, digest: string, origin: string): string {
  const u = new URL(location, origin)
  u.searchParams.set('digest', digest)
  return u.pathname + u.search
}

const lengthBody = (bytes: Uint8Array): RequestInit => ({
  body: bytes,
  headers: { 'Content-Length': String(bytes.byteLength), 'Content-Type': 'application/octet-stream' },
})

/** A body without length (what `Transfer-Encoding: chunked` arrives as). */
function streamedBody(parts: Uint8Array[]): RequestInit {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of parts) for (let i = 0; i < p.byteLength; i += MiB) c.enqueue(p.slice(i, i + MiB))
      c.close()
    },
  })
  return { body, duplex: 'half', headers: { 'Content-Type': 'application/octet-stream' } } as RequestInit
}

interface Blob {
  digest: string
  bytes: Uint8Array
}
interface Image {
  config: Blob
  layers: Blob[]
  manifest: Uint8Array
  manifestDigest: string
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  return 'sha256:' + [...d].map((b) => b.toString(16).padStart(2, '0')).join('')
}

async function blob(bytes: Uint8Array): Promise<Blob> {
  return { digest: await sha256(bytes), bytes }
}

/** A realistic small image: ~1.5 KiB config, layers of 2 MiB, 700 KiB and 7 MiB (one over 5 MiB). */
async function makeImage(): Promise<Image> {
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
const freshRepo = (what: string) => `bench/${what}-${Date.now().toString(36)}${(n++).toString(36)}`

async function pushImage(w: Workload, repo: string, image: Image, framing: 'length' | 'chunked' | 'monolithic', opts: { headManifest: boolean; headAfter: boolean }) {
  for (const b of [...image.layers, image.config]) await w.pushBlob(repo, b, framing, opts.headAfter)
  if (opts.headManifest) await w.send('HEAD manifest', 'HEAD', `/v2/${repo}/manifests/latest`, [404, 200], { headers: { Accept: MANIFEST_TYPES } })
  await w.send('PUT manifest', 'PUT', `/v2/${repo}/manifests/latest`, [201], {
    body: image.manifest,
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': String(image.manifest.byteLength) },
  })
}

/** POST, then `size` bytes in `chunk`-byte PATCHes with Content-Range, then PUT ?digest=. */
async function chunkedUpload(w: Workload, repo: string, size: number, chunk: number) {
  const bytes = randomBytes(size)
  const digest = await sha256(bytes)
  const post = await w.send('POST upload', 'POST', `/v2/${repo}/blobs/uploads/`, [202])
  let location = post.headers.get('location') ?? ''
  for (let at = 0; at < size; at += chunk) {
    const part = bytes.subarray(at, Math.min(size, at + chunk))
    const res = await w.send(`PATCH ${chunk / MiB} MiB (Content-Range)`, 'PATCH', location, [202], {
      body: part,
      headers: {
        'Content-Length': String(part.byteLength),
        'Content-Range': `${at}-${at + part.byteLength - 1}`,
        'Content-Type': 'application/octet-stream',
      },
    })
    location = res.headers.get('location') ?? location
  }
  await w.send('PUT ?digest=', 'PUT', withDigest(location, digest, w.origin), [201])
  const check = await w.send('GET blob (check)', 'GET', `/v2/${repo}/blobs/${digest}`, [200])
  if ((await sha256(check.body)) !== digest) w.steps.at(-1)!.status = -1
  w.steps.pop() // the check is not part of the upload's cost
}

async function singlePatchUpload(w: Workload, repo: string, size: number, framing: 'length' | 'chunked') {
  const bytes = randomBytes(size)
  const b = { digest: await sha256(bytes), bytes }
  const post = await w.send('POST upload', 'POST', `/v2/${repo}/blobs/uploads/`, [202])
  const patch = await w.send(`PATCH (${framing})`, 'PATCH', post.headers.get('location') ?? '', [202],
    framing === 'length' ? lengthBody(bytes) : streamedBody([bytes]))
  await w.send('PUT ?digest=', 'PUT', withDigest(patch.headers.get('location') ?? '', b.digest, w.origin), [201])
}

it('reference push, cold pull, warm pull (skopeo order)', async () => {
  // Once per isolate the upload routes load their signing key (src/storage/secrets.ts);
  // counted apart so the workloads show the steady state.
  const warmup = new Workload('isolate-first-upload', 'http://push.registry.test')
  await warmup.send('POST upload', 'POST', `/v2/${freshRepo('warmup')}/blobs/uploads/`, [202])
  warmup.print()

  const image = await makeImage()
  const repo = freshRepo('ref')
  const push = new Workload('push', 'http://push.registry.test')
  await pushImage(push, repo, image, 'length', { headManifest: true, headAfter: false })
  push.print({ blobs: [image.config, ...image.layers].map((b) => b.bytes.byteLength) })

  // Another location: nothing of this image is in its cache.
  const cold = new Workload('pull-cold', 'http://pull.registry.test')
  await cold.pull(repo, 'latest', image)
  cold.print()
  const warm = new Workload('pull-warm', cold.origin)
  await warm.pull(repo, 'latest', image)
  warm.print()

  // A third location where the pull comes back after the link copies expired (LINK_CACHE_SECONDS):
  // modelled by a zero TTL, so links are never cached but blob bytes are.
  const first = new Workload('pull-cold-links-uncached', 'http://later.registry.test', { LINK_CACHE_SECONDS: '0' })
  await first.pull(repo, 'latest', image)
  const later = new Workload('pull-warm-links-expired', first.origin, { LINK_CACHE_SECONDS: '0' })
  await later.pull(repo, 'latest', image)
  later.print()

  // The same image pushed again to the same repository (CI re-push): every HEAD answers 200.
  const again = new Workload('push-unchanged', push.origin)
  await pushImage(again, repo, image, 'length', { headManifest: true, headAfter: false })
  again.print()
})

it('client variants of the reference push', async () => {
  const docker = new Workload('push-docker', 'http://push.registry.test')
  await pushImage(docker, freshRepo('docker'), await makeImage(), 'chunked', { headManifest: false, headAfter: true })
  docker.print()
  const chunkedSkopeo = new Workload('push-chunked', 'http://push.registry.test')
  await pushImage(chunkedSkopeo, freshRepo('chunked'), await makeImage(), 'chunked', { headManifest: true, headAfter: false })
  chunkedSkopeo.print()
  const containerd = new Workload('push-monolithic', 'http://push.registry.test')
  await pushImage(containerd, freshRepo('mono'), await makeImage(), 'monolithic', { headManifest: false, headAfter: false })
  containerd.print()
})

it('64 MiB blob uploads', async () => {
  for (const chunk of [1, 16]) {
    const w = new Workload(`upload-64MiB-${chunk}MiB-chunks`, 'http://push.registry.test')
    await chunkedUpload(w, freshRepo('chunks'), 64 * MiB, chunk * MiB)
    w.print()
  }
  for (const framing of ['chunked', 'length'] as const) {
    const w = new Workload(`upload-64MiB-one-patch-${framing}`, 'http://push.registry.test')
    await singlePatchUpload(w, freshRepo('one'), 64 * MiB, framing)
    w.print()
  }
})

/**
 * `size` bytes made on the fly, never all in memory: a random 64 KiB block, each copy
 * stamped with its index (so no two blocks are alike). `from`-`to` of them as a stream.
 */
function generated(size: number) {
  const block = crypto.getRandomValues(new Uint8Array(65536))
  const piece = 1024 * 1024
  return (from: number, to: number) => {
    let at = from
    return new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= to) return c.close()
        const end = Math.min(to, at + piece)
        const out = new Uint8Array(end - at)
        for (let i = 0; i < out.length; ) {
          const pos = at + i
          const inBlock = pos % block.length
          const n = Math.min(block.length - inBlock, out.length - i)
          out.set(block.subarray(inBlock, inBlock + n), i)
          // the block's index in its first 8 bytes
          const index = Math.floor(pos / block.length)
          for (let b = inBlock; b < 8 && b < inBlock + n; b++) out[i + b - inBlock] = (index >> (8 * b)) & 0xff
          i += n
        }
        at = end
        c.enqueue(out)
      },
    })
  }
}

it('2 GiB blob in 95 MB chunks (issue 10: the big-layer hot path)', async () => {
  const size = 2 * 1024 * MiB
  const chunk = 95_000_000
  // 95 MB is over the 90 MiB default (a Free/Pro plan); as on a plan that allows it.
  const w = new Workload('upload-2GiB-95MB-chunks', 'http://push.registry.test', { MAX_CHUNK_BYTES: String(chunk) })
  const bytes = generated(size)
  const hash = new crypto.DigestStream('SHA-256')
  await bytes(0, size).pipeTo(hash)
  const digest = 'sha256:' + [...new Uint8Array(await hash.digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
  const repo = freshRepo('big')
  const post = await w.send('POST upload', 'POST', `/v2/${repo}/blobs/uploads/`, [202])
  let location = post.headers.get('location') ?? ''
  let chunks = 0
  for (let at = 0; at < size; at += chunk) {
    const end = Math.min(size, at + chunk)
    const res = await w.send('PATCH 95 MB (Content-Range)', 'PATCH', location, [202], {
      body: bytes(at, end),
      duplex: 'half',
      headers: { 'Content-Length': String(end - at), 'Content-Range': `${at}-${end - 1}`, 'Content-Type': 'application/octet-stream' },
    } as RequestInit)
    location = res.headers.get('location') ?? location
    chunks++
  }
  await w.send('PUT ?digest=', 'PUT', withDigest(location, digest, w.origin), [201])
  await w.send('HEAD blob (check)', 'HEAD', `/v2/${repo}/blobs/${digest}`, [200])
  w.steps.pop() // the check is not part of the upload's cost
  w.print({ blobBytes: size, chunkBytes: chunk, chunks })
})
