/**
 * Checking a user name and password: a user of AUTH_USERS (PBKDF2, CPU only), a
 * robot (`robot:<name>`, its token hash in KV), or a CI job as user `oidc` with an OIDC
 * identity token as password (oidc/verify.ts). Users and robots are cached in isolate memory for
 * CACHE_MS, so a client sending Basic credentials on every request pays one PBKDF2 or
 * one KV get per minute per isolate. The caches hold hashes, never a password.
 */
import type { Env } from '../env'
import { readRobot } from '../storage/robots'
import { toHex } from '../storage/streams'
import type { AuthConfig } from './config'
import { PBKDF2_MAX_ITERATIONS, sha256, timingSafeEqual, verifyPassword, type PasswordHash } from './passwords'
import type { OidcIdentity } from './oidc/rules'
import { OIDC_USER, verifyIdToken } from './oidc/verify'
import { ROBOT_PREFIX, robotName, type RobotName, type RobotRecord } from './robots'

/** Who a request is, once proven: a user name, `robot:<name>` or `oidc:<alias>:<sub>`. */
export interface Principal {
  sub: string
  /** Identifies the credential itself (a salt, a token hash prefix): refresh tokens die with it. */
  proof: string
  /** An OIDC caller's verified claims: OIDC rules grant by them (no refresh tokens for these). */
  oidc?: OidcIdentity
}

/** The identity prefix of OIDC callers: `oidc:<alias>:<sub>`. */
export const OIDC_PREFIX = 'oidc:'

const CACHE_MS = 60_000
const CACHE_ENTRIES = 1000
/** Longer credentials are refused unread (bounded work per request). */
export const MAX_CREDENTIAL_LENGTH = 8192

/**
 * Users proven recently, keyed by SHA-256 of `user \0 password` (the whole credential), and used
 * only while the user's current AUTH_USERS hash is the one that proved it (its `proof`).
 */
const verified = new Map<string, { principal: Principal; until: number }>()
/**
 * Robot records read recently, keyed by robot name, including absent ones (a revoked robot stays
 * refused): the record, not a verdict; the token is checked against it on every request.
 */
const robots = new Map<string, { record: RobotRecord | null; until: number }>()

/** Name and password from an `Authorization: Basic …` value; null when it is not one. */
export function basicCredentials(header: string): { user: string; password: string } | null {
  if (header.length > MAX_CREDENTIAL_LENGTH || !/^basic /i.test(header)) return null
  let text: string
  try {
    const bytes = Uint8Array.from(atob(header.slice(6).trim()), (c) => c.charCodeAt(0))
    text = new TextDecoder().decode(bytes)
  } catch {
    return null
  }
  const colon = text.indexOf(':')
  return colon < 0 ? null : { user: text.slice(0, colon), password: text.slice(colon + 1) }
}

/**
 * The principal these credentials prove, or null. Cost: a cache hit is one SHA-256;
 * a miss is one PBKDF2 (user) or one KV get (robot, unless its record is cached);
 * an identity token is one signature check (and its issuer's keys: oidc/jwks.ts, whose
 * edge cache is under `origin`).
 */
export async function verifyCredentials(
  env: Env, config: AuthConfig, user: string, password: string, origin: string,
): Promise<Principal | null> {
  if (user.length + password.length > MAX_CREDENTIAL_LENGTH) return null
  if (user === OIDC_USER) {
    const id = await verifyIdToken(config.oidc, origin, password)
    return id && { sub: `${OIDC_PREFIX}${id.alias}:${id.claims.sub as string}`, proof: '', oidc: id }
  }
  // `robot:ci:<token>` split at the first colon (podman, skopeo, containerd read docker's
  // config.json that way) arrives as user "robot", password "ci:<token>".
  if (user === 'robot' && password.includes(':')) {
    const colon = password.indexOf(':')
    user = ROBOT_PREFIX + password.slice(0, colon)
    password = password.slice(colon + 1)
  }
  const robot = robotName(user)
  if (robot) return verifyRobot(env, robot, password)
  if (user.startsWith(ROBOT_PREFIX)) return null

  const cacheKey = toHex(await sha256(`${user}\0${password}`))
  const hit = verified.get(cacheKey)
  const stored = config.users.get(user)
  // The proof check drops a cached entry as soon as the user's hash changes or goes.
  if (hit && hit.until > Date.now() && stored && hit.principal.proof === stored.proof) return hit.principal
  // An unknown user costs the same PBKDF2 as a known one: timing does not tell who exists.
  const ok = await verifyPassword(password, stored?.hash ?? decoy())
  if (!ok || !stored) return null
  const principal = { sub: user, proof: stored.proof }
  remember(verified, cacheKey, { principal, until: Date.now() + CACHE_MS })
  return principal
}

async function verifyRobot(env: Env, name: RobotName, token: string): Promise<Principal | null> {
  const record = await robotRecord(env, name)
  const given = await sha256(token)
  if (!record || !timingSafeEqual(given, fromHex(record.sha256))) return null
  return { sub: ROBOT_PREFIX + name, proof: robotProof(record) }
}

/**
 * Whether `sub` still holds the credential `proof` names (a refresh token's check):
 * the user's password was not changed, the robot was not revoked or re-created.
 * User: CPU only. Robot: 1 KV get unless cached.
 */
export async function stillValid(env: Env, config: AuthConfig, sub: string, proof: string): Promise<boolean> {
  const robot = robotName(sub)
  if (robot) {
    const record = await robotRecord(env, robot)
    return record !== null && robotProof(record) === proof
  }
  return config.users.get(sub)?.proof === proof
}

/** Cached, else 1 KV get. */
async function robotRecord(env: Env, name: RobotName): Promise<RobotRecord | null> {
  const hit = robots.get(name)
  if (hit && hit.until > Date.now()) return hit.record
  const record = await readRobot(env, name)                               // KV get
  remember(robots, name, { record, until: Date.now() + CACHE_MS })
  return record
}

const robotProof = (record: RobotRecord): string => record.sha256.slice(0, 16)

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  cache.delete(key)
  cache.set(key, value)
  // Maps iterate in insertion order: the first key is the oldest.
  if (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value!)
}

let decoyHash: PasswordHash | null = null
const decoy = (): PasswordHash =>
  (decoyHash ??= {
    iterations: PBKDF2_MAX_ITERATIONS,
    salt: crypto.getRandomValues(new Uint8Array(16)),
    hash: crypto.getRandomValues(new Uint8Array(32)),
  })

const fromHex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16))
