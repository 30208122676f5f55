/** `Accept` and `Content-Type` as the manifest routes need them. */

/** The media types an `Accept` header lists (parameters and q-values dropped); empty = anything. */
export function acceptedTypes(header: string | null): string[] {
  if (!header) return []
  return header
    .split(',')
    .map((t) => t.split(';')[0]!.trim().toLowerCase())
    .filter(Boolean)
}

export function accepts(accepted: string[], mediaType: string): boolean {
  return accepted.length === 0 || accepted.some((t) => t === '*/*' || t === mediaType || t === `${mediaType.split('/')[0]}/*`)
}

/** Types that say nothing about which manifest a body is. */
const GENERIC = new Set(['application/json', 'application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded'])

/** A request's Content-Type without parameters, or null when absent or generic. */
export function specificType(header: string | null): string | null {
  const type = header?.split(';')[0]?.trim().toLowerCase()
  return type && !GENERIC.has(type) ? type : null
}
