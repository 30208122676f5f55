/**
 * The JWTs of the Docker token flow, HS256 with AUTH_TOKEN_SECRET (jose):
 *
 * - access tokens (`typ: at+jwt`, ACCESS_TOKEN_SECONDS): iss, sub (absent for anonymous),
 *   aud = the service, iat, exp, and `access`: [{type, name, actions}] holding only what
 *   was granted. Checking one is CPU only.
 * - refresh tokens (`typ: rt+jwt`, REFRESH_TOKEN_SECONDS), for signed-in callers that ask
 *   (docker login's `offline_token`, OAuth2 `access_type=offline`): sub, plus `proof` naming
 *   the credential, so a changed password or a revoked robot ends them.
 *
 * - session tokens (`typ: st+jwt`, ACCESS_TOKEN_SECONDS): the web UI's short-lived proof of who
 *   signed in (sub only; the rules decide what the UI shows), kept in an HttpOnly cookie beside a
 *   refresh token (src/auth/session.ts).
 *
 * The three `typ`s keep one kind from ever passing for another: an API token narrowed to one
 * scope never becomes a session with all of its holder's rights.
 */
import { SignJWT, jwtVerify } from 'jose'
import { MAX_SCOPES, type Scope } from './scopes'

export const ACCESS_TOKEN_SECONDS = 300
export const REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
const ISSUER = 'edge-registry'
const ACCESS = 'at+jwt'
const REFRESH = 'rt+jwt'
const SESSION = 'st+jwt'

/** What a verified access token says: who ('' = anonymous) and what it may do. */
export interface AccessClaims {
  sub: string
  access: Scope[]
}

export interface Issued {
  token: string
  /** Seconds since the epoch. */
  issuedAt: number
  expiresIn: number
}

export async function issueAccessToken(
  key: CryptoKey, service: string, sub: string, access: Scope[], now = Date.now(),
): Promise<Issued> {
  return sign(key, service, ACCESS, sub, { access }, ACCESS_TOKEN_SECONDS, now)
}

export async function issueRefreshToken(
  key: CryptoKey, service: string, sub: string, proof: string, now = Date.now(),
): Promise<Issued> {
  return sign(key, service, REFRESH, sub, { proof }, REFRESH_TOKEN_SECONDS, now)
}

export async function issueSessionToken(key: CryptoKey, service: string, sub: string, now = Date.now()): Promise<Issued> {
  return sign(key, service, SESSION, sub, {}, ACCESS_TOKEN_SECONDS, now)
}

/** The subject of a valid session token; null otherwise. */
export async function verifySessionToken(key: CryptoKey, service: string, token: string): Promise<string | null> {
  const payload = await verify(key, service, SESSION, token)
  return typeof payload?.sub === 'string' ? payload.sub : null
}

async function sign(
  key: CryptoKey, service: string, typ: string, sub: string, claims: Record<string, unknown>, ttl: number, now: number,
): Promise<Issued> {
  const issuedAt = Math.floor(now / 1000)
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ })
    .setIssuer(ISSUER)
    .setAudience(service)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + ttl)
    // Unique per issue: two sign-ins in one second get distinct sessions (and CSRF tokens).
    .setJti(crypto.randomUUID())
  if (sub) jwt.setSubject(sub)
  return { token: await jwt.sign(key), issuedAt, expiresIn: ttl }
}

/** The claims of a valid access token for `service`; null when forged, expired, foreign or malformed. */
export async function verifyAccessToken(key: CryptoKey, service: string, token: string): Promise<AccessClaims | null> {
  const payload = await verify(key, service, ACCESS, token)
  const access = payload?.access
  if (!Array.isArray(access) || access.length > MAX_SCOPES || !access.every(isScope)) return null
  return { sub: typeof payload!.sub === 'string' ? payload!.sub : '', access }
}

/** The subject and credential proof of a valid refresh token; null otherwise. */
export async function verifyRefreshToken(
  key: CryptoKey, service: string, token: string,
): Promise<{ sub: string; proof: string } | null> {
  const payload = await verify(key, service, REFRESH, token)
  if (typeof payload?.sub !== 'string' || typeof payload.proof !== 'string') return null
  return { sub: payload.sub, proof: payload.proof }
}

async function verify(key: CryptoKey, service: string, typ: string, token: string): Promise<Record<string, unknown> | null> {
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: ['HS256'],
      issuer: ISSUER,
      audience: service,
      typ,
      requiredClaims: ['iat', 'exp'],
    })
    return payload
  } catch {
    return null
  }
}

function isScope(x: unknown): x is Scope {
  const s = x as Scope
  return typeof s === 'object' && s !== null && typeof s.type === 'string' && typeof s.name === 'string'
    && Array.isArray(s.actions) && s.actions.every((a) => typeof a === 'string')
}
