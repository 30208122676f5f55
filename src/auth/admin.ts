/**
 * The `admin` right (AUTH_RULES `{"admin": [...]}`) in front of /admin/ routes.
 * AUTH_MODE "token": Basic credentials of an admin user, or a Bearer token holding
 * `registry:admin:*` (from /token, granted by the same rule); else 401/403.
 * AUTH_MODE "none": nobody can prove who they are, so only requests to localhost
 * (`wrangler dev`, `npm start`) are served; 403 DENIED anywhere else.
 * Cost: CPU only (Basic: see credentials.ts).
 */
import type { IRequest } from 'itty-router'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { holds } from './access'
import { authConfig } from './config'
import { basicCredentials, MAX_CREDENTIAL_LENGTH, OIDC_PREFIX, verifyCredentials } from './credentials'
import { mayAdmin } from './rules'
import { bearerChallenge } from './layer'
import type { Scope } from './scopes'
import { verifyAccessToken } from './tokens'

export const ADMIN_SCOPE: Readonly<Scope> = { type: 'registry', name: 'admin', actions: ['*'] }
const LOCAL = new Set(['localhost', '127.0.0.1', '[::1]'])
/** Cloudflare sets CF-Connecting-IP to the client's address (clients cannot forge it); wrangler dev to loopback. */
const LOOPBACK = new Set(['127.0.0.1', '::1'])

/** An open registry (AUTH_MODE "none") serves its admin pages to requests to and from this machine only. */
export function openAdmin(req: { url: string; headers: Headers }): boolean {
  const client = req.headers.get('cf-connecting-ip')
  return LOCAL.has(new URL(req.url).hostname) && (client === null || LOOPBACK.has(client))
}

/** The admin's name ('' in open mode on localhost), or throws 401/403. */
export async function authorizeAdmin(req: IRequest, env: Env): Promise<string> {
  const config = authConfig(env)
  const url = new URL(req.url)
  if (!config) {
    if (openAdmin(req)) return ''
    throw new RegistryError('DENIED', null, {}, { message: 'the admin endpoint of an open registry (AUTH_MODE "none") answers only on localhost' })
  }
  const service = config.service ?? url.host
  const challenge = (error?: string) =>
    new RegistryError('UNAUTHORIZED', null, { 'WWW-Authenticate': bearerChallenge(url, service, [ADMIN_SCOPE], error) })
  const header = req.headers.get('authorization')
  if (header === null || header.length > MAX_CREDENTIAL_LENGTH) throw challenge()
  if (/^bearer /i.test(header)) {
    const claims = await verifyAccessToken(await config.key, service, header.slice(7).trim())
    if (!claims) throw challenge('invalid_token')
    if (holds(claims.access, ADMIN_SCOPE)) return claims.sub
    if (claims.sub !== '' && !claims.sub.startsWith(OIDC_PREFIX) && mayAdmin(config.rules, claims.sub)) throw challenge('insufficient_scope')
    throw new RegistryError('DENIED')
  }
  const credentials = basicCredentials(header)
  const principal = credentials && (await verifyCredentials(env, config, credentials.user, credentials.password, url.origin))
  if (!principal) throw challenge()
  // Rules by name (`"admin": ["*"]` included) never apply to a CI identity token.
  if (!principal.oidc && mayAdmin(config.rules, principal.sub)) return principal.sub
  throw new RegistryError('DENIED')
}
