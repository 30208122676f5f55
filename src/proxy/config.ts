/**
 * UPSTREAMS and UPSTREAM_CREDENTIALS: which registries are mirrored, and where.
 *
 *   UPSTREAMS = [
 *     {"prefix": "hub", "url": "https://registry-1.docker.io", "dockerHubLibrary": true, "ns": ["docker.io"]},
 *     {"prefix": "ghcr", "url": "https://ghcr.io", "repositories": ["my-org/*"], "cacheDays": 30},
 *     {"host": "mirror.example.com", "url": "https://registry-1.docker.io", "dockerHubLibrary": true}
 *   ]
 *   UPSTREAM_CREDENTIALS (secret) = {"hub": "user:access-token", "ghcr": "ghp_…"}
 *
 * A credentials key names exactly one upstream, by its namespace or its url's host
 * (src/proxy/credentials.ts); what an upstream answers to an entry's credentials is kept under
 * that entry (its namespace) and, where it is cached outside the repository, its credentials too.
 *
 * Each upstream owns one namespace of local repositories: its `prefix`, else its `host`, else
 * its first `ns`. Cached content is stored as ordinary repositories under that namespace
 * (CONTRACTS 4: `hub` + upstream `library/nginx` → local `hub/library/nginx`), reached three ways:
 * - prefix: `/v2/<prefix>/<upstream name>/…` on any host;
 * - host: any `/v2/<upstream name>/…` arriving with that Host header (docker `registry-mirrors`);
 * - ns: any `/v2/<upstream name>/…?ns=<source host>` (distribution-spec "Registry Proxying";
 *   containerd adds it to every mirror request). An `ns` no upstream lists is ignored.
 *
 * Parsed once per isolate (again only when the settings change). A bad setting fails closed:
 * every request answers 500 and the log names the setting, never a credential.
 */
import type { Env } from '../env'
import { globMatch } from '../auth/rules'
import type { Repo } from '../names'
import { credentialsByUpstream } from './credentials'

export interface Upstream {
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
  /** From UPSTREAM_CREDENTIALS: `user:password` (Basic, or for the token flow) or a bare token. */
  credentials: string | null
}

/** Where a proxied request goes: the upstream, its name there, the local repository it is cached in. */
export interface ProxyTarget {
  upstream: Upstream
  /** The repository name at the upstream (`library/nginx`). */
  remote: string
  /** The local repository the content is cached in (`hub/library/nginx`). */
  local: Repo
  /** The `ns` the request was routed by (echoed as OCI-Namespace), if any. */
  ns: string | null
  /**
   * The name a token request to this host asks for it by, which /token maps back to `local`
   * (`localScopes`): as the client named it, except by `ns` (a token request carries no `ns`).
   */
  scopeName: string
  /** Set when what is served is stale (the upstream could not be asked): the reply's Warning. */
  warning?: string
}

