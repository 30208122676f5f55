/** GET /v2/<name>/referrers/<digest> (spec "Listing Referrers"). */
import type { IRequest } from 'itty-router'
import type { Ctx } from '../http/context'
import { parseDigest, parseRepo } from '../names'
import { proxiedReferrers } from '../proxy/listings'
import { listReferrers } from '../storage/referrers'

/** Exactly this, no parameters: referrers-aware clients compare the header as a string. */
const INDEX = 'application/vnd.oci.image.index.v1+json'

/**
 * 1 R2 list per page of up to 1,000 referrers (REFERRERS_PAGE; each descriptor at most 1,800
 * bytes, so a page is at most ~1.8 MB), +1 R2 get per old uncapped entry (at most 8 a page).
 * More pages: `Link: <…?last=<digest>>; rel="next"` (spec: "the Link header MUST be set" when
 * the list does not fit one reply). An unknown subject is an empty index.
 * Proxied: the upstream's referrers (edge-cached briefly, src/proxy/listings.ts).
 */
export async function list(req: IRequest, c: Ctx): Promise<Response> {
  const repo = parseRepo(req.params.name)
  const subject = parseDigest(req.params.digest)
  const upstream = c.proxy && (await proxiedReferrers(req, c, c.proxy, subject))  // cache, else 1 upstream GET
  if (upstream) return upstream
  const url = new URL(req.url)
  const artifactType = url.searchParams.get('artifactType')
  const last = url.searchParams.get('last')
  const page = await listReferrers(c.env, repo, subject, last ? parseDigest(last) : null)  // R2 list
  const manifests = artifactType ? page.descriptors.filter((d) => d.artifactType === artifactType) : page.descriptors
  const headers = new Headers({ 'Content-Type': INDEX })
  if (artifactType) headers.set('OCI-Filters-Applied', 'artifactType')
  if (page.next) {
    const next = new URLSearchParams({ ...(artifactType ? { artifactType } : {}), last: page.next })
    headers.set('Link', `<${url.pathname}?${next}>; rel="next"`)
  }
  return new Response(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests }), { headers })
}
