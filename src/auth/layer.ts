/**
 * The auth layer in front of every /v2/ route when AUTH_MODE is "token".
 *
 * Each request needs a scope, read off the route it matched: `/v2/` none (any valid
 * credentials, or an anonymous token), the catalog `registry:catalog:*`, uploads
 * `pull,push` (cancelling one included: it is the pusher's own session), other
 * GET/HEAD `pull`, DELETE `delete`, other writes `pull,push`.
 *
 * The caller is who its `Authorization` proves: a Bearer token (its grants only), Basic
 * credentials (the rules for that user or robot), or nobody (the anonymous rules).
 * - no or invalid credentials, an expired or forged token → 401 with the Bearer challenge
 *   naming the scope to ask for;
 * - anonymous, or a token lacking a scope the rules would give its holder → 401 (the client
 *   fetches a token with that scope and retries);
 * - a signed-in caller the rules do not allow → 403 DENIED; but the catalog of a signed-in
 *   caller without the catalog right lists the repositories the rules let it pull.
 * Answers depend on the rules and credentials only, never on storage, so they cannot tell
 * whether a repository exists.
 *
 * Cost: CPU only (a JWT check is one HMAC), except Basic credentials: see credentials.ts.
 */
import type { IRequest } from 'itty-router'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { parseRepo } from '../names'
import { holds, ruleAccess, tokenAccess, type Access } from './access'
import { authConfig } from './config'
import { basicCredentials, MAX_CREDENTIAL_LENGTH, verifyCredentials } from './credentials'
import { grantedActions } from './rules'
import { CATALOG_SCOPE, formatScope, repositoryScope, type Scope } from './scopes'
import { verifyAccessToken } from './tokens'

/** Checks a /v2/ request before its route runs: the caller's Access, or throws 401/403. Undefined when auth is off. */
export async function authorize(req: IRequest, env: Env): Promise<Access | undefined> {
  const config = authConfig(env)
  if (!config) return undefined
  const url = new URL(req.url)
  const service = config.service ?? url.host
  const need = requiredScope(req)
  const challenge = (error?: string) =>
    new RegistryError('UNAUTHORIZED', null, { 'WWW-Authenticate': bearerChallenge(url, service, need, error) })
  const allowedBy = (sub: string) => need === null || grantedActions(config.rules, sub, need).length === need.actions.length

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
    if (need === null || holds(claims.access, need)) return tokenAccess(claims)
    if (claims.sub === '' || allowedBy(claims.sub)) throw challenge('insufficient_scope')
    if (need === CATALOG_SCOPE) return ruleAccess(config.rules, claims.sub)    // filtered catalog
    throw new RegistryError('DENIED')
  }

  const credentials = basicCredentials(header)
  const principal = credentials && (await verifyCredentials(env, config, credentials.user, credentials.password))
  if (!principal) throw challenge()
  if (allowedBy(principal.sub) || need === CATALOG_SCOPE) return ruleAccess(config.rules, principal.sub)
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

/** `Bearer realm="<scheme>://<host>/token",service="…"[,scope="…"][,error="…"]` (RFC 6750 §3). */
function bearerChallenge(url: URL, service: string, need: Scope | null, error?: string): string {
  let challenge = `Bearer realm="${url.protocol}//${url.host}/token",service="${service}"`
  if (need) challenge += `,scope="${formatScope(need)}"`
  if (error) challenge += `,error="${error}"`
  return challenge
}