export const DEFAULT_TAG_TTL_SECONDS = 300
const DEFAULT_TIMEOUT_SECONDS = 20
const FIELDS = new Set(['prefix', 'host', 'ns', 'url', 'dockerHubLibrary', 'tagTtlSeconds', 'repositories', 'cacheDays', 'timeoutSeconds'])
/** A namespace: one or more repository path components (spec name grammar). */
const NAMESPACE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$/
const PATTERN = /^[a-z0-9._\/*-]{1,255}$/

/** Per isolate, keyed by both settings' raw text: new credentials are new entries (and new `upstreamIdentity`s). */
let memo: { inputs: (string | undefined)[]; upstreams: Upstream[] } | null = null

/** The configured upstreams (empty when UPSTREAMS is unset). CPU only; throws on a bad setting. */
export function upstreams(env: Env): Upstream[] {
  const inputs = [env.UPSTREAMS, env.UPSTREAM_CREDENTIALS]
  if (memo && memo.inputs.every((v, i) => v === inputs[i])) return memo.upstreams
  const parsed = parseUpstreams(env.UPSTREAMS, env.UPSTREAM_CREDENTIALS)
  memo = { inputs, upstreams: parsed }
  return parsed
}

/**
 * For the collector (CONTRACTS 4): per upstream with `cacheDays`, its local repositories and
 * the days after which a tag not validated with the upstream (its `pushed`) is removed, and
 * with it the untagged manifests of those repositories.
 */
export function cacheRetention(env: Env): { repos: string; days: number }[] {
  return upstreams(env).flatMap((u) => (u.cacheDays === null ? [] : [{ repos: `${u.namespace}/*`, days: u.cacheDays }]))
}

/**
 * The proxy target of a request on repository `name` (as the URL says it), or null when it is
 * local content: by `?ns=`, then by Host, then by prefix. CPU only.
 */
export function resolveTarget(env: Env, url: URL, name: string): ProxyTarget | null {
  const all = upstreams(env)
  if (all.length === 0) return null
  const ns = url.searchParams.get('ns')?.toLowerCase() ?? null
  const byNs = ns ? all.find((u) => u.ns.includes(ns)) : undefined
  if (byNs) return target(byNs, name, ns, null)
  const host = requestHost(url)
  const byHost = all.find((u) => u.host === host)
  if (byHost) return target(byHost, name, null, name)
  const byPrefix = all.find((u) => name.startsWith(`${u.namespace}/`))
  if (byPrefix) return target(byPrefix, name.slice(byPrefix.namespace.length + 1), null, name)
  return null
}

/**
 * The request's host[:port] as `host` entries spell it: lowercase, without the trailing dot of a
 * fully qualified name (`mirror.example.com.` is the same host, RFC 1034 3.1). CPU only.
 */
export function requestHost(url: URL): string {
  const name = url.hostname.toLowerCase().replace(/\.$/, '')
  return url.port ? `${name}:${url.port}` : name
}

/** The upstream whose `host` the request arrived on (a mirror host), or null. CPU only. */
export function mirrorHost(env: Env, url: URL): Upstream | null {
  const host = requestHost(url)
  return upstreams(env).find((u) => u.host === host) ?? null
}

function target(u: Upstream, remote: string, ns: string | null, asked: string | null): ProxyTarget {
  const name = u.dockerHubLibrary && !remote.includes('/') ? `library/${remote}` : remote
  const local = `${u.namespace}/${name}` as Repo
  return { upstream: u, remote: name, local, ns, scopeName: asked ?? local }
}

/** The upstream whose namespace holds local repository `repo` (its cache), or null. CPU only. */
export function cachingUpstream(env: Env, repo: string): Upstream | null {
  return upstreams(env).find((u) => repo.startsWith(`${u.namespace}/`)) ?? null
}

/** Whether the upstream's allow-list lets `remote` be pulled. */
export const allowed = (u: Upstream, remote: string): boolean =>
  u.repositories === null || u.repositories.some((p) => globMatch(p, remote))

/** Parses both settings; throws an Error naming the first problem (never a credential). */
export function parseUpstreams(json: string | undefined, credentialsJson: string | undefined): Upstream[] {
  let input: unknown
  try {
    input = JSON.parse(json?.trim() || '[]')
  } catch {
    throw new Error('UPSTREAMS is not valid JSON')
  }
  if (!Array.isArray(input)) throw new Error('UPSTREAMS must be a JSON array of upstreams')
  const credentials = parseCredentials(credentialsJson)
  const out = input.map((entry: unknown, i) => parseOne(entry, `UPSTREAMS[${i}]`))
  const seen = new Map<string, string>()
  const claim = (what: string, where: string) => {
    const other = seen.get(what)
    if (other) throw new Error(`${where}: ${what} is already used by ${other}`)
    seen.set(what, where)
  }
  out.forEach((u, i) => {
    const where = `UPSTREAMS[${i}]`
    claim(`namespace "${u.namespace}"`, where)
    if (u.host) claim(`host "${u.host}"`, where)
    for (const n of u.ns) claim(`ns "${n}"`, where)
    for (const other of out) {
      if (other !== u && other.namespace.startsWith(`${u.namespace}/`)) {
        throw new Error(`${where}: namespace "${u.namespace}" contains another upstream's namespace "${other.namespace}"`)
      }
    }
  })
  credentialsByUpstream(out, credentials).forEach((c, i) => (out[i]!.credentials = c))
  return out
}

function parseCredentials(json: string | undefined): Record<string, string> {
  let input: unknown
  try {
    input = JSON.parse(json?.trim() || '{}')
  } catch {
    throw new Error('UPSTREAM_CREDENTIALS is not valid JSON')
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new Error('UPSTREAM_CREDENTIALS must be a JSON object of upstream (prefix or host) to "user:password" or a token')
  }
  for (const [k, v] of Object.entries(input)) {
    if (typeof v !== 'string' || v === '') throw new Error(`UPSTREAM_CREDENTIALS: the value for "${k.slice(0, 64)}" must be a non-empty string`)
  }
  return input as Record<string, string>
}

/** One entry; its credentials are filled in by `credentialsByUpstream` once every entry is known. */
function parseOne(entry: unknown, where: string): Upstream {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new Error(`${where} must be an object`)
  const e = entry as Record<string, unknown>
  for (const k of Object.keys(e)) if (!FIELDS.has(k)) throw new Error(`${where}: unknown field "${k.slice(0, 64)}"`)
  let url: URL
  try {
    url = new URL(String(e.url))
  } catch {
    throw new Error(`${where}.url must be an absolute http(s) URL`)
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password || url.search || url.hash) {
    throw new Error(`${where}.url must be an http(s) URL without credentials, query or fragment (credentials go in UPSTREAM_CREDENTIALS)`)
  }
  const prefix = optional<string>(e.prefix, (v) => typeof v === 'string' && NAMESPACE.test(v), `${where}.prefix must be a repository namespace (a-z 0-9 . _ - /)`)
  const host = optional<string>(e.host, (v) => typeof v === 'string' && HOSTNAME.test(v), `${where}.host must be a lowercase host name (optionally :port)`)
  const nsRaw = e.ns === undefined ? [] : typeof e.ns === 'string' ? [e.ns] : e.ns
  if (!Array.isArray(nsRaw) || !nsRaw.every((v) => typeof v === 'string' && HOSTNAME.test(v))) {
    throw new Error(`${where}.ns must be a source host name or a list of them (e.g. "docker.io")`)
  }
  const ns = nsRaw as string[]
  const namespace = prefix ?? host ?? ns[0]
  if (!namespace) throw new Error(`${where} needs a "prefix", a "host" or an "ns" to be reached by`)
  if (!NAMESPACE.test(namespace)) throw new Error(`${where}: "${namespace}" cannot name a local namespace; give a "prefix"`)
  const dockerHubLibrary = optional<boolean>(e.dockerHubLibrary, (v) => typeof v === 'boolean', `${where}.dockerHubLibrary must be true or false`) ?? false
  const isCount = (min: number) => (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min
  const tagTtlSeconds = optional<number>(e.tagTtlSeconds, isCount(0), `${where}.tagTtlSeconds must be a whole number of seconds ≥ 0`) ?? DEFAULT_TAG_TTL_SECONDS
  const cacheDays = optional<number>(e.cacheDays, isCount(1), `${where}.cacheDays must be a whole number of days ≥ 1`) ?? null
  const timeoutSeconds = optional<number>(e.timeoutSeconds, isCount(1), `${where}.timeoutSeconds must be a whole number of seconds ≥ 1`) ?? DEFAULT_TIMEOUT_SECONDS
  const patterns = e.repositories === undefined ? null : typeof e.repositories === 'string' ? [e.repositories] : e.repositories
  if (patterns !== null && (!Array.isArray(patterns) || patterns.length === 0 || !patterns.every((p) => typeof p === 'string' && PATTERN.test(p)))) {
    throw new Error(`${where}.repositories must be a pattern or a list of patterns (a-z 0-9 . _ - / *)`)
  }
  const origin = url.origin
  return {
    namespace,
    host: host ?? null,
    ns,
    url: origin + url.pathname.replace(/\/+$/, ''),
    dockerHubLibrary,
    tagTtlSeconds,
    repositories: patterns as string[] | null,
    cacheDays,
    timeoutSeconds,
    credentials: null,
  }
}

function optional<T>(value: unknown, valid: (v: unknown) => boolean, message: string): T | undefined {
  if (value === undefined) return undefined
  if (!valid(value)) throw new Error(message)
  return value as T
}
