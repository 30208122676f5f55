/** Byte ranges: the blob GET `Range` header (RFC 9110 §14) and the upload PATCH `Content-Range`. */
import { RegistryError } from '../errors'
import type { ByteRange } from '../storage/edge-cache'

export type { ByteRange } from '../storage/edge-cache'

/**
 * A single range of a `size`-byte blob: `bytes=a-b`, `bytes=a-`, `bytes=-n`.
 * null when absent or not a single byte range (serve the whole blob, as RFC 9110
 * allows); 416 when it cannot be satisfied.
 */
export function parseRange(header: string | null, size: number): ByteRange | null {
  if (!header) return null
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return null
  const unsatisfiable = new RegistryError('RANGE_INVALID', { range: header.slice(0, 100), size }, {
    'Content-Range': `bytes */${size}`,
  })
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0 || size === 0) throw unsatisfiable
    return { offset: Math.max(0, size - n), length: Math.min(n, size) }
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (start >= size || end < start) throw unsatisfiable
  return { offset: start, length: end - start + 1 }
}

/** `Content-Range: start-end` of a chunk (with or without `bytes=`/`bytes `, with an optional `/total`). */
export function parseContentRange(header: string | null): { start: number; end: number } | null | 'invalid' {
  if (header === null) return null
  const m = /^(?:bytes[= ])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim())
  if (!m) return 'invalid'
  const start = Number(m[1])
  const end = Number(m[2])
  return end < start || !Number.isSafeInteger(end) ? 'invalid' : { start, end }
}

/** The spec's upload progress header: `0-<last byte>` (distribution sends `0-0` before any byte). */
export const progressRange = (offset: number): string => `0-${Math.max(0, offset - 1)}`

/** Content-Length as a number, or null when absent (chunked) ; 400 when malformed. */
export function contentLength(headers: Headers): number | null {
  const raw = headers.get('content-length')
  if (raw === null) return null
  const n = Number(raw)
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n)) {
    throw new RegistryError('BLOB_UPLOAD_INVALID', 'malformed Content-Length')
  }
  return n
}
