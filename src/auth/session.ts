/**
 * The web UI's session: a sign-in form's credentials, checked as POST /token checks them, become
 * one HttpOnly, Secure, SameSite=Strict cookie holding a short-lived session token and a refresh
 * token (tokens.ts). A page request presents the cookie; an expired session token is renewed from
 * the refresh token (a new cookie on the reply). Without a valid cookie the viewer is anonymous.
 *
 * What the UI shows a viewer is what the rules give the session's user (`ruleAccess`), as for
 * Basic credentials: the cookie is only sent by this origin's own pages (SameSite=Strict), and
 * every write the UI makes also needs a CSRF token derived from the cookie (csrfToken) and a
 * same-origin Origin header (src/routes/ui.ts).
 *
 * Cost: CPU only (HMACs); renewing a robot's session reads its KV record (credentials.ts).
 */
import type { IRequest } from 'itty-router'
import type { Env } from '../env'
import { toHex } from '../storage/streams'
import { ruleAccess, type Access } from './access'
import { authConfig, type AuthConfig } from './config'
import { stillValid, verifyCredentials } from './credentials'
import { clientOf } from './throttle'
import { mayAdmin, mayListCatalog } from './rules'
import { localCaller } from './admin'
import { issueRefreshToken, issueSessionToken, REFRESH_TOKEN_SECONDS, verifyRefreshToken, verifySessionToken } from './tokens'

/** `__Host-`: the browser only accepts it Secure, from this host, for path `/`. */
export const SESSION_COOKIE = '__Host-registry-session'

/** Who is looking at a page, and what they may see. */
export interface Viewer {
  /** Undefined when auth is off: an open registry shows everything. */
  access: Access | undefined
  /** Whether auth is on (a sign-in form exists). */
  authEnabled: boolean
  /** The signed-in user, or null (anonymous, or auth off). */
  user: string | null
  /** Whether the viewer may see every repository name and the registry-wide storage chart. */
  global: boolean
  /** Whether the viewer holds the admin right (the Events page); as /admin/ decides (auth/admin.ts). */
  admin?: boolean
  /** Required in every form that writes; null when nobody is signed in. */
  csrf: string | null
  /** A renewed cookie to send back, if the session token had expired. */
  setCookie: string | null
}

/** The viewer of a UI request (from its session cookie). */
export async function viewerOf(req: IRequest, env: Env): Promise<Viewer> {
  const config = authConfig(env)
  if (!config) return { access: undefined, authEnabled: false, user: null, global: true, admin: localCaller(req), csrf: null, setCookie: null }
  const anonymous: Viewer = {
    access: ruleAccess(config.rules, ''), authEnabled: true, user: null, global: false, csrf: null, setCookie: null,
  }
  const cookie = readCookie(req.headers.get('cookie'), SESSION_COOKIE)
  const [sessionToken, refreshToken] = cookie?.split('~') ?? []
  if (!sessionToken || !refreshToken) return anonymous
  const service = serviceOf(config, req)
  const key = await config.key
  let sub = await verifySessionToken(key, service, sessionToken)
  let setCookie: string | null = null
  if (sub === null) {
    const refresh = await verifyRefreshToken(key, service, refreshToken)
    if (!refresh || !(await stillValid(env, config, refresh.sub, refresh.proof))) return anonymous
    sub = refresh.sub
    setCookie = sessionCookie((await issueSessionToken(key, service, sub)).token, refreshToken)
  }
  // The refresh token names the same user as the session token (both are ours, signed together).
  return {
    access: ruleAccess(config.rules, sub),
    authEnabled: true,
    user: sub,
    global: mayListCatalog(config.rules, sub),
    admin: mayAdmin(config.rules, sub),
    csrf: await csrfToken(refreshToken),
    setCookie,
  }
}

/** Checks credentials as POST /token does (throttled alike: 429 TOOMANYREQUESTS thrown); the session cookie, or null when they are wrong. */
export async function signIn(req: IRequest, env: Env, user: string, password: string): Promise<string | null> {
  const config = authConfig(env)
  if (!config) return null
  const principal = await verifyCredentials(env, config, user, password, clientOf(req))
  // CI identity tokens are for pushing: a session holds rules by name, which never apply to them.
  if (!principal || principal.oidc) return null
  const service = serviceOf(config, req)
  const key = await config.key
  const [session, refresh] = await Promise.all([
    issueSessionToken(key, service, principal.sub),
    issueRefreshToken(key, service, principal.sub, principal.proof),
  ])
  return sessionCookie(session.token, refresh.token)
}

/** A cookie that ends the session. */
export const signedOutCookie = (): string => `${SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0`

/** The CSRF token of a session: a hash of its refresh token, which no other site can read (HttpOnly). */
export async function csrfToken(refreshToken: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`csrf\0${refreshToken}`))
  return toHex(new Uint8Array(digest)).slice(0, 32)
}

function sessionCookie(sessionToken: string, refreshToken: string): string {
  return `${SESSION_COOKIE}=${sessionToken}~${refreshToken}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${REFRESH_TOKEN_SECONDS}`
}

const serviceOf = (config: AuthConfig, req: IRequest): string => config.service ?? new URL(req.url).host

/** One cookie's value from a Cookie header. */
export function readCookie(header: string | null, name: string): string | null {
  for (const part of header?.split(';') ?? []) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return null
}
