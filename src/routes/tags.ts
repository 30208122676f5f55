/** GET /v2/<name>/tags/list */
import type { IRequest } from 'itty-router'
import { RegistryError } from '../errors'
import type { Ctx } from '../http/context'
import { nextLink, parsePage } from '../http/pagination'
import { parseRepo } from '../names'
import { proxiedTags } from '../proxy/listings'
import { repoExists } from '../storage/manifests'
import { listTagPage } from '../storage/tags'

/** KV list pages (1,000 tags each) one request reads at most. */
export const TAG_LIST_PAGES = 10

/**
 * At most TAG_LIST_PAGES KV lists (1,000 tags each); an empty answer +1 R2 list. KV lists have
 * no "start after", so the `Link` to the next page carries the KV cursor of the page to resume
 * from (`cursor=`): following it costs 1-2 lists whatever the repository's size. A client's own
 * `last` without one is found by reading from the first tag, at most TAG_LIST_PAGES pages a
 * request: past that the reply has fewer tags (maybe none; the spec lets a registry return
 * fewer than `n`) and a `Link` that resumes where the reading stopped.
 * Proxied: the upstream's list (edge-cached briefly, src/proxy/listings.ts); the cached tags when it fails.
 */
export async function list(req: IRequest, c: Ctx): Promise<Response> {
  const repo = parseRepo(req.params.name)
  const upstream = c.proxy && (await proxiedTags(req, c, c.proxy))         // cache, else 1 upstream GET
  if (upstream) return upstream
  const url = new URL(req.url)
  const { n, last } = parsePage(url)
  const from = cursorParam(url)
  const page = n === 0 ? { entries: [], more: false, resume: null } : await listTagPage(c.env, repo, n, last, from, TAG_LIST_PAGES)  // KV lists
  const names = page.entries.map((e) => e.tag)
  if (names.length === 0 && !last && !from && !page.more && !(await repoExists(c.env, repo))) {           // R2 list
    throw new RegistryError('NAME_UNKNOWN', { name: repo })
  }
  const headers = new Headers({ 'Content-Type': 'application/json' })
  if (page.more) headers.set('Link', nextLink(url.pathname, n, names[names.length - 1] ?? last, page.resume))
  return new Response(JSON.stringify({ name: repo, tags: names }), { headers })
}

/** A KV cursor from a `Link` we sent (opaque, bounded); anything else is ignored. */
function cursorParam(url: URL): string | null {
  const raw = url.searchParams.get('cursor')
  return raw && raw.length <= 2048 && /^[\x21-\x7e]+$/.test(raw) ? raw : null
}
