/**
 * The one interface every manifest media type implements. A handler checks the
 * shape of the exact bytes and says what they reference; it makes no storage
 * calls (the route verifies references, so the storage cost sits in one place).
 */
import { RegistryError } from '../errors'
import { tryDigest, type Digest } from '../names'

export interface Descriptor {
  mediaType: string
  digest: Digest
  size: number
  artifactType?: string
  annotations?: Record<string, string>
  platform?: Platform
  urls?: string[]
}

export interface Platform {
  architecture: string
  os: string
  variant?: string
}

/** What a manifest says about itself once parsed. */
export interface Parsed {
  /** Blobs that must be linked in the repository before the manifest is accepted. */
  blobs: Digest[]
  /** Manifests that must exist in the repository (an index's children). */
  manifests: Descriptor[]
  /** The manifest this one refers to (referrers API); need not exist. */
  subject?: Descriptor
  /** For the referrers API: `artifactType`, else the config's media type. */
  artifactType?: string
  annotations?: Record<string, string>
}

/** Where the manifest is being put, for handlers that check it (schema 1 `name`/`tag`). */
export interface PutTarget {
  repo: string
  tag: string | null
  /** Every tag it is put under, when more than the URL's (`?tag=` on a PUT by digest); absent: just `tag`. */
  tags?: readonly string[]
  /** The media type the manifest is put as (Content-Type, else its `mediaType`); unknown when absent. */
  mediaType?: string
}

export interface ManifestHandler {
  /** Media types served by this handler (schema 1 has two). */
  readonly mediaTypes: readonly string[]
  /** Shape checks only; throws MANIFEST_INVALID. `doc` is the parsed JSON of `bytes`. */
  parse(doc: Record<string, unknown>, bytes: Uint8Array, target: PutTarget): Promise<Parsed> | Parsed
  /** The content the digest covers, when not the exact bytes (schema 1: the JWS payload). */
  digestedBytes?(doc: Record<string, unknown>, bytes: Uint8Array): Uint8Array
  /** Whether the type is gated by a setting (schema 1). */
  readonly setting?: 'SCHEMA1_ENABLED'
}

/** A MANIFEST_INVALID with a reason. */
export const invalid = (reason: string): RegistryError => new RegistryError('MANIFEST_INVALID', { reason })

/**
 * Longest media type (and artifactType): RFC 6838 §4.2 allows 127 characters for the type and
 * for the subtype. The image-spec requires both fields to comply with it; the referrers API and
 * the web UI echo them, so a longer one is refused rather than stored.
 */
export const MAX_MEDIA_TYPE_LENGTH = 255

function mediaTypeField(value: unknown, where: string): string {
  if (typeof value !== 'string' || !value) throw invalid(`${where} is missing`)
  if (value.length > MAX_MEDIA_TYPE_LENGTH) throw invalid(`${where} is longer than ${MAX_MEDIA_TYPE_LENGTH} characters (RFC 6838)`)
  return value
}

/** An optional `artifactType` (a media type), or undefined. */
export function artifactTypeOf(doc: Record<string, unknown>): string | undefined {
  if (doc.artifactType === undefined) return undefined
  if (typeof doc.artifactType !== 'string') throw invalid('artifactType must be a string')
  return doc.artifactType === '' ? undefined : mediaTypeField(doc.artifactType, 'artifactType')
}

/**
 * Optional `annotations`: a map of strings to strings (image-spec annotations.md: "both the key
 * and value MUST be strings"); anything else is refused, so a value never nests.
 */
export function annotationsOf(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined
  if (!isObject(value)) throw invalid(`${where} must be an object of strings`)
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalid(`${where}[${JSON.stringify(k.slice(0, 100))}] must be a string`)
  }
  return value as Record<string, string>
}

/** Checks and returns a descriptor (OCI image-spec descriptor.md). */
export function descriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalid(`${where} is not a descriptor`)
  const { digest, size } = value
  const mediaType = mediaTypeField(value.mediaType, `${where}.mediaType`)
  const d = tryDigest(typeof digest === 'string' ? digest : null)
  if (!d) throw invalid(`${where}.digest is not a valid sha256/sha512 digest`)
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where}.size is invalid`)
  const out: Descriptor = { mediaType, digest: d, size }
  if (typeof value.artifactType === 'string') out.artifactType = value.artifactType
  const annotations = annotationsOf(value.annotations, `${where}.annotations`)
  if (annotations) out.annotations = annotations
  if (Array.isArray(value.urls)) out.urls = value.urls.filter((u): u is string => typeof u === 'string')
  if (isObject(value.platform)) {
    const { architecture, os, variant } = value.platform
    if (typeof architecture === 'string' && typeof os === 'string') {
      out.platform = { architecture, os, ...(typeof variant === 'string' ? { variant } : {}) }
    }
  }
  return out
}

/** An array of descriptors at `doc[field]` (required unless `optional`). */
export function descriptors(doc: Record<string, unknown>, field: string, optional = false): Descriptor[] {
  const value = doc[field]
  if (value === undefined && optional) return []
  if (!Array.isArray(value)) throw invalid(`${field} must be an array`)
  return value.map((v, i) => descriptor(v, `${field}[${i}]`))
}

export function schemaVersion(doc: Record<string, unknown>, expected: number): void {
  if (doc.schemaVersion !== expected) throw invalid(`schemaVersion must be ${expected}`)
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** The manifest's own bytes plus the sizes of the descriptors it names (config, layers, an index's children). */
export function referencedSize(doc: Record<string, unknown>, bytes: Uint8Array): number {
  const sizes = [doc.config, ...(Array.isArray(doc.layers) ? doc.layers : []), ...(Array.isArray(doc.manifests) ? doc.manifests : [])]
    .map((d) => (isObject(d) && typeof d.size === 'number' && Number.isSafeInteger(d.size) && d.size >= 0 ? d.size : 0))
  return sizes.reduce((a, b) => a + b, bytes.byteLength)
}
