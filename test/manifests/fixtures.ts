/**
 * Manifest fixtures for the workers-runtime tests: media types, example images and
 * indexes pushed through the API, and the checks every "nothing was stored" test makes.
 *
 * Requests go to the worker's fetch handler (src/index.ts) directly, not through
 * `exports.default.fetch` (../helpers `call`): under vitest-pool-workers every request
 * through the harness gets slower as the file's request count grows
 * (cloudflare/workers-sdk#15446), which made a file of a few hundred requests take minutes.
 */
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { expect } from 'vitest'
import type { Env } from '../../src/env'
import worker from '../../src/index'
import { ORIGIN, randomBlob, sha256 } from '../helpers'

/**
 * A request to the registry's fetch handler with the test bindings (some replaced by
 * `overrides`, e.g. a setting), waiting for its background work as the runtime would.
 */
export async function api(path: string, init?: RequestInit, overrides: Partial<Env> = {}): Promise<Response> {
  const ctx = createExecutionContext()
  const request = new Request(path.startsWith('http') ? path : ORIGIN + path, init)
  const res = await worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, { ...(env as unknown as Env), ...overrides }, ctx)
  await waitOnExecutionContext(ctx)
  return res
}

/** A request with settings replaced (DELETE_ENABLED, SCHEMA1_ENABLED, MANIFEST_MAX_BYTES…). */
export const callWithEnv = (overrides: Partial<Env>, path: string, init?: RequestInit): Promise<Response> => api(path, init, overrides)

/** Pushes a blob the way skopeo does (POST, one PATCH with length, PUT ?digest=): its digest. */
export async function pushBlob(repo: string, bytes: Uint8Array): Promise<string> {
  const digest = await sha256(bytes)
  const post = await api(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  const patch = await api(post.headers.get('location')!, { method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length) } })
  const put = await api(`${patch.headers.get('location')}&digest=${digest}`, { method: 'PUT' })
  if (put.status !== 201) throw new Error(`push failed: ${put.status} ${await put.text()}`)
  return digest
}

export const MT = {
  dockerV2: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  schema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  schema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociNondistributableLayer: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  empty: 'application/vnd.oci.empty.v1+json',
} as const

export type Doc = Record<string, unknown>

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  [field: string]: unknown
}

/** A manifest as it goes over the wire: its exact text, bytes and digest. */
export interface Built {
  doc: Doc
  mediaType: string
  text: string
  bytes: Uint8Array
  digest: string
  size: number
  /** This manifest as a descriptor (for an index entry or a subject). */
  descriptor: Descriptor
}

/**
 * Serialises with unusual spacing and a trailing newline, so a registry that
 * re-serialises instead of storing the exact bytes gets a different digest.
 */
export async function build(doc: Doc, mediaType = doc.mediaType as string): Promise<Built> {
  const text = JSON.stringify(doc, null, 3) + '\n'
  const bytes = new TextEncoder().encode(text)
  const digest = await sha256(bytes)
  return { doc, mediaType, text, bytes, digest, size: bytes.byteLength, descriptor: { mediaType, digest, size: bytes.byteLength } }
}

/** The empty config/layer of OCI artifacts: `{}`. */
export const EMPTY_JSON = '{}'
export const EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'

/** Pushes `bytes` as a blob of `repo` and returns its descriptor. */
export async function pushBlobOf(repo: string, mediaType: string, bytes: Uint8Array | string = randomBlob(512)): Promise<Descriptor> {
  const b = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes
  return { mediaType, digest: await pushBlob(repo, b), size: b.byteLength }
}

export interface ImageOptions {
  /** Layers to push (default 2). */
  layers?: number
  platform?: { os: string; architecture: string; variant?: string }
  /** Fields merged into the manifest (artifactType, subject, annotations…). */
  extra?: Doc
}

/** An image manifest whose config and layers have been pushed to `repo` (the manifest is not). */
export async function dockerImage(repo: string, opts: ImageOptions = {}): Promise<Built> {
  const config = await pushBlobOf(repo, MT.dockerConfig, configJson(opts.platform))
  const layers = await Promise.all(Array.from({ length: opts.layers ?? 2 }, () => pushBlobOf(repo, MT.dockerLayer)))
  return build({ schemaVersion: 2, mediaType: MT.dockerV2, config, layers, ...opts.extra })
}

export async function ociImage(repo: string, opts: ImageOptions = {}): Promise<Built> {
  const config = await pushBlobOf(repo, MT.ociConfig, configJson(opts.platform))
  const layers = await Promise.all(Array.from({ length: opts.layers ?? 2 }, () => pushBlobOf(repo, MT.ociLayer)))
  return build({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers, ...opts.extra })
}

/** An OCI artifact (empty config, one layer) with `artifactType`, optionally referring to `subject`. */
export async function ociArtifact(repo: string, artifactType: string, subject?: Descriptor, extra: Doc = {}): Promise<Built> {
  const config = await pushBlobOf(repo, MT.empty, EMPTY_JSON)
  const layer = await pushBlobOf(repo, 'application/vnd.example.signature', randomBlob(64))
  return build({
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType,
    config,
    layers: [layer],
    ...(subject ? { subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size } } : {}),
    ...extra,
  })
}

