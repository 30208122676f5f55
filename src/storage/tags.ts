/**
 * Tags in KV: the only mutable state. A tag's record holds the manifest bytes
 * (value, up to TAG_MANIFEST_MAX) and its digest and media type (metadata), so a pull
 * by tag is one read. KV is eventually consistent: another location may see an old
 * target for up to about a minute after a tag moves.
 */
import type { Env } from '../env'
import type { Digest, Repo, Tag } from '../names'
import { keys, tagOfKey } from './keys'
import { getManifest } from './manifests'

/**
 * A tag record holds its manifest's bytes up to this size (real manifests are a few KiB; an
 * index of hundreds of platforms under 64 KiB). A larger manifest is read from R2 on a pull by
 * tag: `?tag=` twenty times on a 4 MiB manifest writes 20 empty values, not 80 MiB.
 */
export const TAG_MANIFEST_MAX = 64 * 1024

/** KV refuses metadata over 1,024 bytes (as serialised JSON); checked before any write. */
export const KV_METADATA_MAX = 1024

/**
 * What a tag's KV metadata holds (KV metadata is read with the value and listed with the
 * key, so retention and the UI learn a tag's age and size at no extra call).
 */
export interface TagRecord {
  digest: Digest
  mediaType: string
  /** When the tag was last set, ms since epoch (absent on tags written before this field). */
  pushed?: number
  /** Compressed size of what the manifest references directly (config + layers, or the children of an index), plus itself. */
  size?: number
  /** An index's platforms, `os/arch[/variant]` joined by ", " (cut to fit KV's 1 KiB of metadata); for the UI. */
  platforms?: string
  /**
   * A pull-through cache's tag only: the identity (upstream entry and credentials, hashed) it was
   * last confirmed with (src/proxy/upstream.ts upstreamIdentity).
   */
  via?: string
}

/**
 * The tag's target with the manifest's bytes. 1 KV get; +1 R2 get when the manifest is larger
 * than TAG_MANIFEST_MAX (its record holds no bytes); null when either is gone.
 */
export async function readTag(env: Env, repo: Repo, tag: Tag): Promise<(TagRecord & { bytes: ArrayBuffer }) | null> {
  const { value, metadata } = await env.LINKS.getWithMetadata<TagRecord>(keys.tag(repo, tag), 'arrayBuffer')
  if (!value || !metadata) return null
  if (value.byteLength > 0) return { ...metadata, bytes: value }
  // No manifest is empty: an empty value is a record that left its bytes in R2.
  const stored = await getManifest(env, repo, metadata.digest)
  return stored && { ...metadata, bytes: stored.bytes }
}

/** The tag's target only (checks that need no bytes). 1 KV get. */
export async function readTagRecord(env: Env, repo: Repo, tag: Tag): Promise<TagRecord | null> {
  const { value, metadata } = await env.LINKS.getWithMetadata<TagRecord>(keys.tag(repo, tag), 'arrayBuffer')
  return value && metadata ? metadata : null
}

/**
 * The metadata a tag record is written with, checked against KV's limit before anything is
 * written (a push must fail whole, never after its manifest is stored): `platforms` is dropped
 * if the rest would not fit; throws if even that does not (it cannot: the other fields are bounded).
 */
export function tagMetadata(record: TagRecord, now = Date.now()): TagRecord {
  const metadata: TagRecord = { digest: record.digest, mediaType: record.mediaType, pushed: record.pushed ?? now }
  if (record.size !== undefined) metadata.size = record.size
  if (record.platforms) metadata.platforms = record.platforms
  if (record.via) metadata.via = record.via
  if (jsonBytes(metadata) > KV_METADATA_MAX) delete metadata.platforms
  if (jsonBytes(metadata) > KV_METADATA_MAX) throw new Error(`tag metadata over ${KV_METADATA_MAX} bytes`)
  return metadata
}

const jsonBytes = (v: unknown): number => new TextEncoder().encode(JSON.stringify(v)).byteLength

/** 1 KV put: the manifest's bytes when they are at most TAG_MANIFEST_MAX, else none (see readTag). */
export async function writeTag(env: Env, repo: Repo, tag: Tag, record: TagRecord, bytes: Uint8Array): Promise<void> {
  const value = bytes.byteLength <= TAG_MANIFEST_MAX ? bytes : new Uint8Array(0)
  await env.LINKS.put(keys.tag(repo, tag), value, { metadata: tagMetadata(record) })
}

