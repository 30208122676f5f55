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
