/**
 * A fake upstream registry for the proxy tests: an in-memory distribution API with the Docker
 * token flow, reached through `fetch` (vi.spyOn(globalThis, 'fetch'): the tests and the worker
 * share one isolate in vitest-pool-workers 0.15, which no longer ships `fetchMock`).
 * Every request it sees is recorded; faults are switched on per test.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { vi } from 'vitest'
import type { Env } from '../../src/env'
import { forgetUpstreamAuth } from '../../src/proxy/upstream'
import { router } from '../../src/router'
import { bindings, ORIGIN, randomBlob, sha256 } from '../helpers'

export const UPSTREAM = 'https://upstream.test'
export const REALM = 'https://auth.upstream.test/token'
export const CDN = 'https://cdn.upstream.test'

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

export interface Seen {
  method: string
  url: string
  path: string
  authorization: string | null
}

type Fault =
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'down' }
  | { kind: 'hang' }
  | { kind: 'corrupt' }
  | { kind: 'truncate' }
  | { kind: 'cut' }
  | { kind: 'wrong-size' }

export class FakeUpstream {
  /** Every request, token requests included. */
  readonly seen: Seen[] = []
  readonly manifests = new Map<string, { bytes: Uint8Array; type: string }>()
  readonly tags = new Map<string, string>()
  readonly blobs = new Map<string, Uint8Array>()
  readonly referrers = new Map<string, unknown[]>()
  /** 'none': open; 'basic': Basic challenge; 'token': Bearer challenge and a token server. */
  auth: 'none' | 'basic' | 'token' = 'none'
  /** When set, the only credentials accepted (Basic, at the registry or the token server). */
  credentials: string | null = null
  /**
   * With `credentials` and token auth: repositories anyone may pull. An anonymous token request
   * gets a token granting pull on those only (and nothing on others), as distribution's does.
   */
  publicRepos: RegExp | null = null
  tokenSeconds = 300
  /** Blobs are served through a redirect to a CDN that refuses any Authorization. */
  redirectBlobs = false
  /** The CDN answers 401 with a Bearer challenge of its own realm (`${CDN}/steal`), which grants anything. */
  cdnChallenges = false
  /** Repositories each blob of `image()` is in: a blob is served in those only (distribution's links). */
  readonly blobRepos = new Map<string, Set<string>>()
  /** A fault for requests whose path matches (token requests included). */
  fault: { match: RegExp; fault: Fault } | null = null
  private issued = new Map<string, string>()
  /** Every token issued: what it grants, and the credentials it was asked with. */
  readonly tokens: { token: string; scope: string; authorization: string | null }[] = []

  /** Installs the fake as the isolate's `fetch` and forgets cached upstream tokens. */
  install(): this {
    forgetUpstreamAuth()
    vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => this.fetch(new Request(input as RequestInfo, init)))
    return this
  }

  count(method: string, pattern: RegExp): number {
    return this.seen.filter((s) => s.method === method && pattern.test(s.path)).length
  }

  /** An image of `layers` layer blobs under repo:tag; its manifest digest and bytes. */
  async image(repo: string, tag: string | null, layers: Uint8Array[] = [randomBlob(3000)], arch = 'amd64') {
    const config = new TextEncoder().encode(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n: Math.random() }))
    const descriptors = []
    for (const b of [config, ...layers]) {
      const d = await sha256(b)
      this.blobs.set(d, b)
      this.blobRepos.set(d, new Set([...(this.blobRepos.get(d) ?? []), repo]))
      descriptors.push({ digest: d, size: b.byteLength })
    }
    const [c, ...ls] = descriptors
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c },
      layers: ls.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
    }
    const { digest, bytes } = await this.putManifest(repo, tag, manifest, OCI_MANIFEST)
    return { digest, bytes, config: c!.digest, layers: ls.map((l) => l.digest) }
  }

  /** An index of an amd64 and an arm64 image under repo:tag. */
  async index(repo: string, tag: string) {
    const amd64 = await this.image(repo, null, [randomBlob(2000)], 'amd64')
    const arm64 = await this.image(repo, null, [randomBlob(2000)], 'arm64')
    const index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: amd64.digest, size: amd64.bytes.byteLength, platform: { architecture: 'amd64', os: 'linux' } },
        { mediaType: OCI_MANIFEST, digest: arm64.digest, size: arm64.bytes.byteLength, platform: { architecture: 'arm64', os: 'linux' } },
      ],
    }
    const { digest, bytes } = await this.putManifest(repo, tag, index, OCI_INDEX)
    return { digest, bytes, amd64, arm64 }
  }

  async putManifest(repo: string, tag: string | null, doc: unknown, type: string) {
    const bytes = new TextEncoder().encode(JSON.stringify(doc))
    const digest = await sha256(bytes)
    this.manifests.set(digest, { bytes, type })
    if (tag) this.tags.set(`${repo}:${tag}`, digest)
    return { digest, bytes }
  }

  async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url)
    this.seen.push({ method: req.method, url: req.url, path: url.pathname, authorization: req.headers.get('authorization') })
    const faulty = this.fault?.match.test(url.pathname) ? this.fault.fault.kind : null
    if (this.fault && faulty) {
      const f = this.fault.fault
      if (f.kind === 'down') throw new TypeError('Network connection lost.')
      if (f.kind === 'hang') return hang(req.signal)
      if (f.kind === 'status') return error(f.status, 'FAULT', f.headers)
    }
    if (url.origin === CDN) {
      if (url.pathname === '/steal') return Response.json({ token: 'stolen', expires_in: 300 })
      if (this.cdnChallenges && req.headers.get('authorization') !== 'Bearer stolen') {
        return error(401, 'UNAUTHORIZED', { 'WWW-Authenticate': `Bearer realm="${CDN}/steal",service="cdn"` })
      }
      if (req.headers.has('authorization')) return error(400, 'ONLY_ONE_AUTH')
      return this.blob(req, url.pathname.slice(1), faulty)
    }
    if (url.href.startsWith(REALM)) return this.token(req, url)
    if (url.origin !== UPSTREAM) throw new TypeError(`fake upstream: unexpected host ${url.host}`)
    const m = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\/(.+)$/.exec(url.pathname)
    if (!m) return error(404, 'NOT_FOUND')
    const [, repo, kind, ref] = m as unknown as [string, string, string, string]
    const denied = this.check(req, repo)
    if (denied) return denied
    if (kind === 'manifests') return this.manifest(req, repo, ref, faulty)
    if (kind === 'blobs') {
      const holders = this.blobRepos.get(ref)
      if (holders && !holders.has(repo)) return error(404, 'BLOB_UNKNOWN')
      if (this.redirectBlobs) return new Response(null, { status: 307, headers: { Location: `${CDN}/${ref}` } })
      return this.blob(req, ref, faulty)
    }
    if (kind === 'tags') {
      const all = [...this.tags.keys()].filter((k) => k.startsWith(`${repo}:`)).map((k) => k.slice(repo.length + 1)).sort()
      if (!all.length) return error(404, 'NAME_UNKNOWN')
      const last = url.searchParams.get('last')
      const tags = last === null ? all : all.filter((t) => t > last)
      const n = Number(url.searchParams.get('n') ?? 1000)
      const headers: Record<string, string> = { 'Content-Type': 'application/json' }
      if (tags.length > n) headers.Link = `</v2/${repo}/tags/list?last=${tags[n - 1]}&n=${n}>; rel="next"`
      return Response.json({ name: repo, tags: tags.slice(0, n) }, { headers })
    }
    const list = this.referrers.get(ref)
    if (!list) return error(404, 'NOT_FOUND')
    return Response.json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: list }, { headers: { 'Content-Type': OCI_INDEX } })
  }

  private check(req: Request, repo: string): Response | null {
    const header = req.headers.get('authorization')
    if (this.auth === 'basic') {
      if (header === `Basic ${btoa(this.credentials ?? '')}`) return null
      return error(401, 'UNAUTHORIZED', { 'WWW-Authenticate': 'Basic realm="fake"' })
    }
    if (this.auth === 'token') {
      const scope = header?.startsWith('Bearer ') ? this.issued.get(header.slice(7)) : undefined
      if (scope === `repository:${repo}:pull`) return null
      return error(401, 'UNAUTHORIZED', {
        'WWW-Authenticate': `Bearer realm="${REALM}",service="fake.upstream",scope="repository:${repo}:pull"`,
      })
    }
    return null
  }

  private token(req: Request, url: URL): Response {
    if (url.searchParams.get('service') !== 'fake.upstream') return error(400, 'BAD_SERVICE')
    const auth = req.headers.get('authorization')
    let scope = url.searchParams.get('scope') ?? ''
    if (this.credentials && auth !== `Basic ${btoa(this.credentials)}`) {
      if (auth !== null || !this.publicRepos) return error(401, 'UNAUTHORIZED')
      const repo = /^repository:(.+):pull$/.exec(scope)?.[1]
      if (!repo || !this.publicRepos.test(repo)) scope = ''
    }
    const token = `tok-${this.issued.size + 1}`
    this.issued.set(token, scope)
    this.tokens.push({ token, scope, authorization: auth })
    return Response.json({ token, expires_in: this.tokenSeconds })
  }

  private manifest(req: Request, repo: string, ref: string, fault: Fault['kind'] | null): Response {
    const digest = ref.includes(':') ? ref : this.tags.get(`${repo}:${ref}`)
    const m = digest && this.manifests.get(digest)
    if (!m || !digest) return error(404, 'MANIFEST_UNKNOWN')
    let bytes = m.bytes
    if (fault === 'corrupt') bytes = bytes.map((b, i) => (i === 1 ? b ^ 1 : b))
    const headers = { 'Content-Type': m.type, 'Content-Length': String(bytes.byteLength), 'Docker-Content-Digest': digest }
    return new Response(req.method === 'HEAD' ? null : bytes, { headers })
  }

  private blob(req: Request, digest: string, kind: Fault['kind'] | null): Response {
    const b = this.blobs.get(digest)
    if (!b) return error(404, 'BLOB_UNKNOWN')
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(b.byteLength), 'Docker-Content-Digest': digest }
    if (kind === 'wrong-size') headers['Content-Length'] = String(b.byteLength + 1)
    if (req.method === 'HEAD') return new Response(null, { headers })
    if (kind === 'corrupt') return new Response(b.map((x, i) => (i === b.length - 1 ? x ^ 1 : x)), { headers })
    if (kind === 'truncate') return new Response(b.slice(0, b.length >> 1), { headers })
    if (kind === 'cut') return new Response(failingAfter(b, b.length >> 1), { headers })
    return new Response(chunked(b), { headers })
  }
}

