/**
 * The collector's view of storage, one page per call (each a Workflow step): compact records
 * of what a list returns, so a step's result stays small. Each function makes the calls it says.
 */
import type { Env } from '../env'
import { digestOfBlobKey, keys, REPO_DELIMITER, REPOS_PREFIX, uploadIdOf } from './keys'
import type { LinkMeta } from './links'
import type { TagRecord } from './tags'

export interface TagEntry { repo: string; tag: string; digest: string; pushed?: number }
export interface LinkEntry { repo: string; digest: string; t?: number }
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
      links.push(l)
    }
  }
  return { items: { tags, links }, cursor: page.list_complete ? null : page.cursor }
}

/** Manifests and referrer entries of every repository (R2 objects under repos/). 1 R2 list. */
export async function listRepoObjectsPage(env: Env, cursor: string | null): Promise<Page<{ manifests: ManifestEntry[]; referrers: ReferrerEntry[] }>> {
  const page = await env.BLOBS.list(withMetadata({ prefix: REPOS_PREFIX, cursor: cursor ?? undefined }))
  const manifests: ManifestEntry[] = []
  const referrers: ReferrerEntry[] = []
  for (const o of page.objects) {
    const [repo, rest] = splitRepoKey(o.key)
    if (rest.startsWith('manifests/')) {
      manifests.push({ repo, digest: rest.slice(10), key: o.key, size: o.size, uploaded: o.uploaded.getTime(), subject: o.customMetadata?.subject ?? null })
    } else if (rest.startsWith('referrers/')) {
      const [subject, digest] = rest.slice(10).split('/') as [string, string]
      referrers.push({ repo, subject, digest, key: o.key })
    }
  }
  return { items: { manifests, referrers }, cursor: page.truncated ? page.cursor : null }
}

/** Registry blob index entries (blobs/). 1 R2 list. */
export async function listBlobIndexPage(env: Env, cursor: string | null): Promise<Page<BlobEntry[]>> {
  const page = await env.BLOBS.list(withMetadata({ prefix: keys.blobs(), cursor: cursor ?? undefined }))
  const items = page.objects.map((o): BlobEntry => {
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
  return { items, cursor: page.truncated ? page.cursor : null }
}

/** Upload objects and cancelled markers (data/). 1 R2 list. */
export async function listUploadsPage(env: Env, cursor: string | null): Promise<Page<UploadObject[]>> {
  const page = await env.BLOBS.list(withMetadata({ prefix: keys.uploads(), cursor: cursor ?? undefined }))
  const items = page.objects.map((o): UploadObject => {
    const meta = o.customMetadata ?? {}
    const started = Number(meta.started ?? meta.cancelled ?? o.uploaded.getTime())
    const u: UploadObject = { key: o.key, id: uploadIdOf(o.key), size: o.size, uploaded: o.uploaded.getTime(), started }
    if (meta.mp) u.mp = meta.mp
    return u
  })
  return { items, cursor: page.truncated ? page.cursor : null }
}

/** Marks of earlier runs (to clean up): keys and when placed. 1 R2 list. */
export async function listMarksPage(env: Env, cursor: string | null): Promise<Page<{ key: string; uploaded: number }[]>> {
  const page = await env.BLOBS.list({ prefix: keys.gcMarks(), cursor: cursor ?? undefined })
  return { items: page.objects.map((o) => ({ key: o.key, uploaded: o.uploaded.getTime() })), cursor: page.truncated ? page.cursor : null }
}

function splitRepoKey(key: string): [string, string] {
  const at = key.indexOf(REPO_DELIMITER)
  return [key.slice(REPOS_PREFIX.length, at), key.slice(at + 1)]
}

// `include` is honoured by the runtime but missing from workers-types' R2ListOptions.
const withMetadata = (o: R2ListOptions): R2ListOptions => ({ ...o, include: ['customMetadata'] }) as R2ListOptions
