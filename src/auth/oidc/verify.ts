/**
 * Checking an OIDC identity token (a CI job's password as user `oidc`) with jose: its `iss`
 * names an issuer of AUTH_OIDC; the signature verifies with a key of that issuer's JWKS
 * (RS256 or ES256 only: never `none`, never an HMAC, which would let the public key sign);
 * `aud` holds the configured audience; `exp`, `nbf` and `iat` hold within LEEWAY_SECONDS;
 * `sub` is there. The caller learns only "401"; the log says which check failed, never
 * the token.
 *
 * Cost: CPU (one RSA or ECDSA verification) plus the key set lookup (jwks.ts).
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose'
import { logEvent } from '../../log'
import type { Issuer, Issuers } from './config'
import { JwksError, keySet, refreshedKeySet, type KeySet } from './jwks'
import type { OidcIdentity } from './rules'

/** The user name CI jobs sign in as, their identity token as password (reserved in AUTH_USERS). */
export { OIDC_USER } from '../../settings/auth'
export const ALGORITHMS = ['RS256', 'ES256']
export const LEEWAY_SECONDS = 60
/** Older tokens are refused whatever their `exp` (CI tokens live minutes to hours). */
const MAX_AGE_SECONDS = 24 * 3600
const SUB = /^[\x21-\x7e][\x20-\x7e]{0,511}$/

/** The identity a token proves, or null (and a log line saying why). */
export async function verifyIdToken(issuers: Issuers, origin: string, token: string, now = Date.now()): Promise<OidcIdentity | null> {
  const refuse = (why: string, alias?: string): null => {
    logEvent('warn', { event: 'oidc.refused', issuer: alias ?? null, reason: why })
    return null
  }
  let iss: unknown
  let alg: unknown
  try {
    // Unverified: only to pick the issuer whose keys must verify it.
    iss = decodeJwt(token).iss
    alg = decodeProtectedHeader(token).alg
  } catch {
    return refuse('not a JWT')
  }
  if (!ALGORITHMS.includes(alg as string)) return refuse(`algorithm ${JSON.stringify(alg)?.slice(0, 20)} is not allowed`)
  const issuer = typeof iss === 'string' ? issuers.byIssuer.get(iss) : undefined
  if (!issuer) return refuse('iss is not an issuer of AUTH_OIDC')
  try {
    let set = await keySet(issuer, origin, now)
    let payload: JWTPayload
    try {
      payload = await check(token, issuer, set, now)
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err
      // A key we lack: the issuer may have rotated. Ask again (at most once a minute).
      set = await refreshedKeySet(issuer, origin, set, now)
      payload = await check(token, issuer, set, now)
    }
    if (typeof payload.sub !== 'string' || !SUB.test(payload.sub)) return refuse('sub is not printable text of at most 512 characters', issuer.alias)
    logEvent('log', { event: 'oidc.signed-in', identity: `oidc:${issuer.alias}:${payload.sub}` })
    return { alias: issuer.alias, claims: payload as Record<string, unknown> }
  } catch (err) {
    return refuse(reason(err), issuer.alias)
  }
}

function check(token: string, issuer: Issuer, set: KeySet, now: number): Promise<JWTPayload> {
  return jwtVerify(token, createLocalJWKSet(set.jwks), {
    algorithms: ALGORITHMS,
    issuer: issuer.issuer,
    audience: issuer.audience,
    clockTolerance: LEEWAY_SECONDS,
    maxTokenAge: MAX_AGE_SECONDS,
    requiredClaims: ['exp', 'iat', 'sub'],
    currentDate: new Date(now),
  }).then((r) => r.payload)
}

/** The failed check, for the log. */
function reason(err: unknown): string {
  if (err instanceof JwksError) return err.message
  if (err instanceof errors.JWKSNoMatchingKey) return 'kid: no key of the issuer matches'
  if (err instanceof errors.JWTClaimValidationFailed || err instanceof errors.JWTExpired) return `${err.claim}: ${err.message}`
  if (err instanceof errors.JOSEError) return `${err.code}: ${err.message}`
  return `unexpected: ${(err as Error)?.message ?? err}`
}
