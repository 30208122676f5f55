/** In-memory images for the tool's tests: the bytes a source would hold, and a fetch that records. */
import { exports } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import type { ImageSource } from '../../tool/core/push.mjs'
import type { Env } from '../../src/env'
import { router } from '../../src/router'
import { ORIGIN, randomBlob, sha256 } from '../helpers'

const enc = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

export interface MemoryImage {
  source: ImageSource
  digest: string
  blobs: Map<string, Uint8Array>
  manifests: Map<string, Uint8Array>
}

/** An OCI image of `layerSizes` random layers (or an index of one image per platform). */
export async function memoryImage(layerSizes: number[], platforms: string[] = []): Promise<MemoryImage> {
  const blobs = new Map<string, Uint8Array>()
  const manifests = new Map<string, Uint8Array>()
  const image = async (arch: string) => {
    const layers = []
    for (const size of layerSizes) {
      const bytes = randomBlob(size)
      const digest = await sha256(bytes)
      blobs.set(digest, bytes)
      layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size })
    }
    const config = enc({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } })
    const configDigest = await sha256(config)
    blobs.set(configDigest, config)
    const manifest = enc({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers,
    })
    const digest = await sha256(manifest)
    manifests.set(digest, manifest)
    return { digest, size: manifest.length, arch }
  }
  let root: { digest: string; bytes: Uint8Array; mediaType: string }
  if (platforms.length === 0) {
    const m = await image('amd64')
    root = { digest: m.digest, bytes: manifests.get(m.digest)!, mediaType: 'application/vnd.oci.image.manifest.v1+json' }
  } else {
    const children = []
    for (const arch of platforms) children.push(await image(arch))
    const bytes = enc({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: children.map((c) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: c.digest, size: c.size,
        platform: { architecture: c.arch, os: 'linux' },
      })),
    })
    root = { digest: await sha256(bytes), bytes, mediaType: 'application/vnd.oci.image.index.v1+json' }
    manifests.set(root.digest, bytes)
  }
  const source: ImageSource = {
    name: 'memory',
    root: async () => root,
    manifest: async (d) => manifests.get(d.digest)!,
    blob: async (d) => {
      const bytes = blobs.get(d.digest)!
      return {
        digest: d.digest,
        size: bytes.length,
        open: async (start: number, end: number) => new Blob([bytes.slice(start, end)]).stream(),
      }
    },
  }
  return { source, digest: root.digest, blobs, manifests }
}

export interface Sent {
  method: string
  url: string
  headers: Headers
}

/**
 * These tests chunk blobs of KiB to exercise chunking quickly. The registry asks for chunks of
 * at least a 10 MiB part (OCI-Chunk-Min-Length), which the tool honours by sending such blobs
 * whole: so the fetches below answer as a registry that states no minimum, unless `minimum`.
 */
function noMinimum(res: Response, minimum: boolean): Response {
  if (minimum || !res.headers.has('oci-chunk-min-length')) return res
  const headers = new Headers(res.headers)
  headers.delete('oci-chunk-min-length')
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers })
}

/** The worker's own fetch handler (`exports.default.fetch`), as the tool's fetch, recording each request. */
export function workerFetch(log: Sent[] = [], { minimum = false } = {}): typeof fetch {
  const worker = (exports as unknown as { default: { fetch(r: Request): Promise<Response> } }).default
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init)
    log.push({ method: request.method, url: request.url, headers: request.headers })
    return noMinimum(await worker.fetch(request), minimum)
  }) as typeof fetch
}

/** The router with some settings replaced (AUTH_MODE, MAX_CHUNK_BYTES), as the tool's fetch. */
export function routerFetch(bindings: Env, log: Sent[] = [], { minimum = false } = {}): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init)
    log.push({ method: request.method, url: request.url, headers: request.headers })
    const ctx = createExecutionContext()
    const res = await router.fetch(request, bindings, ctx)
    await waitOnExecutionContext(ctx)
    return noMinimum(res, minimum)
  }) as typeof fetch
}

export const HOST = new URL(ORIGIN).host

/** The bytes of a blob in the registry, read back. */
export async function pulled(repo: string, digest: string): Promise<Uint8Array> {
  const res = await workerFetch()(`${ORIGIN}/v2/${repo}/blobs/${digest}`)
  if (res.status !== 200) throw new Error(`GET blob ${digest}: ${res.status}`)
  return new Uint8Array(await res.arrayBuffer())
}

/** Whether two byte arrays are equal (vitest's toEqual walks them element by element: seconds per MiB). */
export function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
