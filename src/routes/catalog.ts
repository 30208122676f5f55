/**
 * GET /v2/_catalog: repositories holding manifests, in key order (name + "/"), paginated like tags.
 * A signed-in caller without the catalog right sees the repositories it may pull (auth/access.ts).
 */
import type { IRequest } from 'itty-router'
import { catalogFilter } from '../auth/access'
import type { Ctx } from '../http/context'
import { nextLink, parsePage } from '../http/pagination'
import { listRepositories } from '../storage/manifests'

/** 1 R2 list per 1,000 repositories (scanned, when filtered). */
export async function list(req: IRequest, c: Ctx): Promise<Response> {
  const url = new URL(req.url)
  const { n, last } = parsePage(url)
  const { names, more } = n === 0 ? { names: [], more: false } : await listRepositories(c.env, n, last, catalogFilter(c.auth))  // R2 list
  const headers = new Headers({ 'Content-Type': 'application/json' })
  if (more) headers.set('Link', nextLink(url.pathname, n, names[names.length - 1]!))
  return new Response(JSON.stringify({ repositories: names }), { headers })
}
