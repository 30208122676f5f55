/**
 * GET /v2/_catalog: repositories holding manifests, in key order (name + "/"), paginated like tags.
 * A signed-in caller without the catalog right sees the repositories it may pull (auth/access.ts).
 * On a mirror host (an upstream's `host`) the names are the upstream's: it lists that upstream's
 * cached repositories as the mirror names them (`library/nginx`), each pulling exactly what it
 * lists, and never a local repository, whose name there would pull the upstream's image.
 */
import type { IRequest } from 'itty-router'
import { catalogFilter } from '../auth/access'
import type { Ctx } from '../http/context'
import { nextLink, parsePage } from '../http/pagination'
import { mirrorHost } from '../proxy/config'
import { listRepositories } from '../storage/manifests'

/** 1 R2 list per 1,000 repositories (scanned, when filtered). */
export async function list(req: IRequest, c: Ctx): Promise<Response> {
  const url = new URL(req.url)
  const { n, last } = parsePage(url)
  const mirror = mirrorHost(c.env, url)
  const under = mirror ? `${mirror.namespace}/` : ''
  const listed = n === 0
    ? { names: [], more: false }
    : await listRepositories(c.env, n, last === null ? null : under + last, catalogFilter(c.auth), under)  // R2 list
  const names = listed.names.map((name) => name.slice(under.length))
  const more = listed.more
  const headers = new Headers({ 'Content-Type': 'application/json' })
  if (more) headers.set('Link', nextLink(url.pathname, n, names[names.length - 1]!))
  return new Response(JSON.stringify({ repositories: names }), { headers })
}