function configJson(platform: ImageOptions['platform'] = { os: 'linux', architecture: 'amd64' }): string {
  return JSON.stringify({ ...platform, created: new Date().toISOString(), nonce: crypto.randomUUID(), rootfs: { type: 'layers', diff_ids: [] } })
}

/** An index of `children` with their platforms (the children are not pushed here). */
export function index(mediaType: string, children: { built: Built; platform: ImageOptions['platform'] }[], extra: Doc = {}): Promise<Built> {
  return build({
    schemaVersion: 2,
    mediaType,
    manifests: children.map(({ built, platform }) => ({ ...built.descriptor, platform })),
    ...extra,
  })
}

/** PUT a manifest; `contentType` null sends none (fetch then says text/plain, which is generic). */
export function putManifest(repo: string, reference: string, body: Uint8Array | string, contentType: string | null): Promise<Response> {
  const headers: Record<string, string> = {}
  if (contentType !== null) headers['Content-Type'] = contentType
  return api(`/v2/${repo}/manifests/${reference}`, { method: 'PUT', body, headers })
}

/** PUT a built manifest with its media type, expecting 201; returns the reply. */
export async function push(repo: string, reference: string, m: Built): Promise<Response> {
  const res = await putManifest(repo, reference, m.bytes, m.mediaType)
  expect(res.status, `PUT ${reference}: ${await res.clone().text()}`).toBe(201)
  expect(res.headers.get('docker-content-digest')).toBe(reference.includes(':') ? reference : m.digest)
  return res
}

export function getManifest(repo: string, reference: string, init: RequestInit = {}): Promise<Response> {
  return api(`/v2/${repo}/manifests/${reference}`, init)
}

/** The exact bytes of a reply. */
export const bytesOf = async (res: Response): Promise<Uint8Array> => new Uint8Array(await res.arrayBuffer())

/** A 200 reply serving exactly `m`: its bytes and every header the spec names. */
export async function expectServes(res: Response, m: Built, method = 'GET'): Promise<void> {
  const body = await bytesOf(res)
  expect(res.status, new TextDecoder().decode(body.subarray(0, 2000))).toBe(200)
  expect(res.headers.get('content-type')).toBe(m.mediaType)
  expect(res.headers.get('content-length')).toBe(String(m.size))
  expect(res.headers.get('docker-content-digest')).toBe(m.digest)
  expect(res.headers.get('etag')).toBe(`"${m.digest}"`)
  if (method === 'HEAD') expect(body.byteLength).toBe(0)
  else expectSameBytes(body, m.bytes)
}

/** Byte-for-byte equality, fast on megabytes (a deep equal of a 4 MiB array takes seconds). */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength)
  const first = actual.findIndex((b, i) => b !== expected[i])
  if (first !== -1) expect(actual.subarray(first, first + 32), `first difference at byte ${first}`).toEqual(expected.subarray(first, first + 32))
}

/** An OCI error reply: its status and first code. */
export async function expectError(res: Response, status: number, code: string): Promise<void> {
  const text = await res.text()
  expect(res.status, text).toBe(status)
  const body = JSON.parse(text) as { errors?: { code: string }[] }
  expect(body.errors?.[0]?.code, text).toBe(code)
}

/**
 * Proof a refused PUT stored nothing: no manifest under its digest (GET and HEAD 404),
 * no tag, and no referrer entry for its subject.
 */
export async function expectNotStored(repo: string, digest: string, opts: { tag?: string; subject?: string } = {}): Promise<void> {
  const get = await getManifest(repo, digest)
  expect(get.status, await get.clone().text()).toBe(404)
  expect(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']).toContain(await codeOf(get))
  expect((await getManifest(repo, digest, { method: 'HEAD' })).status).toBe(404)
  if (opts.tag) {
    expect((await getManifest(repo, opts.tag)).status).toBe(404)
    expect(await tagsOf(repo)).not.toContain(opts.tag)
  }
  if (opts.subject) {
    const refs = (await (await api(`/v2/${repo}/referrers/${opts.subject}`)).json()) as { manifests: Descriptor[] }
    expect(refs.manifests.map((d) => d.digest)).not.toContain(digest)
  }
}

async function codeOf(res: Response): Promise<string | undefined> {
  return ((await res.json()) as { errors?: { code: string }[] }).errors?.[0]?.code
}

/** Every tag of `repo` (one page of up to 1000); [] for an unknown repository. */
export async function tagsOf(repo: string): Promise<string[]> {
  const res = await api(`/v2/${repo}/tags/list`)
  if (res.status === 404) return []
  expect(res.status).toBe(200)
  return ((await res.json()) as { tags: string[] }).tags
}

/** Runs `fn` over `items`, `width` at a time. */
export async function inBatches<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(fn))))
  return out
}
