/**
 * Referrers in R2, per repository and subject: one empty object per referring manifest, its
 * descriptor in customMetadata, so one list answers a page of the API with no further read.
 * R2 lists are strongly consistent: a referrer is listed as soon as it is pushed.
 *
 * Bounds: a descriptor is stored in at most DESCRIPTOR_MAX bytes (its annotations cut to fit,
 * whole entries in key order), so a page of REFERRERS_PAGE descriptors is at most ~1.8 MB of
 * JSON whatever was pushed. Entries written before descriptors were capped may hold theirs in
 * the body: a page reads at most LEGACY_READS_PER_PAGE of those (capped the same way) and ends
 * early past that.
 */
import type { Env } from '../env'
import type { Descriptor } from '../manifests/handler'
import { parseBoundedJson } from '../json'
import type { Digest, Repo } from '../names'
import { digestOfReferrerKey, keys } from './keys'

/**
 * A descriptor's JSON is stored in at most this many bytes: R2 holds 2 KiB of customMetadata
 * per object (keys and values together).
 */
export const DESCRIPTOR_MAX = 1800

/** Descriptors per page of the referrers API (R2's largest list page). */
export const REFERRERS_PAGE = 1000

/** Bodies of old, uncapped entries read per page at most (1 R2 get each, one at a time). */
export const LEGACY_READS_PER_PAGE = 8

/** A referrer's descriptor as stored: ASCII JSON of at most DESCRIPTOR_MAX bytes. */
export interface ReferrerEntry {
  digest: Digest
  json: string
  /** Annotations left out to fit (their keys' count). */
  cut: number
}

/**
 * The stored form of a referrer's descriptor (CPU only; built before any write): mediaType,
 * digest, size, artifactType, then as many annotations as fit in DESCRIPTOR_MAX bytes, whole
 * entries in key order. The spec asks for the manifest's annotations; the manifest itself keeps
 * them all, the listing only what fits (docs/api-notes.md). Non-ASCII characters are escaped
 * (`\uXXXX`), so the bytes counted are the bytes stored and any metadata transport takes them.
 */
export function referrerEntry(d: Descriptor): ReferrerEntry {
  const base: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size }
  if (d.artifactType) base.artifactType = d.artifactType
  let json = asciiJson(base)
  if (json.length > DESCRIPTOR_MAX) throw new Error('a referrer descriptor without annotations exceeds DESCRIPTOR_MAX')
  const entries = Object.entries(d.annotations ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const kept: Record<string, string> = {}
  let cut = 0
  // `{…,"annotations":{` + entries joined by "," + `}}`
  let size = json.length + '"annotations":{},'.length
  let first = true
  for (const [k, v] of entries) {
    const piece = asciiJson(k).length + 1 + asciiJson(v).length + (first ? 0 : 1)
    if (size + piece > DESCRIPTOR_MAX) {
      cut++
      continue
    }
    kept[k] = v
    size += piece
    first = false
  }
  if (!first) json = asciiJson({ ...base, annotations: kept })
  if (json.length > DESCRIPTOR_MAX) return { digest: d.digest, json: asciiJson(base), cut: entries.length }
  return { digest: d.digest, json, cut }
}

/** JSON with every character outside printable ASCII escaped (lone surrogates included). */
function asciiJson(v: unknown): string {
  return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** 1 R2 put (an empty object, the descriptor in its metadata). */
export async function putReferrer(env: Env, repo: Repo, subject: Digest, entry: ReferrerEntry): Promise<void> {
  await env.BLOBS.put(keys.referrer(repo, subject, entry.digest), null, { customMetadata: { descriptor: entry.json } })
}

/** Free (R2 delete). */
export async function deleteReferrer(env: Env, repo: Repo, subject: Digest, digest: Digest): Promise<void> {
  await env.BLOBS.delete(keys.referrer(repo, subject, digest))
}

/**
 * One page of referrers after the one with digest `after` (in digest order), at most `limit`:
 * 1 R2 list, +1 R2 get per old entry that kept its descriptor in the body (at most
 * LEGACY_READS_PER_PAGE; the page ends before the next one). `next`: where the following page
 * starts after, null on the last page.
 */
export async function listReferrers(
  env: Env,
  repo: Repo,
  subject: Digest,
  after: Digest | null,
  limit = REFERRERS_PAGE,
): Promise<{ descriptors: Descriptor[]; next: Digest | null }> {
  const prefix = keys.referrers(repo, subject)
  // `include` is honoured by the runtime but missing from workers-types' R2ListOptions.
  const options = { prefix, limit, include: ['customMetadata'], ...(after ? { startAfter: keys.referrer(repo, subject, after) } : {}) }
  const page = await env.BLOBS.list(options as R2ListOptions)
  const descriptors: Descriptor[] = []
  let legacyReads = 0
  let last: Digest | null = null
  for (const o of page.objects) {
    const inline = o.customMetadata?.descriptor
    if (inline) descriptors.push(JSON.parse(inline) as Descriptor)
    else {
      if (legacyReads === LEGACY_READS_PER_PAGE) return { descriptors, next: last }
      legacyReads++
      const d = await readLegacy(env, o.key)                                          // R2 get
      if (d) descriptors.push(d)
    }
    last = digestOfReferrerKey(o.key, prefix)
  }
  return { descriptors, next: page.truncated ? last : null }
}

/** An entry written before descriptors were capped: its body, capped as new ones are. 1 R2 get. */
async function readLegacy(env: Env, key: string): Promise<Descriptor | null> {
  const body = await env.BLOBS.get(key)
  if (!body) return null
  const parsed = parseBoundedJson(new Uint8Array(await body.arrayBuffer()))
  if (!('value' in parsed)) return null
  const d = parsed.value as Descriptor
  if (typeof d?.digest !== 'string' || typeof d.mediaType !== 'string') return null
  const annotations = Object.fromEntries(Object.entries(d.annotations ?? {}).filter(([, v]) => typeof v === 'string'))
  return JSON.parse(referrerEntry({ ...d, annotations }).json) as Descriptor
}
