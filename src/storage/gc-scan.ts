/**
 * The collector's view of storage, one page per call (each a Workflow step): compact records
 * of what a list returns, so a step's result stays small. Each function makes the calls it says.
 */
import type { Env } from '../env'
import { digestOfBlobKey, keys, REPO_DELIMITER, REPOS_PREFIX, reposAfter, uploadIdOf } from './keys'
import type { LinkMeta } from './links'
import type { TagRecord } from './tags'

export interface TagEntry { repo: string; tag: string; digest: string; pushed?: number }
export interface LinkEntry { repo: string; digest: string; t?: number; size?: number }
export interface ManifestEntry { repo: string; digest: string; key: string; size: number; uploaded: number; subject: string | null }
export interface ReferrerEntry { repo: string; subject: string; digest: string; key: string }
export interface BlobEntry { digest: string; key: string; at: string; size: number; uploaded: number; etag: string; gone: boolean }
export interface UploadObject { key: string; id: string; size: number; uploaded: number; started: number; mp?: string }

export interface Page<T> { items: T; cursor: string | null }

/** Tags and blob links of every repository (KV keys under repos/, metadata included). 1 KV list. */
export async function listKvPage(env: Env, cursor: string | null): Promise<Page<{ tags: TagEntry[]; links: LinkEntry[] }>> {
  const page = await env.LINKS.list<TagRecord | LinkMeta>({ prefix: REPOS_PREFIX, cursor: cursor ?? undefined })
  const tags: TagEntry[] = []
  const links: LinkEntry[] = []
  for (const k of page.keys) {
    const [repo, rest] = splitRepoKey(k.name)
    if (rest.startsWith('tags/')) {
      const meta = k.metadata as TagRecord | undefined
      if (!meta?.digest) continue
      const t: TagEntry = { repo, tag: rest.slice(5), digest: meta.digest }
      if (meta.pushed !== undefined) t.pushed = meta.pushed
      tags.push(t)
    } else if (rest.startsWith('blobs/')) {
      const meta = k.metadata as LinkMeta | undefined
      const l: LinkEntry = { repo, digest: rest.slice(6) }
      if (meta?.t !== undefined) l.t = meta.t
      if (meta?.size !== undefined) l.size = meta.size
      links.push(l)
    }
  }
  return { items: { tags, links }, cursor: page.list_complete ? null : page.cursor }
}

/** Repositories named in (after, last]: null after = from the first, null last = to the end. */
export interface RepoRange { after: string | null; last: string | null }
export const ALL_REPOS: RepoRange = { after: null, last: null }

/** Manifests and referrer entries of the repositories in `range` (R2 objects under repos/). 1 R2 list. */
export async function listRepoObjectsPage(env: Env, cursor: string | null, range: RepoRange = ALL_REPOS): Promise<Page<{ manifests: ManifestEntry[]; referrers: ReferrerEntry[] }>> {
  const start = cursor ? { cursor } : range.after !== null ? { startAfter: reposAfter(range.after) } : {}
  const page = await env.BLOBS.list(withMetadata({ prefix: REPOS_PREFIX, ...start }))
  const manifests: ManifestEntry[] = []
  const referrers: ReferrerEntry[] = []
  for (const o of page.objects) {
    const [repo, rest] = splitRepoKey(o.key)
    // Keys sort by repository name ("+" sorts before every name character): past `last`, done.
    if (range.last !== null && repo > range.last) return { items: { manifests, referrers }, cursor: null }
    if (rest.startsWith('manifests/')) {
      manifests.push({ repo, digest: rest.slice(10), key: o.key, size: o.size, uploaded: o.uploaded.getTime(), subject: o.customMetadata?.subject ?? null })
    } else if (rest.startsWith('referrers/')) {
      const [subject, digest] = rest.slice(10).split('/') as [string, string]
      referrers.push({ repo, subject, digest, key: o.key })
    }
  }
  return { items: { manifests, referrers }, cursor: page.truncated ? page.cursor : null }
}

/** Hex ranges (shards.ts HexRange): [lo, hi), hi null = to the end. */
export interface KeyRange { lo: string; hi: string | null }
const ALL: KeyRange = { lo: '', hi: null }

