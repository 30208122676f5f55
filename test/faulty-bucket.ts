/**
 * A bucket whose chosen R2 calls fail (the local simulator's way on a full disk, or R2's internal
 * error), for the upload tests that check a storage failure is answered as the registry's (500
 * UNKNOWN), never as the client's.
 */
import { expect } from 'vitest'
import { bindings, bytesOf, call, errorCode, sha256 } from './helpers'

export type Op = 'put' | 'get' | 'head' | 'list' | 'createMultipartUpload' | 'uploadPart' | 'complete' | 'abort'

const r2Failure = (op: string) => new Error(`${op}: We encountered an internal error. Please try again. (10001)`)

async function drain(value: unknown): Promise<void> {
  if (value instanceof ReadableStream) await value.pipeTo(new WritableStream())
}

/**
 * The bucket, with the calls `fails(op, key)` picks failing (a put or part upload after reading
 * its body; a get `broken` mid-body rather than at once). Records the multipart uploads started.
 */
export function faulty(fails: (op: Op, key: string) => boolean, broken = false): { BLOBS: R2Bucket; started: string[] } {
  const started: string[] = []
  const upload = (mp: R2MultipartUpload): R2MultipartUpload =>
    new Proxy(mp, {
      get(target, name) {
        if (name === 'uploadPart') {
          return async (n: number, value: Uint8Array) => {
            if (fails('uploadPart', target.key)) {
              await drain(value)
              throw r2Failure('uploadPart')
            }
            return target.uploadPart(n, value)
          }
        }
        if (name === 'complete' || name === 'abort') {
          return async (...args: unknown[]) => {
            if (fails(name, target.key)) throw r2Failure(name)
            return (target[name] as (...a: unknown[]) => Promise<unknown>)(...args)
          }
        }
        const v = Reflect.get(target, name)
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
  const BLOBS = new Proxy(bindings.BLOBS, {
    get(target, name) {
      const value = Reflect.get(target, name)
      if (name === 'put') {
        return async (key: string, body: unknown, options?: R2PutOptions) => {
          if (fails('put', key)) {
            await drain(body)
            throw r2Failure('put')
          }
          return target.put(key, body as ReadableStream, options)
        }
      }
      if (name === 'get') {
        return async (key: string, options?: R2GetOptions) => {
          if (!fails('get', key)) return target.get(key, options)
          if (!broken) throw r2Failure('get')
          const object = await target.get(key, options)
          if (!object || !('body' in object)) return object
          // its first 64 KiB (past the tail's etag list), then the failure
          const reader = object.body.getReader()
          let sent = 0
          const body = new ReadableStream<Uint8Array>({
            async pull(c) {
              const next = sent < 64 * 1024 ? await reader.read() : { done: true, value: undefined }
              if (next.done) {
                void reader.cancel().catch(() => {})
                return c.error(r2Failure('get (body)'))
              }
              sent += next.value.byteLength
              c.enqueue(next.value)
            },
          })
          return new Proxy(object, { get: (o, n) => (n === 'body' ? body : Reflect.get(o, n)) })
        }
      }
      if (name === 'head' || name === 'list') {
        return async (...args: unknown[]) => {
          if (fails(name, String(args[0] ?? ''))) throw r2Failure(name)
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
        }
      }
      if (name === 'createMultipartUpload') {
        return async (...args: Parameters<R2Bucket['createMultipartUpload']>) => {
          if (fails('createMultipartUpload', args[0])) throw r2Failure('createMultipartUpload')
          const mp = await target.createMultipartUpload(...args)
          started.push(mp.uploadId)
          return upload(mp)
        }
      }
      if (name === 'resumeMultipartUpload') {
        return (...args: Parameters<R2Bucket['resumeMultipartUpload']>) => upload(target.resumeMultipartUpload(...args))
      }
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { BLOBS, started }
}

/** The reply is 500 UNKNOWN with the spec's error JSON. */
export async function expectStoreFailure(res: Response, what: string): Promise<void> {
  expect(res.status, what).toBe(500)
  expect(res.headers.get('content-type'), what).toContain('application/json')
  expect(await errorCode(res), what).toBe('UNKNOWN')
}

/** The blob is served whole under its digest. */
export async function expectServed(repo: string, digest: string): Promise<void> {
  const res = await call(`/v2/${repo}/blobs/${digest}`)
  expect(res.status).toBe(200)
  expect(await sha256(await bytesOf(res))).toBe(digest)
}
