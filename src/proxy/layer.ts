/**
 * The proxy layer in front of every /v2/<name>/ route: decides whether a request is for
 * local content or for a proxied repository (src/proxy/config.ts `resolveTarget`), and for a
 * proxied one rewrites the route's name to the local repository the content is cached in,
 * so auth (AUTH_RULES on that name) and the routes see an ordinary repository. CPU only.
 *
 * Only reads are proxied: a push, delete or mount into a proxied namespace is 405 UNSUPPORTED,
 * once the auth layer has let the request through (`refuseWrite`): an anonymous write is
 * challenged like any other, and the refusal names the namespace, never the upstream's URL.
 */
import type { IRequest } from 'itty-router'
import type { Scope } from '../auth/scopes'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { allowed, cachingUpstream, resolveTarget, upstreams, type ProxyTarget, type Upstream } from './config'

/**
 * The request's proxy target (its name rewritten to the local repository, which the auth layer
 * then checks), or null for local content. A write gets its target too: `refuseWrite` refuses it
 * after the auth layer.
 */
export function proxyTarget(req: IRequest, env: Env): ProxyTarget | null {
  if (upstreams(env).length === 0) return null // CPU only: the settings are parsed once per env
  const name = req.params?.name
  if (name === undefined) return null
  const target = resolveTarget(env, new URL(req.url), name)
  if (!target) return null
  if (isWrite(req)) {
    req.params.name = target.local
    return target
  }
  if (!allowed(target.upstream, target.remote)) {
    throw new RegistryError('NAME_UNKNOWN', { name, reason: `not mirrored: outside the "repositories" of ${target.upstream.namespace}` })
  }
  req.params.name = target.local
  return target
}

const isWrite = (req: IRequest): boolean => req.method !== 'GET' && req.method !== 'HEAD'

/** After the auth layer: a write into a proxied repository is 405 UNSUPPORTED. CPU only. */
export function refuseWrite(req: IRequest, t: ProxyTarget): void {
  if (isWrite(req)) throw readOnly(t)
}

/**
 * A delete that does not come through /v2/ (the web UI's) on local repository `repo`: refused
 * like the API's when `repo` is a pull-through cache's. CPU only.
 */
export function assertNotCached(env: Env, repo: string): void {
  const upstream = cachingUpstream(env, repo)
  if (upstream) throw readOnly({ upstream })
}

/**
 * A proxied repository's writes are refused, with why (in the message too: docker and the web UI
 * show it). The namespace, not the upstream's URL: that may be an internal address.
 */
function readOnly(t: { upstream: Upstream }): RegistryError {
  const why = `${t.upstream.namespace}/ is a read-only cache of an upstream registry: push to the upstream instead`
  return new RegistryError('UNSUPPORTED', why, {}, { message: why })
}

/** A proxied reply: OCI-Namespace when routed by `ns` (distribution-spec "Registry Proxying"), Warning when stale. */
export function proxiedReply(res: Response, t: ProxyTarget): Response {
  if (!t.ns && !t.warning) return res
  const out = new Response(res.body, res)
  if (t.ns) out.headers.set('OCI-Namespace', t.ns)
  if (t.warning) out.headers.set('Warning', t.warning)
  return out
}

/**
 * Token requests (/token) name repositories as the client sees them (`library/nginx` on a host
 * mirror, `hub/nginx` by prefix); a proxied one is granted under its local name, the one the
 * auth layer checks. docker asks for the scope of its own name, whatever the challenge said. CPU only.
 */
export function localScopes(env: Env, url: URL, scopes: Scope[]): Scope[] {
  if (upstreams(env).length === 0) return scopes
  return scopes.map((s) => (s.type === 'repository' ? { ...s, name: localName(env, url, s.name) } : s))
}

/**
 * The local repository a name the client uses on this host stands for (`hub/nginx` →
 * `hub/library/nginx`); the name itself when it is local content. A mount's `from` is read
 * through it, so it names what /token granted. CPU only.
 */
export function localName(env: Env, url: URL, name: string): string {
  if (upstreams(env).length === 0) return name
  return resolveTarget(env, url, name)?.local ?? name
}
