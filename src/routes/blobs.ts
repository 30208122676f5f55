/** GET/HEAD/DELETE /v2/<name>/blobs/<digest> */
import type { IRequest } from 'itty-router'
import { RegistryError } from '../errors'
import type { Ctx } from '../http/context'
import { parseRange } from '../http/ranges'
import { parseDigest, parseRepo } from '../names'
import { blobBytes, forgetBlobBytes } from '../storage/edge-cache'
import { proxiedBlob } from '../proxy/blobs'
import { readBlobLink } from '../storage/links'
import { assertNotPinned } from '../gc/immutable'

/**
 * HEAD: cached link or 1 KV get. GET: + cached bytes, or 1 R2 get on a cold location.
 * Proxied: the same once linked; a miss reads the upstream once (src/proxy/blobs.ts).
 */
export async function get(req: IRequest, c: Ctx): Promise<Response> {
  const repo = parseRepo(req.params.name)
  const digest = parseDigest(req.params.digest)
  let link = await readBlobLink(c.env, c, repo, digest)                   // cache, else KV get
  let streaming: ReadableStream | null = null
  if (!link && c.proxy) {
    const fetched = await proxiedBlob(c, c.proxy, digest, req.method, req.headers.has('range'))  // R2 head, upstream, R2 put
    ;[link, streaming] = fetched ? [fetched.link, fetched.body] : [null, null]
  }
  if (!link) throw new RegistryError('BLOB_UNKNOWN', { digest })
  const etag = `"${digest}"`
  const headers = new Headers({
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    ETag: etag,
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'max-age=31536000, immutable',
  })
  if (matchesEtag(req.headers.get('if-none-match'), etag)) {
    await streaming?.cancel()
    return new Response(null, { status: 304, headers })
  }
  if (streaming) return new Response(streaming, { headers: { ...Object.fromEntries(headers), 'Content-Length': String(link.size) } })
  const range = parseRange(req.headers.get('range'), link.size)
  const length = range ? range.length : link.size
  headers.set('Content-Length', String(length))
  const status = range ? 206 : 200
  if (range) headers.set('Content-Range', `bytes ${range.offset}-${range.offset + length - 1}/${link.size}`)
  if (req.method === 'HEAD') return new Response(null, { status, headers })
  const body = await blobBytes(c.env, c, digest, link, range)            // cache, else R2 get
  if (!body) throw new RegistryError('BLOB_UNKNOWN', { digest })
  return new Response(body, { status, headers })
}

/**
 * 1 KV get + 1 KV delete; the bytes stay in R2 for other repositories (and GC). With
 * IMMUTABLE_TAGS covering the repository: +1 R2 list (a blob an immutable tag reaches is 403).
 */
export async function remove(req: IRequest, c: Ctx): Promise<Response> {
  const repo = parseRepo(req.params.name)
  const digest = parseDigest(req.params.digest)
  if (!c.settings.DELETE_ENABLED) throw new RegistryError('UNSUPPORTED', 'deletes are disabled on this registry')
  await assertNotPinned(c.env, repo, digest, 'blob')                                    // (IMMUTABLE_TAGS) R2 list
  if (!(await c.store.unlinkBlob(repo, digest))) throw new RegistryError('BLOB_UNKNOWN', { digest })
  await forgetBlobBytes(c, digest)
  return new Response(null, { status: 202, headers: { 'Content-Length': '0' } })
}

export function matchesEtag(header: string | null, etag: string): boolean {
  if (!header) return false
  return header.split(',').some((t) => {
    const v = t.trim().replace(/^W\//, '')
    return v === '*' || v === etag || v === etag.slice(1, -1)
  })
}
