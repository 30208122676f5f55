/**
 * Tag lists and referrers of a proxied repository: the upstream's answer (it knows tags and
 * referrers the cache never saw), kept at the edge location for a short while. The upstream
 * failing: null, with the target's Warning set, and the route answers from what is cached.
 *
 * The edge cache is keyed by the upstream entry and its credentials (`upstreamIdentity`: what
 * the answer was obtained with) and by the request's own spelling (host, path, `ns`): the reply
 * names the repository and its next page as the client asked, so a prefix, a short name and an
 * `ns` request of one repository never get each other's `name` or `Link`.
 */
import type { IRequest } from 'itty-router'
import type { Ctx } from '../http/context'
import { MAX_JSON_DEPTH, parseBoundedJson, type JsonLimits } from '../json'
import type { Digest } from '../names'
import { keys } from '../storage/keys'
import type { ProxyTarget } from './config'
import { bodyAtMost, failureOf, staleWarning, upstreamFetch, UpstreamFailure, upstreamIdentity } from './upstream'

/** Upstream listings are reused for at most this long (and never longer than the tag TTL). */
const LISTING_SECONDS = 60
const MAX_LISTING_BYTES = 4 * 1024 * 1024
/**
 * A listing is read no further than MAX_LISTING_BYTES and its nesting checked before it is parsed
 * (src/json.ts: 4 MiB of nested arrays cost JSON.parse over half a second and ~100 MB). Its
 * values are not counted: a long flat tag list is cheap to parse, and the bytes bound it.
 */
const LISTING_JSON: JsonLimits = { depth: MAX_JSON_DEPTH, values: MAX_LISTING_BYTES }
const INDEX = 'application/vnd.oci.image.index.v1+json'

/** GET tags/list: the upstream's list, `name` and `Link` made ours. Cache hit free; miss 1 upstream GET. */
export async function proxiedTags(req: IRequest, c: Ctx, t: ProxyTarget): Promise<Response | null> {
  const url = new URL(req.url)
  const query = passed(url, ['n', 'last'])
  const key = keys.cachedUpstreamListing(url.origin, await upstreamIdentity(t.upstream), url.pathname, spelled(t, query))
  return listing(c, t, key, `tags/list${query && `?${query}`}`, url.pathname, async (parsed) => {
    const doc = parsed as { tags?: unknown }
    const tags = Array.isArray(doc.tags) ? doc.tags.filter((x) => typeof x === 'string') : []
    return { body: JSON.stringify({ name: nameAsAsked(url), tags }), type: 'application/json' }
  })
}

/** GET referrers/<digest>: the upstream's index; an upstream without the API: null (the local, empty, index). */
export async function proxiedReferrers(req: IRequest, c: Ctx, t: ProxyTarget, subject: Digest): Promise<Response | null> {
  const url = new URL(req.url)
  const query = passed(url, ['artifactType'])
  const key = keys.cachedUpstreamListing(url.origin, await upstreamIdentity(t.upstream), url.pathname, spelled(t, query))
  return listing(c, t, key, `referrers/${subject}${query && `?${query}`}`, url.pathname, async (parsed, res) => {
    const doc = parsed as { manifests?: unknown }
    const manifests = Array.isArray(doc.manifests) ? doc.manifests : []
    const filtered = res.headers.get('oci-filters-applied')
    return { body: JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests }), type: INDEX, ...(filtered ? { filtered } : {}) }
  })
}

/** The reply made of the upstream's parsed answer; it may throw (not the shape it should be): 502. */
type Rewrite = (doc: unknown, res: Response) => Promise<{ body: string; type: string; filtered?: string }>

async function listing(c: Ctx, t: ProxyTarget, cacheKey: string, path: string, ourPath: string, rewrite: Rewrite): Promise<Response | null> {
  const cached = await caches.default.match(cacheKey)
  if (cached) return new Response(cached.body, cached)
  let res: Response
  try {
    res = await upstreamFetch(t.upstream, 'GET', t.remote, path, { Accept: 'application/json' })
    if (res.status === 404) {
      await res.body?.cancel()
      return null
    }
    if (!res.ok) throw await failureOf(res)
    const bytes = await bodyAtMost(res, MAX_LISTING_BYTES).catch(() => {
      throw new UpstreamFailure(502, 'the upstream\'s listing was cut off')
    })
    if (!bytes) throw new UpstreamFailure(502, `the upstream's listing is larger than ${MAX_LISTING_BYTES} bytes`)
    const parsed = parseBoundedJson(bytes, LISTING_JSON)
    if ('refused' in parsed) throw new UpstreamFailure(502, `the upstream's listing is refused: ${parsed.refused}`)
    const out = await rewrite(parsed.value, res).catch(() => {
      throw new UpstreamFailure(502, 'the upstream\'s listing is not what it should be')
    })
    const headers = new Headers({ 'Content-Type': out.type })
    if (out.filtered) headers.set('OCI-Filters-Applied', out.filtered)
    const next = nextLink(res.headers.get('link'), ourPath, t.ns)
    if (next) headers.set('Link', next)
    const seconds = Math.min(LISTING_SECONDS, t.upstream.tagTtlSeconds)
    if (seconds > 0) {
      headers.set('Cache-Control', `max-age=${seconds}`)
      c.waitUntil(caches.default.put(cacheKey, new Response(out.body, { headers })))
    }
    return new Response(out.body, { headers })
  } catch (err) {
    if (!(err instanceof UpstreamFailure)) throw err
    t.warning = staleWarning(err)
    return null
  }
}

/**
 * The upstream's `Link: </v2/<remote>/tags/list?…>; rel="next"`, pointed at our path with its
 * query, and the request's `ns`: without it the next page would name a local repository.
 */
function nextLink(link: string | null, ourPath: string, ns: string | null): string | null {
  const m = link && /<([^>]*)>\s*;\s*rel="?next"?/i.exec(link)
  if (!m) return null
  const query = new URL(m[1]!, 'http://upstream.invalid').searchParams
  if (ns) query.set('ns', ns)
  const q = query.toString()
  return `<${ourPath}${q && `?${q}`}>; rel="next"`
}

/** The cache key's query: the request's `ns` (it changes the reply's Link) and the passed parameters. */
const spelled = (t: ProxyTarget, query: string): string => (t.ns ? `ns=${encodeURIComponent(t.ns)}${query && `&${query}`}` : query)

/** The listed parameters of the request, in a fixed order (the cache key and the upstream query). */
function passed(url: URL, names: string[]): string {
  const out = new URLSearchParams()
  for (const n of names) {
    const v = url.searchParams.get(n)
    if (v !== null) out.set(n, v)
  }
  return out.toString()
}

/** The repository name as the client's URL has it (`/v2/<name>/tags/list`). */
const nameAsAsked = (url: URL): string => url.pathname.slice('/v2/'.length, -'/tags/list'.length)
