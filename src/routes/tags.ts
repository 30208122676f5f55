/** GET /v2/<name>/tags/list */
import type { IRequest } from 'itty-router'
import { RegistryError } from '../errors'
import type { Ctx } from '../http/context'
import { nextLink, parsePage } from '../http/pagination'
import { parseRepo } from '../names'
import { proxiedTags } from '../proxy/listings'
import { repoExists } from '../storage/manifests'
import { listTags } from '../storage/tags'

/**
 * 1 KV list per 1,000 tags read (KV lists start at the first tag); an empty answer +1 R2 list.
 * Proxied: the upstream's list (edge-cached briefly, src/proxy/listings.ts); the cached tags when it fails.
 */
export async function list(req: IRequest, c: Ctx): Promise<Response> {
  const repo = parseRepo(req.params.name)
  const upstream = c.proxy && (await proxiedTags(req, c, c.proxy))         // cache, else 1 upstream GET
  if (upstream) return upstream
  const url = new URL(req.url)
  const { n, last } = parsePage(url)
  const { names, more } = n === 0 ? { names: [], more: false } : await listTags(c.env, repo, n, last)  // KV list
  if (names.length === 0 && !last && !(await repoExists(c.env, repo))) {                             // R2 list
    throw new RegistryError('NAME_UNKNOWN', { name: repo })
  }
  const headers = new Headers({ 'Content-Type': 'application/json' })
  if (more) headers.set('Link', nextLink(url.pathname, n, names[names.length - 1]!))
  return new Response(JSON.stringify({ name: repo, tags: names }), { headers })
}
