/**
 * Manifests in R2, per repository: strongly consistent, so a pull by digest and
 * an index's check of children pushed a moment ago never see a stale miss.
 */
import type { Env } from '../env'
import type { Digest, Repo } from '../names'
import { keys, REPO_DELIMITER, repoOfPrefix, REPOS_PREFIX, reposAfter } from './keys'

export interface StoredManifest {
  mediaType: string
  size: number
  /** Digest of the manifest's `subject`, when it has one (for deletes). */
  subject: Digest | null
  /** When it was last written (ms): every push of it writes it again. */
  uploaded: number
}

/** 1 R2 put. */
export async function putManifest(env: Env, repo: Repo, digest: Digest, bytes: Uint8Array, mediaType: string, subject: Digest | null): Promise<void> {
  await env.BLOBS.put(keys.manifest(repo, digest), bytes, {
    httpMetadata: { contentType: mediaType },
    customMetadata: subject ? { subject } : {},
  })
}

/** 1 R2 get. */
export async function getManifest(env: Env, repo: Repo, digest: Digest): Promise<(StoredManifest & { bytes: ArrayBuffer }) | null> {
  const object = await env.BLOBS.get(keys.manifest(repo, digest))
  if (!object) return null
  return { ...stored(object), bytes: await object.arrayBuffer() }
}

/** 1 R2 head. */
export async function headManifest(env: Env, repo: Repo, digest: Digest): Promise<StoredManifest | null> {
  const object = await env.BLOBS.head(keys.manifest(repo, digest))
  return object ? stored(object) : null
}

/** Free (R2 delete). */
export async function deleteManifest(env: Env, repo: Repo, digest: Digest): Promise<void> {
  await env.BLOBS.delete(keys.manifest(repo, digest))
}

function stored(object: R2Object): StoredManifest {
  return {
    mediaType: object.httpMetadata?.contentType ?? 'application/octet-stream',
    size: object.size,
    subject: (object.customMetadata?.subject as Digest | undefined) ?? null,
    uploaded: object.uploaded.getTime(),
  }
}

/** Every manifest digest of a repository, in key order. 1 R2 list per 1,000 manifests. */
export async function listManifestDigests(env: Env, repo: Repo): Promise<Digest[]> {
  const prefix = keys.manifests(repo)
  const out: Digest[] = []
  let cursor: string | undefined
  do {
    const page = await env.BLOBS.list({ prefix, cursor })
    for (const o of page.objects) out.push(o.key.slice(prefix.length) as Digest)
    cursor = page.truncated ? page.cursor : undefined
  } while (cursor)
  return out
}

/** Whether the repository holds any manifest. 1 R2 list. */
export async function repoExists(env: Env, repo: Repo): Promise<boolean> {
  const list = await env.BLOBS.list({ prefix: `${REPOS_PREFIX}${repo}${REPO_DELIMITER}`, limit: 1 })
  return list.objects.length > 0
}

/**
 * Repository names after `last`, in key order, up to `n`: repositories with manifests or
 * referrers (those `keep` accepts, when given), only under `prefixes` when given (a mirror's
 * namespace, or the literal prefixes of what a caller may pull: at most 1 R2 list per prefix per
 * 1,000 names under it, whatever the registry's size). 1 R2 list per 1,000 names scanned (names
 * `keep` refuses are scanned too), at most `maxPages` in all: past that the page ends short,
 * `more`, and `scanned` is the last name read (where the next page resumes; it may be one `keep`
 * refused).
 */
export async function listRepositories(
  env: Env, n: number, last: string | null,
  o: { keep?: ((name: string) => boolean) | null; prefixes?: string[] | null; maxPages?: number } = {},
): Promise<{ names: string[]; more: boolean; scanned: string | null }> {
  const names: string[] = []
  const maxPages = o.maxPages ?? Infinity
  let scanned: string | null = null
  let pages = 0
  for (const prefix of o.prefixes ? disjoint(o.prefixes) : ['']) {
    // Names under a prefix that sorts before `last` (and does not hold it) all come before it.
    if (last !== null && !last.startsWith(prefix) && last > prefix) continue
    const after = last !== null && last.startsWith(prefix) ? last : null
    let cursor: string | undefined
    for (;;) {
      if (pages === maxPages) return { names, more: true, scanned }
      pages++
      const page = await env.BLOBS.list({
        prefix: `${REPOS_PREFIX}${prefix}`,
        delimiter: REPO_DELIMITER,
        limit: o.keep ? 1000 : Math.min(1000, n + 1),
        ...(cursor ? { cursor } : after !== null ? { startAfter: reposAfter(after) } : {}),
      })
      for (const p of page.delimitedPrefixes) {
        const name = repoOfPrefix(p)
        scanned = name
        if (!o.keep || o.keep(name)) names.push(name)
      }
      if (names.length > n) return { names: names.slice(0, n), more: true, scanned: null }
      if (!page.truncated) break
      cursor = page.cursor
    }
  }
  return { names, more: false, scanned: null }
}

/**
 * Sorted prefixes none of which starts with another: listed one after the other they give
 * names in key order, each once (every name under a prefix sorts before every name under a
 * later one that it does not start).
 */
function disjoint(prefixes: string[]): string[] {
  const out: string[] = []
  for (const p of [...new Set(prefixes)].sort()) if (!out.some((q) => p.startsWith(q))) out.push(p)
  return out
}