/** 1 KV delete. */
export async function deleteTag(env: Env, repo: Repo, tag: Tag): Promise<void> {
  await env.LINKS.delete(keys.tag(repo, tag))
}

/** Every tag with its target, in lexical order. 1 KV list per 1,000 tags. */
export async function* allTags(
  env: Env,
  repo: Repo,
): AsyncGenerator<{ tag: Tag; digest: Digest | null; record: TagRecord | null }> {
  let cursor: string | undefined
  do {
    const page = await env.LINKS.list<TagRecord>({ prefix: keys.tags(repo), cursor })
    for (const k of page.keys) {
      yield { tag: tagOfKey(repo, k.name) as Tag, digest: k.metadata?.digest ?? null, record: k.metadata ?? null }
    }
    cursor = page.list_complete ? undefined : page.cursor
  } while (cursor)
}

/** One page of a listing: tags in lexical order with their records. */
export interface TagEntry {
  tag: Tag
  record: TagRecord | null
}

/**
 * Up to `n` tags after `last`, reading at most `maxPages` KV list pages of 1,000 (1 KV list
 * each). KV lists have no "start after": a listing resumes from `from`, the KV cursor of the page
 * holding the tag after `last` (what `resume` returned), else from the first tag. `more`: tags
 * may follow; `resume` is where the next page's read starts (null: from the first tag again).
 * A scan that spends its pages before reaching `last` returns no tags, `more` and a `resume`.
 */
export async function listTagPage(
  env: Env, repo: Repo, n: number, last: string | null, from: string | null, maxPages: number,
): Promise<{ entries: TagEntry[]; more: boolean; resume: string | null }> {
  const prefix = keys.tags(repo)
  const entries: TagEntry[] = []
  let cursor = from ?? undefined
  for (let pages = 0; pages < maxPages; pages++) {
    const start = cursor ?? null
    let page: KVNamespaceListResult<TagRecord, string>
    try {
      page = await env.LINKS.list<TagRecord>({ prefix, cursor })                      // KV list
    } catch (err) {
      if (!start || start !== from) throw err
      // A cursor from a client that KV does not take: read from the first tag instead.
      cursor = undefined
      continue
    }
    for (const k of page.keys) {
      if (!k.name.startsWith(prefix)) continue
      const tag = tagOfKey(repo, k.name) as Tag
      if (last !== null && tag <= last) continue
      if (entries.length === n) return { entries, more: true, resume: start }
      entries.push({ tag, record: k.metadata ?? null })
    }
    if (page.list_complete) return { entries, more: false, resume: null }
    cursor = page.cursor
  }
  return { entries, more: true, resume: cursor ?? null }
}

/**
 * The tags naming `digest`, reading at most `maxPages` KV list pages of 1,000 (1 KV list each);
 * `complete` false when there were more pages (the rest unread).
 */
export async function tagsNaming(env: Env, repo: Repo, digest: Digest, maxPages: number): Promise<{ tags: Tag[]; complete: boolean }> {
  const tags: Tag[] = []
  let cursor: string | undefined
  for (let pages = 0; pages < maxPages; pages++) {
    const page = await env.LINKS.list<TagRecord>({ prefix: keys.tags(repo), cursor })  // KV list
    for (const k of page.keys) if (k.metadata?.digest === digest) tags.push(tagOfKey(repo, k.name) as Tag)
    if (page.list_complete) return { tags, complete: true }
    cursor = page.cursor
  }
  return { tags, complete: false }
}

/**
 * One step of removing the tags naming `digest` (src/gc/untag.ts): reads up to `limit` tags from
 * `cursor` (1 KV list) and returns those naming it, and where the next step reads from.
 */
export async function tagsNamingPage(
  env: Env, repo: Repo, digest: Digest, cursor: string | null, limit: number,
): Promise<{ tags: Tag[]; cursor: string | null }> {
  const page = await env.LINKS.list<TagRecord>({ prefix: keys.tags(repo), cursor: cursor ?? undefined, limit })
  const tags = page.keys.filter((k) => k.metadata?.digest === digest).map((k) => tagOfKey(repo, k.name) as Tag)
  return { tags, cursor: page.list_complete ? null : page.cursor }
}
