/**
 * Checking a user name and password: a user of AUTH_USERS (PBKDF2, CPU only), a
 * robot (`robot:<name>`, its token hash in KV), or a CI job as user `oidc` with an OIDC
 * identity token as password (oidc/verify.ts). Users and robots are cached in isolate memory for
 * CACHE_MS, so a client sending Basic credentials on every request pays one PBKDF2 or
 * one KV get per minute per isolate. The caches hold hashes, never a password.
 * Every way in comes through here, so here the sign-in throttle (throttle.ts) is asked, and
 * the attempt is put on the request's log line (the name tried, never the password).
 */
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { annotate } from '../log'
import { readRobot } from '../storage/robots'
import { toHex } from '../storage/streams'
import type { AuthConfig } from './config'
import { PBKDF2_MAX_ITERATIONS, sha256, timingSafeEqual, verifyPassword, type PasswordHash } from './passwords'
import type { OidcIdentity } from './oidc/rules'
import { OIDC_USER, verifyIdToken } from './oidc/verify'
import { ROBOT_PREFIX, robotName, type RobotName, type RobotRecord } from './robots'
import { assertMayCheck, assertMayCheckName, assertMaySignIn, signInFailed, type Client } from './throttle'

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
 * The principal these credentials prove, or null; 429 TOOMANYREQUESTS while the client address
 * or the user name is throttled (throttle.ts: checked before anything else, counted on failure).
 * Cost: a cache hit is one SHA-256; a miss is one PBKDF2 (user) or one KV get (robot, unless its
 * record is cached); an identity token is one signature check (and its issuer's keys:
 * oidc/jwks.ts, whose edge cache is under the client's origin).
 */
export async function verifyCredentials(
  env: Env, config: AuthConfig, user: string, password: string, client: Client,
): Promise<Principal | null> {
  if (user.length + password.length > MAX_CREDENTIAL_LENGTH) return null
  if (user === OIDC_USER) {
    // Not throttled: signed tokens are not guessed, and CI runners share addresses (throttle.ts).
    const id = await verifyIdToken(config.oidc, client.origin, password)
    const principal = id && { sub: `${OIDC_PREFIX}${id.alias}:${id.claims.sub as string}`, proof: '', oidc: id }
    return attempted(OIDC_USER, principal)
  }
  // `robot:ci:<token>` split at the first colon (podman, skopeo, containerd read docker's
  // config.json that way) arrives as user "robot", password "ci:<token>".
  if (user === 'robot' && password.includes(':')) {
    const colon = password.indexOf(':')
    user = ROBOT_PREFIX + password.slice(0, colon)
    password = password.slice(colon + 1)
  }
  const robot = robotName(user)
  // Robots are limited per address only (throttle.ts); anything else per user name too (verifyUser).
  const name = user.startsWith(ROBOT_PREFIX) ? null : user
  const shown = robot || config.users.has(user) ? user : '(unknown)'
  try {
    await assertMaySignIn(client, name)
    // `robot:` with an invalid robot name is refused unchecked.
    const principal = robot ? await verifyRobot(env, client, robot, password) : name === null ? null : await verifyUser(env, config, client, user, password)
    if (!principal) await signInFailed(env, client)
    return attempted(shown, principal)
  } catch (err) {
    if (err instanceof RegistryError && err.code === 'TOOMANYREQUESTS') annotate({ signIn: { user: shown, outcome: 'throttled' } })
    throw err
  }
}

/** Puts the attempt on the request's log line. */
function attempted(user: string, principal: Principal | null): Principal | null {
  annotate(principal ? { identity: principal.sub, signIn: { user, outcome: 'ok' } } : { signIn: { user, outcome: 'refused' } })
  return principal
}

async function verifyUser(env: Env, config: AuthConfig, client: Client, user: string, password: string): Promise<Principal | null> {
  const cacheKey = toHex(await sha256(`${user}\0${password}`))
  const hit = verified.get(cacheKey)
  const stored = config.users.get(user)
  // The proof check drops a cached entry as soon as the user's hash changes or goes.
  if (hit && hit.until > Date.now() && stored && hit.principal.proof === stored.proof) return hit.principal
  await assertMayCheck(env, client)
  // Known or not, alike: counted before the hash (throttle.ts), timing and answers tell no name apart.
  await assertMayCheckName(env, client, user)
  // An unknown user costs the same PBKDF2 as a known one (decoyFor): timing does not tell who exists.
  const ok = await verifyPassword(password, stored?.hash ?? decoyFor(config))
  if (!ok || !stored) return null
  const principal = { sub: user, proof: stored.proof }
  remember(verified, cacheKey, { principal, until: Date.now() + CACHE_MS })
  return principal
}

async function verifyRobot(env: Env, client: Client, name: RobotName, token: string): Promise<Principal | null> {
  const record = await robotRecord(env, name, client)
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

/** Cached, else 1 KV get (counted against the address's checks when signing in). */
async function robotRecord(env: Env, name: RobotName, client?: Client): Promise<RobotRecord | null> {
  const hit = robots.get(name)
  if (hit && hit.until > Date.now()) return hit.record
  if (client) await assertMayCheck(env, client)
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

const decoys = new WeakMap<AuthConfig, PasswordHash>()

/**
 * What an unknown user name is checked against: a random hash with the iteration count most
 * configured users have (ties: the higher), so it costs what a real user's check costs and
 * timing does not tell names apart. Without users, the maximum.
 */
function decoyFor(config: AuthConfig): PasswordHash {
  let decoy = decoys.get(config)
  if (!decoy) {
    const counts = new Map<number, number>()
    for (const { hash } of config.users.values()) counts.set(hash.iterations, (counts.get(hash.iterations) ?? 0) + 1)
    let iterations = PBKDF2_MAX_ITERATIONS
    let most = 0
    for (const [n, times] of counts) if (times > most || (times === most && n > iterations)) [iterations, most] = [n, times]
    decoy = { iterations, salt: crypto.getRandomValues(new Uint8Array(16)), hash: crypto.getRandomValues(new Uint8Array(32)) }
    decoys.set(config, decoy)
  }
  return decoy
}

const fromHex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16))
