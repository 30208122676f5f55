/**
 * The `admin` right (AUTH_RULES `{"admin": [...]}`) in front of /admin/ routes.
 * AUTH_MODE "token": Basic credentials of an admin user, or a Bearer token holding
 * `registry:admin:*` (from /token, granted by the same rule); else 401/403.
 * AUTH_MODE "none": nobody can prove who they are, so only a local caller is served (`localCaller`),
 * and not when a web page's browser sent the request (`sentByAPage`); 403 DENIED anyone else.
 * Cost: CPU only (Basic: see credentials.ts, throttled like every sign-in).
 */
import type { IRequest } from 'itty-router'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { annotate } from '../log'
import { holds } from './access'
import { authConfig } from './config'
import { basicCredentials, MAX_CREDENTIAL_LENGTH, OIDC_PREFIX, verifyCredentials } from './credentials'
import { mayAdmin } from './rules'
import { bearerChallenge } from './layer'
import type { Scope } from './scopes'
import { clientOf } from './throttle'
import { verifyAccessToken } from './tokens'

export const ADMIN_SCOPE: Readonly<Scope> = { type: 'registry', name: 'admin', actions: ['*'] }
const LOCAL = new Set(['localhost', '127.0.0.1', '[::1]'])
/** 127.0.0.0/8, ::1, and IPv4 loopback as an IPv4-mapped IPv6 address. */
const LOOPBACK = /^(?:(?:::ffff:)?127(?:\.\d{1,3}){3}|::1)$/i
/** Headers a relaying proxy adds: a request carrying one was relayed, whatever address it came from. */
const RELAYED = ['forwarded', 'x-forwarded-for', 'x-real-ip', 'true-client-ip']

/**
 * Whether an open registry's admin endpoint may answer: the client's address is loopback and the
 * request names a local host. The address is CF-Connecting-IP, which Cloudflare sets to the
 * client's (never loopback there) and `npm start`'s front to its socket's peer, overwriting any
 * a client sent (scripts/start.mjs); absent, nobody vouches for the client: refused. The Host
 * alone proves nothing (any client can send `Host: localhost`), but it still must be local: a
 * web page the operator opens cannot reach the endpoint through a rebinding DNS name. A request
 * relayed by a proxy (a tunnel, a reverse proxy on this machine) reaches the front from loopback
 * on behalf of anyone: refused too. CPU only.
 */
export function localCaller(req: { url: string; headers: Headers }): boolean {
  const client = req.headers.get('cf-connecting-ip')
  if (client === null || !LOOPBACK.test(client.trim())) return false
  if (RELAYED.some((h) => req.headers.has(h))) return false
  return LOCAL.has(new URL(req.url).hostname)
}

/**
 * Whether a browser sent the request on behalf of a page of another site: any page the operator
 * has open can POST to http://localhost:<port>/admin/gc (a simple request, sent without asking),
 * and the browser connects from loopback and names localhost, so only Origin and Sec-Fetch-Site
 * tell it from the operator's own request (cross-site request forgery). curl, `npm run gc` and
 * the address bar (`Sec-Fetch-Site: none`) pass; an Origin of another host (or `null`) does not.
 * The token mode needs no such check: its credentials are never sent by a browser on its own.
 */
function sentByAPage(req: { url: string; headers: Headers }): boolean {
  const site = req.headers.get('sec-fetch-site')
  if (site !== null && site !== 'same-origin' && site !== 'none') return true
  const origin = req.headers.get('origin')
  if (origin === null) return false
  try {
    return new URL(origin).host !== new URL(req.url).host
  } catch {
    return true
  }
}

/** The admin's name ('' in open mode on localhost), or throws 401/403. */
export async function authorizeAdmin(req: IRequest, env: Env): Promise<string> {
  const config = authConfig(env)
  const url = new URL(req.url)
  if (!config) {
    if (localCaller(req) && !sentByAPage(req)) return ''
    throw new RegistryError('DENIED', null, {}, { message: 'the admin endpoint of an open registry (AUTH_MODE "none") answers only local clients on localhost, never a request a web page sent' })
  }
  const service = config.service ?? url.host
  const challenge = (error?: string) =>
    new RegistryError('UNAUTHORIZED', null, { 'WWW-Authenticate': bearerChallenge(url, service, [ADMIN_SCOPE], error) })
  const header = req.headers.get('authorization')
  if (header === null || header.length > MAX_CREDENTIAL_LENGTH) throw challenge()
  if (/^bearer /i.test(header)) {
    const claims = await verifyAccessToken(await config.key, service, header.slice(7).trim())
    if (!claims) throw challenge('invalid_token')
    annotate({ identity: claims.sub || 'anonymous' })
    if (holds(claims.access, ADMIN_SCOPE)) return claims.sub
    if (claims.sub !== '' && !claims.sub.startsWith(OIDC_PREFIX) && mayAdmin(config.rules, claims.sub)) throw challenge('insufficient_scope')
    throw new RegistryError('DENIED')
  }
  const credentials = basicCredentials(header)
  const principal = credentials && (await verifyCredentials(env, config, credentials.user, credentials.password, clientOf(req)))
  if (!principal) throw challenge()
  // Rules by name (`"admin": ["*"]` included) never apply to a CI identity token.
  if (!principal.oidc && mayAdmin(config.rules, principal.sub)) return principal.sub
  throw new RegistryError('DENIED')
}