/** A request straight to the router with some settings, the reply returned before background work ends (streamed bodies). */
export function callProxy(overrides: Partial<Env>, path: string, init?: RequestInit): { res: Promise<Response>; done: Promise<void> } {
  const ctx = createExecutionContext()
  const request = new Request(path.startsWith('http') ? path : ORIGIN + path, init)
  const res = router.fetch(request, { ...bindings, ...overrides }, ctx) as Promise<Response>
  return { res, done: res.then(() => waitOnExecutionContext(ctx)) }
}

/** callProxy, reading the whole body before waiting for background work. */
export async function get(overrides: Partial<Env>, path: string, init?: RequestInit): Promise<{ res: Response; body: Uint8Array; error: unknown }> {
  const call = callProxy(overrides, path, init)
  const res = await call.res
  let body = new Uint8Array(0)
  let error: unknown = null
  try {
    body = new Uint8Array(await res.arrayBuffer())
  } catch (err) {
    error = err
  }
  await call.done
  return { res, body, error }
}

export const upstreams = (...list: Record<string, unknown>[]): Partial<Env> => ({ UPSTREAMS: JSON.stringify(list) })

/** The credentials of `privateUpstream`, which read everything there. */
export const ADMIN = 'admin:admin-pw'

/** The fake as a registry with token auth: ADMIN pulls everything, anyone pulls public/*. */
export function privateUpstream(up: FakeUpstream): FakeUpstream {
  up.auth = 'token'
  up.credentials = ADMIN
  up.publicRepos = /^public\//
  return up
}

/** Two entries on the one upstream: `tk` with ADMIN, `anon` without credentials (`extra` on both). */
export const twoEntries = (extra: Record<string, unknown> = {}): Partial<Env> => ({
  ...upstreams({ prefix: 'tk', url: UPSTREAM, ...extra }, { prefix: 'anon', url: UPSTREAM, ...extra }),
  UPSTREAM_CREDENTIALS: JSON.stringify({ tk: ADMIN }),
})

function error(status: number, code: string, headers: Record<string, string> = {}): Response {
  return Response.json({ errors: [{ code, message: code.toLowerCase() }] }, { status, headers })
}

function hang(signal: AbortSignal): Promise<Response> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
}

function chunked(b: Uint8Array, size = 64 * 1024): ReadableStream<Uint8Array> {
  let at = 0
  return new ReadableStream({
    pull(c) {
      if (at >= b.length) return c.close()
      c.enqueue(b.slice(at, at + size))
      at += size
    },
  })
}

function failingAfter(b: Uint8Array, after: number): ReadableStream<Uint8Array> {
  let sent = false
  return new ReadableStream({
    pull(c) {
      if (sent) return c.error(new Error('connection reset'))
      c.enqueue(b.slice(0, after))
      sent = true
    },
  })
}
