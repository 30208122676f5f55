/** Shared test helpers: requests through the worker's own fetch handler, digests, blobs. */
import { exports } from 'cloudflare:workers'

export const ORIGIN = 'http://registry.test'

/** A request to the registry, through the real fetch handler with real (simulated) R2/KV. */
export function call(path: string, init?: RequestInit): Promise<Response> {
  const worker = (exports as unknown as { default: { fetch(r: Request): Promise<Response> } }).default
  return worker.fetch(new Request(path.startsWith('http') ? path : ORIGIN + path, init))
}

export async function sha256(bytes: Uint8Array | string): Promise<string> {
  const b = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes
  return 'sha256:' + hex(new Uint8Array(await crypto.subtle.digest('SHA-256', b)))
}

export async function sha512(bytes: Uint8Array): Promise<string> {
  return 'sha512:' + hex(new Uint8Array(await crypto.subtle.digest('SHA-512', bytes)))
}

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('')

/** `size` bytes of cheap pseudo-random data (no two blobs of one test alike). */
export function randomBlob(size: number): Uint8Array {
  const out = new Uint8Array(size)
  const seed = crypto.getRandomValues(new Uint8Array(65536))
  for (let i = 0; i < size; i += seed.length) out.set(seed.subarray(0, Math.min(seed.length, size - i)), i)
  out.subarray(0, Math.min(16, size)).set(crypto.getRandomValues(new Uint8Array(Math.min(16, size))))
  return out
}

/** A fresh repository name per call, so tests never see each other's state. */
let n = 0
export const repoName = (prefix = 'test') => `${prefix}/r${Date.now().toString(36)}${(n++).toString(36)}`

/** Pushes a blob the way skopeo does (POST, one PATCH with length, PUT ?digest=): its digest. */
export async function pushBlob(repo: string, bytes: Uint8Array): Promise<string> {
  const digest = await sha256(bytes)
  const post = await call(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  const patch = await call(post.headers.get('location')!, {
    method: 'PATCH',
    body: bytes,
    headers: { 'Content-Length': String(bytes.length) },
  })
  const put = await call(`${patch.headers.get('location')}&digest=${digest}`, { method: 'PUT' })
  if (put.status !== 201) throw new Error(`push failed: ${put.status} ${await put.text()}`)
  return digest
}

/** The OCI error code of a reply. */
export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code: string }[] }
  return body.errors?.[0]?.code
}

// ---------------------------------------------------------------------------
// Helpers for the blob and upload tests (appended; the ones above are unchanged).
// ES module imports are hoisted, so they may sit here.
import { env as testEnv } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import type { Env } from '../src/env'
import { router } from '../src/router'

export const MiB = 1024 * 1024

/** The test worker's bindings (real simulated R2 and KV), typed. */
export const bindings = testEnv as unknown as Env

/**
 * A request straight to the router with some bindings replaced (a setting, a
 * stale KV), waiting for its background work like the runtime would.
 * Also the way to hand the handler a body stream that errors: through `call`
 * the service binding turns a failed stream into a clean end of body.
 */
export async function callWith(overrides: Partial<Env>, path: string, init?: RequestInit): Promise<Response> {
  const ctx = createExecutionContext()
  const request = new Request(path.startsWith('http') ? path : ORIGIN + path, init)
  const res = await router.fetch(request, { ...bindings, ...overrides }, ctx)
  // The runtime sends the body while background work runs (a cold blob fills the cache as the
  // client reads it): read first, then wait. A body that fails is handed on failing.
  let body: BodyInit | null = null
  if (res.body) {
    try {
      body = await res.arrayBuffer()
    } catch (err) {
      body = new ReadableStream({ start: (controller) => controller.error(err) })
    }
  }
  await waitOnExecutionContext(ctx)
  return new Response(body, res)
}

/** POST /blobs/uploads/: the new session's Location (throws unless 202). */
export async function startUpload(repo: string, via: typeof call = call): Promise<string> {
  const res = await via(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  if (res.status !== 202) throw new Error(`POST failed: ${res.status} ${await res.text()}`)
  return res.headers.get('location')!
}

/** A session Location with `digest=` added (Locations always carry `?_state=`). */
export const withDigest = (location: string, digest: string): string => `${location}&digest=${digest}`

/** The body of a reply as bytes. */
export const bytesOf = async (res: Response): Promise<Uint8Array> => new Uint8Array(await res.arrayBuffer())

/** `bytes` as a stream of `chunk`-sized pieces (a body of unknown length). */
export function streamOf(bytes: Uint8Array, chunk = MiB): ReadableStream<Uint8Array> {
  let at = 0
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.length) return c.close()
      c.enqueue(bytes.slice(at, at + chunk))
      at += chunk
    },
  })
}

