/**
 * The auth layer in front of every /v2/ route when AUTH_MODE is "token".
 *
 * Each request needs a scope, read off the route it matched: `/v2/` none (any valid
 * credentials, or an anonymous token), the catalog `registry:catalog:*`, uploads
 * `pull,push` (cancelling one included: it is the pusher's own session), other
 * GET/HEAD `pull`, DELETE `delete`, other writes `pull,push`.
 * A mount (`POST …/uploads/?mount=&from=<repo>`) also wants `<repo>:pull`, which it does
 * not need: its challenge names both scopes, space-separated in one `scope` (as distribution
 * does; crane, oras, regctl and containerd ask for exactly what the challenge names), and a
 * token without pull on `from` whose holder the rules would give it is challenged again
 * (insufficient_scope). A caller who may not pull `from` passes: the route answers a plain
 * upload session (202), never a link.
 *
 * The caller is who its `Authorization` proves: a Bearer token (its grants only), Basic
 * credentials (the rules for that user, robot or OIDC caller), or nobody (the anonymous rules).
 * - no or invalid credentials, an expired or forged token → 401 with the Bearer challenge
 *   naming the scope to ask for;
 * - anonymous, or a token lacking a scope the rules would give its holder → 401 (the client
 *   fetches a token with that scope and retries);
 * - a signed-in caller the rules do not allow → 403 DENIED; so is an OIDC caller's token lacking
 *   a scope (its claims are not in the token: /token already gave it all they allow); but the
 *   catalog of a signed-in caller without the catalog right lists the repositories it may pull.
 * Answers depend on the rules and credentials only, never on storage, so they cannot tell
 * whether a repository exists.
 *
 * Basic credentials are throttled like every sign-in (throttle.ts): 429 TOOMANYREQUESTS past the limits.
 *
 * Cost: CPU only (a JWT check is one HMAC), except Basic credentials: see credentials.ts.
 */
import type { IRequest } from 'itty-router'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { parseRepo } from '../names'
import { localName } from '../proxy/layer'
import { grantedTo, holds, principalAccess, ruleAccess, tokenAccess, type Access } from './access'
import { authConfig } from './config'
import { basicCredentials, MAX_CREDENTIAL_LENGTH, OIDC_PREFIX, verifyCredentials } from './credentials'
import { grantedActions } from './rules'
import { clientOf } from './throttle'
import { CATALOG_SCOPE, formatScope, repositoryScope, type Scope } from './scopes'
import { verifyAccessToken } from './tokens'

/**
 * Checks a /v2/ request before its route runs: the caller's Access, or throws 401/403. Undefined
 * when auth is off. `scopeName`: a proxied repository's name as a token request to this host
 * names it (src/proxy/config.ts), which the challenge names (the check is on the local name).
 */
export async function authorize(req: IRequest, env: Env, scopeName?: string): Promise<Access | undefined> {
  const config = authConfig(env)
  if (!config) return undefined
  const url = new URL(req.url)
  const service = config.service ?? url.host
  const need = requiredScope(req)
  const wanted = mountSourceScope(req, url, env)
  const asked = need && need.type === 'repository' && scopeName !== undefined ? { ...need, name: scopeName } : need
  const challenge = (error?: string) =>
    new RegistryError('UNAUTHORIZED', null, { 'WWW-Authenticate': bearerChallenge(url, service, [asked, wanted], error) })
  const grants = (sub: string, scope: Scope) => grantedActions(config.rules, sub, scope).length === scope.actions.length
  const allowedBy = (sub: string) => need === null || grants(sub, need)

  const header = req.headers.get('authorization')
  if (header === null) {
    // Anonymous: fine where the rules let anyone pull; /v2/ itself must challenge, or
    // clients never learn where to get a token.
    if (need !== null && allowedBy('')) return ruleAccess(config.rules, '')
    throw challenge()
  }
  if (header.length > MAX_CREDENTIAL_LENGTH) throw challenge()

  if (/^bearer /i.test(header)) {
    const claims = await verifyAccessToken(await config.key, service, header.slice(7).trim())
    if (!claims) throw challenge('invalid_token')
    // An OIDC caller's token holds all its claims allowed of the scopes it asked for (claims
    // are not in the token to re-check, and user rules never apply to it): lacking one, denied.
    const oidc = claims.sub.startsWith(OIDC_PREFIX)
    if (need === null || holds(claims.access, need)) {
      // A token that could hold pull on the mount's source, but does not: ask for it.
      if (wanted && claims.sub !== '' && !oidc && !holds(claims.access, wanted) && grants(claims.sub, wanted)) throw challenge('insufficient_scope')
      return tokenAccess(claims)
    }
    if (claims.sub === '' || (!oidc && allowedBy(claims.sub))) throw challenge('insufficient_scope')
    // A filtered catalog: by the rules for a user or robot, by what the token holds for an OIDC caller.
    if (need === CATALOG_SCOPE) return oidc ? tokenAccess(claims) : ruleAccess(config.rules, claims.sub)
    throw new RegistryError('DENIED')
  }

  const credentials = basicCredentials(header)
  const principal = credentials && (await verifyCredentials(env, config, credentials.user, credentials.password, clientOf(req)))
  if (!principal) throw challenge()
  if (need === null || need === CATALOG_SCOPE || grantedTo(config.rules, principal, need).length === need.actions.length) {
    return principalAccess(config.rules, principal)
  }
  throw new RegistryError('DENIED')
}

/** The scope a request needs, from the route itty-router matched (`req.route`); null: only credentials. */
export function requiredScope(req: IRequest): Scope | null {
  if (req.route === '/v2/_catalog') return CATALOG_SCOPE
  if (req.params?.name === undefined) return null
  // An invalid name can name nothing, so saying so before auth reveals nothing.
  const repo = parseRepo(req.params.name)
  if (req.route.includes('/blobs/uploads')) return repositoryScope(repo, ['pull', 'push'])
  if (req.method === 'GET' || req.method === 'HEAD') return repositoryScope(repo, ['pull'])
  if (req.method === 'DELETE') return repositoryScope(repo, ['delete'])
  return repositoryScope(repo, ['pull', 'push'])
}

/**
 * The scope a mount would also use: pull on `from` (a valid name other than the target's), by
 * its local name (`hub/nginx` is `hub/library/nginx`, as /token grants it: src/proxy/layer.ts);
 * null for any other request. Wanted, not needed: without it the mount becomes an upload.
 */
function mountSourceScope(req: IRequest, url: URL, env: Env): Scope | null {
  if (req.method !== 'POST' || !req.route?.includes('/blobs/uploads') || !url.searchParams.has('mount')) return null
  const from = url.searchParams.get('from')
  if (from === null) return null
  try {
    const source = localName(env, url, parseRepo(from))
    return source === req.params?.name ? null : repositoryScope(source, ['pull'])
  } catch {
    return null   // an invalid `from` mounts nothing: the route falls back to an upload
  }
}

/**
 * `Bearer realm="<scheme>://<host>/token",service="…"[,scope="…"][,error="…"]` (RFC 6750 §3);
 * several scopes go space-separated in the one `scope` parameter (RFC 6749 §3.3).
 */
export function bearerChallenge(url: URL, service: string, scopes: (Scope | null)[], error?: string): string {
  let challenge = `Bearer realm="${url.protocol}//${url.host}/token",service="${service}"`
  const named = scopes.filter((s): s is Scope => s !== null)
  if (named.length) challenge += `,scope="${named.map(formatScope).join(' ')}"`
  if (error) challenge += `,error="${error}"`
  return challenge
}
