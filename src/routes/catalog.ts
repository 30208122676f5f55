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
import { openResume, sealResume } from '../http/resume'
import { listRepositories } from '../storage/manifests'

/** R2 list pages (1,000 names each) a filtered catalog reads at most per request. */
export const CATALOG_SCAN_PAGES = 10

/**
 * 1 R2 list per 1,000 repositories; filtered, at most CATALOG_SCAN_PAGES: past that the page
 * has fewer names (maybe none; the spec lets a registry return fewer than `n`) and a `Link`
 * that resumes where the reading stopped (`resume=`, sealed: it may name a repository the
 * caller may not see).
 */
export async function list(req: IRequest, c: Ctx): Promise<Response> {
  const url = new URL(req.url)
  const { n, last } = parsePage(url)
  const mirror = mirrorHost(c.env, url)
  const under = mirror ? `${mirror.namespace}/` : ''
  const filter = catalogFilter(c.auth)
  const from = filter ? await openResume(c.env, c.settings.UPLOAD_SECRET, url.searchParams.get('resume')) : null
  const listed = n === 0
    ? { names: [], more: false, scanned: null }
    : await listRepositories(c.env, n, from ?? (last === null ? null : under + last), {
      keep: filter?.keep, prefixes: within(under, filter?.prefixes ?? null), maxPages: CATALOG_SCAN_PAGES,
    })                                                                                                        // R2 list(s)
  const page = { ...listed, names: listed.names.map((name) => name.slice(under.length)) }
  const headers = new Headers({ 'Content-Type': 'application/json' })
  if (page.more) {
    const lastName = page.names[page.names.length - 1] ?? last
    const link = nextLink(url.pathname, n, lastName)
    headers.set('Link', page.scanned === null ? link : link.replace('>;', `&resume=${await sealResume(c.env, c.settings.UPLOAD_SECRET, page.scanned)}>;`))
  }
  return new Response(JSON.stringify({ repositories: page.names }), { headers })
}

/**
 * Where to list: under a mirror's namespace (`under`), and under the prefixes a caller may pull
 * (null: anywhere), both: a prefix outside the namespace holds nothing the mirror lists.
 */
function within(under: string, prefixes: string[] | null): string[] | null {
  if (prefixes === null) return under ? [under] : null
  if (!under) return prefixes
  return prefixes.flatMap((p) => (p.startsWith(under) ? [p] : under.startsWith(p) ? [under] : []))
}
