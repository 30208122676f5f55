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
 * (src/settings/upstream-credentials.ts); what an upstream answers to an entry's credentials is kept under
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
 * What a valid value is: src/settings/proxy.ts. A bad setting fails closed: every request
 * answers 500 and the log names the setting, never a credential.
 */
import type { Env } from '../env'
import { globMatch } from '../glob'
import type { Repo } from '../names'
import { parseSettings, settings, SettingsError, type Settings } from '../settings'
import type { UpstreamSpec } from '../settings/proxy'
import { credentialsByUpstream } from '../settings/upstream-credentials'

export { DEFAULT_TAG_TTL_SECONDS } from '../settings/proxy'

export interface Upstream extends UpstreamSpec {
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

const joined = new WeakMap<Settings, Upstream[]>()

/** The configured upstreams (empty when UPSTREAMS is unset), with their credentials. CPU only; throws on a bad setting. */
export function upstreams(env: Env): Upstream[] {
  const s = settings(env)
  let list = joined.get(s)
  if (!list) {
    list = withCredentials(s.UPSTREAMS, s.UPSTREAM_CREDENTIALS)
    joined.set(s, list)
  }
  return list
}

/**
 * Each upstream's credentials: the one key naming it (src/settings/upstream-credentials.ts; the
 * settings' cross-check has already refused a key naming two entries, or two keys one entry).
 * Per parse of the settings: new credentials are new entries (and new `upstreamIdentity`s).
 */
const withCredentials = (list: UpstreamSpec[], credentials: Map<string, string>): Upstream[] => {
  const found = credentialsByUpstream(list, credentials)
  return list.map((u, i) => ({ ...u, credentials: found.credentials[i] ?? null }))
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

/** Parses both settings alone (src/settings/proxy.ts); throws a SettingsError naming each problem (never a credential). */
export function parseUpstreams(json: string | undefined, credentialsJson: string | undefined): Upstream[] {
  const parsed = parseSettings({ UPSTREAMS: json, UPSTREAM_CREDENTIALS: credentialsJson })
  if (!parsed.ok) throw new SettingsError(parsed.problems)
  return withCredentials(parsed.settings.UPSTREAMS, parsed.settings.UPSTREAM_CREDENTIALS)
}
