/**
 * UPSTREAMS and the secret UPSTREAM_CREDENTIALS: which registries are mirrored, and where
 * (docs/pull-through-cache.md; src/proxy/config.ts routes requests by them).
 *
 *   UPSTREAMS = [
 *     {"prefix": "hub", "url": "https://registry-1.docker.io", "dockerHubLibrary": true, "ns": ["docker.io"]},
 *     {"prefix": "ghcr", "url": "https://ghcr.io", "repositories": ["my-org/*"], "cacheDays": 30},
 *     {"host": "mirror.example.com", "url": "https://registry-1.docker.io", "dockerHubLibrary": true}
 *   ]
 *   UPSTREAM_CREDENTIALS (secret) = {"hub": "user:access-token", "ghcr": "ghp_…"}
 *
 * Each upstream owns one namespace of local repositories: its `prefix`, else its `host`, else
 * its first `ns`.
 */
import * as v from 'valibot'
import { credentialsByUpstream } from './upstream-credentials'
import { count, type CrossCheck, eachEntry, fields, jsonSetting, matching, oneOrMore, repoPatterns } from './values'

/** An upstream as UPSTREAMS describes it (src/proxy/config.ts adds its credentials). */
export interface UpstreamSpec {
  /** The local namespace its repositories live under (prefix, else host, else first ns). */
  namespace: string
  host: string | null
  /** Source hosts it answers `?ns=` for. */
  ns: string[]
  /** Origin of the upstream registry, e.g. `https://registry-1.docker.io` (no trailing slash). */
  url: string
  /** A one-component name `nginx` is `library/nginx` upstream (Docker Hub's official images). */
  dockerHubLibrary: boolean
  /** How long a tag is served without asking the upstream again. */
  tagTtlSeconds: number
  /** Repository patterns (upstream names, AUTH_RULES' glob) that may be pulled; null = any. */
  repositories: string[] | null
  /** Cached content not validated for this many days is collected (null: kept). */
  cacheDays: number | null
  /** Seconds to wait for the upstream's answer (headers) before treating it as down. */
  timeoutSeconds: number
}

export const DEFAULT_TAG_TTL_SECONDS = 300
const DEFAULT_TIMEOUT_SECONDS = 20
/** A namespace: one or more repository path components (spec name grammar). */
const NAMESPACE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$/

const URL_MESSAGE = 'must be an absolute http(s) URL without credentials, query or fragment (credentials go in UPSTREAM_CREDENTIALS)'
function upstreamUrl(s: string): boolean {
  try {
    const url = new URL(s)
    return (url.protocol === 'https:' || url.protocol === 'http:') && !url.username && !url.password && !url.search && !url.hash
  } catch {
    return false
  }
}

const NS_MESSAGE = 'must be a source host name or a non-empty list of them (e.g. "docker.io")'

const upstream = v.pipe(
  v.strictObject(
    {
      prefix: v.optional(matching(NAMESPACE, 'must be a repository namespace (a-z 0-9 . _ - /)')),
      host: v.optional(matching(HOSTNAME, 'must be a lowercase host name (optionally :port)')),
      ns: v.optional(oneOrMore(matching(HOSTNAME, 'must be a lowercase host name (e.g. "docker.io")'), NS_MESSAGE)),
      url: v.pipe(v.string(URL_MESSAGE), v.check(upstreamUrl, URL_MESSAGE)),
      dockerHubLibrary: v.optional(v.boolean('must be true or false'), false),
      tagTtlSeconds: v.optional(count(0, 'must be a whole number of seconds ≥ 0'), DEFAULT_TAG_TTL_SECONDS),
      repositories: v.optional(repoPatterns()),
      cacheDays: v.optional(count(1, 'must be a whole number of days ≥ 1')),
      timeoutSeconds: v.optional(count(1, 'must be a whole number of seconds ≥ 1'), DEFAULT_TIMEOUT_SECONDS),
    },
    fields({
      what: 'an object',
      unknown: 'an upstream has prefix, host, ns, url, dockerHubLibrary, tagTtlSeconds, repositories, cacheDays, timeoutSeconds',
      missing: { url: 'is required: the upstream registry, e.g. "https://registry-1.docker.io"' },
    }),
  ),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const e = dataset.value
    const ns = e.ns ?? []
    const namespace = e.prefix ?? e.host ?? ns[0]
    if (!namespace) {
      addIssue({ message: 'needs a "prefix", a "host" or an "ns" to be reached by' })
      return NEVER
    }
    if (!NAMESPACE.test(namespace)) {
      addIssue({ message: `"${namespace}" cannot name a local namespace; give a "prefix"` })
      return NEVER
    }
    const url = new URL(e.url)
    return {
      namespace,
      host: e.host ?? null,
      ns,
      url: url.origin + url.pathname.replace(/\/+$/, ''),
      dockerHubLibrary: e.dockerHubLibrary,
      tagTtlSeconds: e.tagTtlSeconds,
      repositories: e.repositories ?? null,
      cacheDays: e.cacheDays ?? null,
      timeoutSeconds: e.timeoutSeconds,
    } satisfies UpstreamSpec
  }),
)

export const UPSTREAMS = jsonSetting(
  v.pipe(
    v.array(upstream, 'must be a JSON array of upstreams'),
    // One namespace, host or ns per upstream: a request must name exactly one upstream.
    eachEntry<UpstreamSpec>((u, i, list) => {
      const claims = (o: UpstreamSpec) => [`namespace "${o.namespace}"`, ...(o.host ? [`host "${o.host}"`] : []), ...o.ns.map((n) => `ns "${n}"`)]
      const taken = claims(u).flatMap((what) => {
        const other = list.findIndex((o, j) => j < i && claims(o).includes(what))
        return other < 0 ? [] : [`${what} is already used by UPSTREAMS[${other}]`]
      })
      const nested = list.filter((o) => o !== u && o.namespace.startsWith(`${u.namespace}/`))
      return [...taken, ...nested.map((o) => `namespace "${u.namespace}" contains another upstream's namespace "${o.namespace}"`)]
    }),
  ),
  { expect: '[', description: 'Registries mirrored as pull-through caches: url plus a prefix, a host and/or ns' },
)

export const UPSTREAM_CREDENTIALS = jsonSetting(
  v.pipe(
    v.record(
      v.pipe(v.string(), v.check((k) => NAMESPACE.test(k) || HOSTNAME.test(k), "is not an upstream's prefix or host")),
      v.pipe(v.string('must be a non-empty string ("user:password" or a token)'), v.minLength(1, 'must be a non-empty string ("user:password" or a token)')),
      'must be a JSON object of upstream (prefix or host) to "user:password" or a token',
    ),
    v.transform((c) => new Map(Object.entries(c))),
  ),
  { expect: '{', description: 'Secret: {"<prefix or host>": "user:password" | "token"} for the upstreams' },
)

type ProxySettings = { UPSTREAMS: UpstreamSpec[]; UPSTREAM_CREDENTIALS: Map<string, string> }

/**
 * Every key of UPSTREAM_CREDENTIALS names exactly one upstream, and no upstream is named by two
 * keys (upstream-credentials.ts says why).
 */
export const credentialsNameOneUpstream: CrossCheck<ProxySettings> = (s) =>
  credentialsByUpstream(s.UPSTREAMS, s.UPSTREAM_CREDENTIALS).problems
