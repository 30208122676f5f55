/**
 * The stages bench's worker (bench/lib/stages.mjs): each path takes one request body and does
 * one stage of what an upload does with it, with the project's own code where there is some
 * (src/storage/streams.ts, src/digest/), so the time and CPU of each stage are measured alone.
 * Not part of the registry; runs only under `wrangler dev` for the bench.
 */
import { NativeHash } from '../../src/digest/native'
import { batched, chunksOf } from '../../src/storage/streams'

const MiB = 1024 * 1024
const PART = 10 * MiB

type Stage = (req: Request, env: { B: R2Bucket }, length: number) => Promise<string | void>

/** Reads the body in 1 MiB batches (what every upload path does), feeding `each`. */
async function read(req: Request, each?: (chunk: Uint8Array) => unknown): Promise<number> {
  let n = 0
  for await (const chunk of batched(req.body!, MiB)) {
    n += chunk.byteLength
    await each?.(chunk)
  }
  return n
}

/** The body batched into a FixedLengthStream that R2 puts (upload/session.ts `streamInto`). */
async function pumped(req: Request, env: { B: R2Bucket }, length: number, options: R2PutOptions, each?: (chunk: Uint8Array) => unknown): Promise<void> {
  const fixed = new FixedLengthStream(length)
  const writer = fixed.writable.getWriter()
  const put = env.B.put(`k${crypto.randomUUID()}`, fixed.readable, options)
  await read(req, async (chunk) => {
    await each?.(chunk)
    await writer.write(chunk)
  })
  await writer.close()
  await put
}

const STAGES: Record<string, Stage> = {
  /** The body read as it arrives (4 KiB chunks), before 2cd6bdc. */
  'read-as-it-comes': async (req) => {
    let n = 0
    for await (const chunk of chunksOf(req.body!)) n += chunk.byteLength
    return String(n)
  },
  'read': async (req) => String(await read(req)),
  'read+native-sha256': async (req) => {
    const hash = new NativeHash('sha256')
    await read(req, (chunk) => hash.update(chunk))
    return hash.hex()
  },
  'read+native-sha512': async (req) => {
    const hash = new NativeHash('sha512')
    await read(req, (chunk) => hash.update(chunk))
    return hash.hex()
  },
  /** The body handed to R2 as it is (no JavaScript between). */
  'r2-put-body': async (req, env) => void (await env.B.put(new URL(req.url).searchParams.get('key') ?? `k${crypto.randomUUID()}`, req.body!)),
  /** As the monolithic POST ?digest=: R2 checks the SHA-256. */
  'r2-put-body+checksum': async (req, env) => {
    await env.B.put(`k${crypto.randomUUID()}`, req.body!, { sha256: new URL(req.url).searchParams.get('sha256')! })
  },
  'r2-put-pumped': (req, env, length) => pumped(req, env, length, {}),
  'r2-put-pumped+onlyIf': (req, env, length) => pumped(req, env, length, { onlyIf: { etagDoesNotMatch: '*' } }),
  /** A PATCH with Content-Length at offset 0: conditional put, native hash on the way. */
  'r2-put-pumped+onlyIf+native-sha256': async (req, env, length) => {
    const hash = new NativeHash('sha256')
    await pumped(req, env, length, { onlyIf: { etagDoesNotMatch: '*' } }, (chunk) => hash.update(chunk))
    return hash.hex()
  },
  /** A chunked PATCH at offset 0: 10 MiB multipart parts, one uploading while the next fills. */
  'r2-multipart-10MiB+native-sha256': async (req, env) => {
    const hash = new NativeHash('sha256')
    const upload = await env.B.createMultipartUpload(`k${crypto.randomUUID()}`)
    const parts: Promise<R2UploadedPart>[] = []
    let part = new Uint8Array(PART)
    let filled = 0
    const flush = async (bytes: Uint8Array) => {
      if (parts.length) await parts[parts.length - 1]
      parts.push(upload.uploadPart(parts.length + 1, bytes))
    }
    await read(req, async (chunk) => {
      hash.update(chunk)
      for (let at = 0; at < chunk.byteLength; ) {
        const take = Math.min(PART - filled, chunk.byteLength - at)
        part.set(chunk.subarray(at, at + take), filled)
        filled += take
        at += take
        if (filled === PART) {
          await flush(part)
          part = new Uint8Array(PART)
          filled = 0
        }
      }
    })
    if (filled) await flush(part.subarray(0, filled))
    await upload.complete(await Promise.all(parts))
    return hash.hex()
  },
}

export default {
  async fetch(req: Request, env: { B: R2Bucket }): Promise<Response> {
    const url = new URL(req.url)
    // What a pull costs: an object read back from R2 as the response body.
    if (req.method === 'GET') {
      const object = await env.B.get(url.searchParams.get('key')!)
      return object ? new Response(object.body) : new Response('no such key\n', { status: 404 })
    }
    const stage = STAGES[url.pathname.slice(1)]
    if (!stage) return new Response(`stages: ${Object.keys(STAGES).join(' ')}\n`, { status: 404 })
    const out = await stage(req, env, Number(req.headers.get('content-length')))
    return new Response(`${out ?? ''}\n`)
  },
}