/** One page of `prefix` + [lo, hi): the objects, and the cursor (null past hi). 1 R2 list. */
async function listRange(env: Env, prefix: string, range: KeyRange, cursor: string | null, meta: boolean): Promise<Page<R2Object[]>> {
  const start = cursor ? { cursor } : range.lo ? { startAfter: prefix + range.lo } : {}
  const options: R2ListOptions = { prefix, ...start }
  const page = await env.BLOBS.list(meta ? withMetadata(options) : options)
  const end = range.hi === null ? -1 : page.objects.findIndex((o) => o.key.slice(prefix.length) >= range.hi!)
  if (end >= 0) return { items: page.objects.slice(0, end), cursor: null }
  return { items: page.objects, cursor: page.truncated ? page.cursor : null }
}

/** The blob index's algorithms (keys.ts: blobs/<alg>/<hex>): a digest range is listed under each. */
export const BLOB_ALGORITHMS = ['sha256', 'sha512'] as const

/** Registry blob index entries (blobs/<alg>/ in `range`). 1 R2 list. */
export async function listBlobIndexPage(env: Env, cursor: string | null, alg: (typeof BLOB_ALGORITHMS)[number] = 'sha256', range: KeyRange = ALL): Promise<Page<BlobEntry[]>> {
  const page = await listRange(env, `${keys.blobs()}${alg}/`, range, cursor, true)
  const items = page.items.map((o): BlobEntry => {
    const meta = o.customMetadata ?? {}
    return {
      digest: digestOfBlobKey(o.key),
      key: o.key,
      at: meta.at ?? o.key,
      size: meta.at ? Number(meta.size) : o.size,
      uploaded: o.uploaded.getTime(),
      etag: o.etag,
      gone: meta.gone !== undefined,
    }
  })
  return { items, cursor: page.cursor }
}

/** Upload objects and cancelled markers (data/<id> with the id in `range`). 1 R2 list. */
export async function listUploadsPage(env: Env, cursor: string | null, range: KeyRange = ALL): Promise<Page<UploadObject[]>> {
  const page = await listRange(env, keys.uploads(), range, cursor, true)
  const items = page.items.map((o): UploadObject => {
    const meta = o.customMetadata ?? {}
    const started = Number(meta.started ?? meta.cancelled ?? o.uploaded.getTime())
    const u: UploadObject = { key: o.key, id: uploadIdOf(o.key), size: o.size, uploaded: o.uploaded.getTime(), started }
    if (meta.mp) u.mp = meta.mp
    return u
  })
  return { items, cursor: page.cursor }
}

/** Marks on links of the repositories in `range`: keys and when placed. 1 R2 list. */
export async function listLinkMarksPage(env: Env, cursor: string | null, range: RepoRange): Promise<Page<{ key: string; uploaded: number }[]>> {
  const prefix = keys.gcLinkMarks()
  const start = cursor ? { cursor } : range.after !== null ? { startAfter: `${prefix}${range.after}${REPO_DELIMITER}~` } : {}
  const page = await env.BLOBS.list({ prefix, ...start })
  const items: { key: string; uploaded: number }[] = []
  for (const o of page.objects) {
    const repo = o.key.slice(prefix.length, o.key.lastIndexOf(REPO_DELIMITER))
    if (range.last !== null && repo > range.last) return { items, cursor: null }
    items.push({ key: o.key, uploaded: o.uploaded.getTime() })
  }
  return { items, cursor: page.truncated ? page.cursor : null }
}

/** Marks on blobs of `alg` in `range`: keys and when placed. 1 R2 list. */
export async function listBlobMarksPage(env: Env, cursor: string | null, alg: (typeof BLOB_ALGORITHMS)[number], range: KeyRange): Promise<Page<{ key: string; uploaded: number }[]>> {
  const page = await listRange(env, `${keys.gcBlobMarks()}${alg}/`, range, cursor, false)
  return { items: page.items.map((o) => ({ key: o.key, uploaded: o.uploaded.getTime() })), cursor: page.cursor }
}

function splitRepoKey(key: string): [string, string] {
  const at = key.indexOf(REPO_DELIMITER)
  return [key.slice(REPOS_PREFIX.length, at), key.slice(at + 1)]
}

// `include` is honoured by the runtime but missing from workers-types' R2ListOptions.
const withMetadata = (o: R2ListOptions): R2ListOptions => ({ ...o, include: ['customMetadata'] }) as R2ListOptions