/** A body that sends the first `after` bytes of `bytes`, then fails (a client cut off). */
export function cutOffStream(bytes: Uint8Array, after: number, chunk = MiB): ReadableStream<Uint8Array> {
  let at = 0
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= after) return c.error(new Error('connection reset by peer'))
      const end = Math.min(after, at + chunk)
      c.enqueue(bytes.slice(at, end))
      at = end
    },
  })
}

/** Every R2 object (under `prefix`), with custom metadata. */
export async function listObjects(prefix?: string): Promise<R2Object[]> {
  const out: R2Object[] = []
  let cursor: string | undefined
  do {
    const page = await bindings.BLOBS.list({ prefix, cursor, include: ['customMetadata'] } as R2ListOptions)
    out.push(...page.objects)
    cursor = page.truncated ? page.cursor : undefined
  } while (cursor)
  return out
}

/**
 * KV as one edge location sees it: each key's first read is remembered (a miss
 * as much as a value) and served again for the next `hold` reads, whatever was
 * written or deleted meanwhile; writes go through to the real namespace.
 * Real KV caches negative lookups and values at a location for up to a minute.
 */
export class StaleKV {
  /** Reads answered from the remembered copy. */
  staleReads = 0
  /** Reads answered from the remembered copy with a miss. */
  staleMisses = 0
  private readonly seen = new Map<string, { value: string | null; reads: number }>()

  constructor(
    private readonly kv: KVNamespace = bindings.LINKS,
    private readonly hold = 1_000,
  ) {}

  /** Typed as the binding, to pass as `LINKS`. */
  get binding(): KVNamespace {
    return this as unknown as KVNamespace
  }

  async get(key: string, options?: unknown): Promise<unknown> {
    const type = typeof options === 'string' ? options : (options as { type?: string } | undefined)?.type ?? 'text'
    let entry = this.seen.get(key)
    if (entry && entry.reads < this.hold) {
      entry.reads++
      this.staleReads++
      if (entry.value === null) this.staleMisses++
    } else {
      entry = { value: await this.kv.get(key), reads: 0 }
      this.seen.set(key, entry)
    }
    const v = entry.value
    if (v === null || type === 'text') return v
    if (type === 'json') return JSON.parse(v)
    if (type === 'arrayBuffer') return new TextEncoder().encode(v).buffer
    if (type === 'stream') return new Response(v).body
    throw new Error(`StaleKV: unsupported type ${type}`)
  }

  put(...args: Parameters<KVNamespace['put']>): Promise<void> {
    return this.kv.put(...args)
  }

  delete(key: string): Promise<void> {
    return this.kv.delete(key)
  }

  list(options?: KVNamespaceListOptions) {
    return this.kv.list(options)
  }

  getWithMetadata(key: string, options?: unknown) {
    return this.kv.getWithMetadata(key, options as KVNamespaceGetOptions<'text'>)
  }
}

/**
 * A request body that sends its first `at` bytes, then waits for `open()`: a slow client, so
 * another request can run while this one is in the middle of its body. `reading` resolves once
 * the body is being read (the handler has looked at storage and started streaming it).
 */
export function slowBody(bytes: Uint8Array, at: number): { stream: ReadableStream<Uint8Array>; reading: Promise<void>; open(): void } {
  let started!: () => void
  let go!: () => void
  const reading = new Promise<void>((r) => (started = r))
  const gate = new Promise<void>((r) => (go = r))
  let sent = 0
  const stream = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (sent === 0) {
        c.enqueue(bytes.slice(0, at))
        sent = at
        return started()
      }
      await gate
      if (sent >= bytes.length) return c.close()
      c.enqueue(bytes.slice(sent))
      sent = bytes.length
    },
  })
  return { stream, reading, open: go }
}

/** The bucket, recording the bytes each get returns (what a request read back). */
export function countingReads(): { BLOBS: R2Bucket; read: number[] } {
  const read: number[] = []
  const BLOBS = new Proxy(bindings.BLOBS, {
    get(target, name) {
      const value = Reflect.get(target, name)
      if (name !== 'get') return typeof value === 'function' ? value.bind(target) : value
      return async (...args: Parameters<R2Bucket['get']>) => {
        const object = await target.get(...args)
        if (object && 'body' in object) read.push(object.size - ((args[1]?.range as { offset?: number } | undefined)?.offset ?? 0))
        return object
      }
    },
  })
  return { BLOBS, read }
}

/** A request sending `bytes` as the chunk at `from`, with Content-Length and Content-Range. */
export const ranged = (method: string, bytes: Uint8Array, from: number): RequestInit => ({
  method, body: bytes, headers: { 'Content-Length': String(bytes.length), 'Content-Range': `${from}-${from + bytes.length - 1}` },
})
