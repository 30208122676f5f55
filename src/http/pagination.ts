/** `n`/`last` pagination (spec "Listing Tags") and its `Link: <…>; rel="next"` header. */
import { RegistryError } from '../errors'

/** Largest page served; a larger `n` is clamped (the spec lets a registry return fewer). */
export const MAX_PAGE = 1000

export interface Page {
  n: number
  last: string | null
}

export function parsePage(url: URL): Page {
  const raw = url.searchParams.get('n')
  let n = MAX_PAGE
  if (raw !== null && raw !== '') {
    n = Number(raw)
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n)) {
      throw new RegistryError('PAGINATION_NUMBER_INVALID', { n: raw.slice(0, 50) })
    }
  }
  return { n: Math.min(n, MAX_PAGE), last: url.searchParams.get('last') || null }
}

/**
 * The `Link` header pointing at the page after `last` (none: from the first); `cursor`, when
 * given, is where storage resumes reading (opaque to clients, who follow the Link as given).
 */
export function nextLink(path: string, n: number, last: string | null, cursor: string | null = null): string {
  const query = new URLSearchParams({ n: String(n) })
  if (last !== null) query.set('last', last)
  if (cursor !== null) query.set('cursor', cursor)
  return `<${path}?${query}>; rel="next"`
}
