/**
 * Tags in KV: the only mutable state. A tag's record holds the manifest bytes
 * (value) and its digest and media type (metadata), so a pull by tag is one read.
 * KV is eventually consistent: another location may see an old target for up to
 * about a minute after a tag moves.
 */
import type { Env } from '../env'
import type { Digest, Repo, Tag } from '../names'
import { keys, tagOfKey } from './keys'

export interface TagRecord {
  digest: Digest
  mediaType: string
}

/** 1 KV get. */
export async function readTag(env: Env, repo: Repo, tag: Tag): Promise<(TagRecord & { bytes: ArrayBuffer }) | null> {
  const { value, metadata } = await env.LINKS.getWithMetadata<TagRecord>(keys.tag(repo, tag), 'arrayBuffer')
  if (!value || !metadata) return null
  return { ...metadata, bytes: value }
}

/** 1 KV put. */
export async function writeTag(env: Env, repo: Repo, tag: Tag, record: TagRecord, bytes: Uint8Array): Promise<void> {
  await env.LINKS.put(keys.tag(repo, tag), bytes, { metadata: { digest: record.digest, mediaType: record.mediaType } })
}

/** 1 KV delete. */
export async function deleteTag(env: Env, repo: Repo, tag: Tag): Promise<void> {
  await env.LINKS.delete(keys.tag(repo, tag))
}

/** Every tag with its target, in lexical order. 1 KV list per 1,000 tags. */
export async function* allTags(env: Env, repo: Repo): AsyncGenerator<{ tag: Tag; digest: Digest | null }> {
  let cursor: string | undefined
  do {
    const page = await env.LINKS.list<TagRecord>({ prefix: keys.tags(repo), cursor })
    for (const k of page.keys) yield { tag: tagOfKey(repo, k.name) as Tag, digest: k.metadata?.digest ?? null }
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
