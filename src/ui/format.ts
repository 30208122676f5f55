/** How the UI writes sizes, times, digests and media types (plain text; templates escape it). */

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB']

/** 1234567 → "1.2 MB" (decimal units, as registries and `docker images` show sizes). */
export function formatBytes(n: number | undefined | null): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '—'
  let i = 0
  while (n >= 1000 && i < UNITS.length - 1) {
    n /= 1000
    i++
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${UNITS[i]}`
}

/** ms since epoch → "2026-12-01 15:04 UTC"; the browser's script turns it into local time. */
export function formatTime(ms: number | undefined | null): string {
  if (!ms || !Number.isFinite(ms)) return '—'
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? '—' : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

/** "sha256:0123456789ab…" → "0123456789ab" (12 hex digits, as docker shows image ids). */
export const shortDigest = (d: string): string => d.slice(d.indexOf(':') + 1, d.indexOf(':') + 13)

const MEDIA_TYPES: Record<string, string> = {
  'application/vnd.oci.image.manifest.v1+json': 'OCI image',
  'application/vnd.oci.image.index.v1+json': 'OCI index',
  'application/vnd.docker.distribution.manifest.v2+json': 'Docker image',
  'application/vnd.docker.distribution.manifest.list.v2+json': 'Docker manifest list',
  'application/vnd.docker.distribution.manifest.v1+prettyjws': 'Docker schema 1',
  'application/vnd.docker.distribution.manifest.v1+json': 'Docker schema 1',
}

/** A short name for a manifest media type; the full one otherwise. */
export const mediaTypeName = (t: string): string => MEDIA_TYPES[t] ?? t

export const INDEX_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]
