/**
 * Tags in KV: the only mutable state. A tag's record holds the manifest bytes
 * (value) and its digest and media type (metadata), so a pull by tag is one read.
 * KV is eventually consistent: another location may see an old target for up to
 * about a minute after a tag moves.
 */
import type { Env } from '../env'
import type { Digest, Repo, Tag } from '../names'
import { keys, tagOfKey } from './keys'

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

/** 1 KV get. */
export async function readTag(env: Env, repo: Repo, tag: Tag): Promise<(TagRecord & { bytes: ArrayBuffer }) | null> {
  const { value, metadata } = await env.LINKS.getWithMetadata<TagRecord>(keys.tag(repo, tag), 'arrayBuffer')
  if (!value || !metadata) return null
  return { ...metadata, bytes: value }
}

/** 1 KV put. */
export async function writeTag(env: Env, repo: Repo, tag: Tag, record: TagRecord, bytes: Uint8Array): Promise<void> {
  const metadata: TagRecord = { digest: record.digest, mediaType: record.mediaType, pushed: record.pushed ?? Date.now() }
  if (record.size !== undefined) metadata.size = record.size
  if (record.platforms) metadata.platforms = record.platforms
  if (record.via) metadata.via = record.via
  await env.LINKS.put(keys.tag(repo, tag), bytes, { metadata })
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

/**
 * Up to `n` tag names after `last`. KV lists have no "start after", so pages
 * are read from the first tag: 1 KV list per 1,000 tags up to `last` + n.
 */
export async function listTags(env: Env, repo: Repo, n: number, last: string | null): Promise<{ names: string[]; more: boolean }> {
  const names: string[] = []
  for await (const { tag } of allTags(env, repo)) {
    if (last !== null && tag <= last) continue
    if (names.length === n) return { names, more: true }
    names.push(tag)
  }
  return { names, more: false }
}
