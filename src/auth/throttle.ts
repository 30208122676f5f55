/**
 * Throttling, with Workers Rate Limiting bindings (wrangler.toml [[ratelimits]]: each counts per
 * key and per Cloudflare location, `simple = { limit, period }`); docs/operating.md "Throttling".
 *
 * Sign-ins: every way credentials are checked (Basic on /v2/, GET and POST /token, the web UI's
 * /sign-in) goes through credentials.ts `verifyCredentials`, which asks here:
 * 1. `assertMaySignIn`, before anything else (the cache of verified credentials too, or a guesser
 *    could test passwords against it at the cost of a hash): an address or user name marked as
 *    past a limit gets 429 TOOMANYREQUESTS with Retry-After, and no password is checked.
 * 2. `assertMayCheck`, right before a password hash (PBKDF2) or a robot lookup (KV get) the cache
 *    did not spare: SIGNIN_CHECKS_BY_ADDRESS counts these, right or wrong, so a burst of parallel
 *    guesses (all past step 1 before the first failure is counted) burns bounded CPU. For a user
 *    name, `assertMayCheckName` then counts the check against the name (SIGNIN_FAILURES_BY_USER)
 *    before the hash, whether the password turns out right or wrong: counted only after a
 *    failure, a burst from many addresses (each under its own limits) had every guess checked,
 *    a right one let in, before the name's count caught up. A right password the cache spares
 *    (credentials.ts) is not checked, so not counted: its owner rarely spends one.
 * 3. `signInFailed`, after wrong credentials: SIGNIN_FAILURES_BY_ADDRESS counts the failure.
 * When a limit refuses, the address or name is marked for THROTTLE_RETRY_SECONDS
 * (storage/throttle-marks.ts) and the attempt answers 429.
 * With a limit of 10: failures 1–10 answer 401, the 11th is checked and answers 429, and every
 * later attempt answers 429 unchecked until the mark expires. A right password from another
 * address is not affected, unless that user name itself is past its own (higher) limit.
 *
 * Not limited: OIDC identity tokens (user "oidc"). They are signed, not guessed; refusing one
 * costs a signature check; and CI runners share addresses, so one tenant's broken job must not
 * lock everyone else's out. Robots count per address only: a robot token is 256 random bits,
 * and a per-name limit would only let anyone lock a CI robot out.
 *
 * Anonymous pulls (THROTTLE_ANONYMOUS_PULLS = "true"; off by default): each anonymous manifest
 * GET counts against ANONYMOUS_PULLS_BY_ADDRESS; past it, 429. HEADs do not count (as on Docker Hub).
 *
 * The address is CF-Connecting-IP; IPv6 clients are limited per /64, which one client usually
 * holds whole. A sign-in binding missing from wrangler.toml leaves its limit off (logged; /_health
 * reports it); THROTTLE_ANONYMOUS_PULLS without its binding fails closed.
 *
 * Cost: no R2 or KV call. Rate Limiting calls and Cache API calls are free.
 */
import type { IRequest } from 'itty-router'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { annotate, errorFields, logEvent, type RequestLine } from '../log'
import { settings } from '../settings'
import { SIGNIN_BINDINGS } from '../settings/throttle'
import { readMark, writeMark } from '../storage/throttle-marks'
import { toHex } from '../storage/streams'
import type { Access } from './access'

/** Where a sign-in comes from: the registry's origin (edge cache keys) and the client address. */
export interface Client {
  origin: string
  address: string | null
}

export const clientOf = (req: Request): Client => ({ origin: new URL(req.url).origin, address: req.headers.get('cf-connecting-ip') })

type Binding = (typeof SIGNIN_BINDINGS)[number] | 'ANONYMOUS_PULLS_BY_ADDRESS'

/** 429 when the address or (null for a robot) the user name is marked. Memory, else 1-2 Cache API matches. */
export async function assertMaySignIn(client: Client, user: string | null): Promise<void> {
  const now = Date.now()
  const [address, name] = await Promise.all([
    readMark(client.origin, 'address', await idOf(addressKey(client.address)), now),
    user === null ? null : readMark(client.origin, 'user', await idOf(user), now),
  ])
  const until = Math.max(address ?? 0, name ?? 0)
  if (until > now) throw tooMany('signin', until - now)
}

/** Counts one password hash or robot lookup from this address; 429 past SIGNIN_CHECKS_BY_ADDRESS. */
export async function assertMayCheck(env: Env, client: Client): Promise<void> {
  if (await allowed(env, 'SIGNIN_CHECKS_BY_ADDRESS', addressKey(client.address))) return
  throw tooMany('signin-checks', settings(env).THROTTLE_RETRY_SECONDS * 1000)
}

/**
 * Counts a password check for user name `user` against the name (SIGNIN_FAILURES_BY_USER), before
 * the hash; past the limit, marks the name and throws 429 (the password unchecked).
 */
export async function assertMayCheckName(env: Env, client: Client, user: string): Promise<void> {
  const id = await idOf(user)
  if (await allowed(env, 'SIGNIN_FAILURES_BY_USER', id)) return
  const ms = settings(env).THROTTLE_RETRY_SECONDS * 1000
  const now = Date.now()
  await writeMark(client.origin, 'user', id, now + ms, now)
  throw tooMany('signin', ms)
}

/** Counts a failed sign-in by address; past the limit, marks the address and throws 429. */
export async function signInFailed(env: Env, client: Client): Promise<void> {
  const address = addressKey(client.address)
  if (await allowed(env, 'SIGNIN_FAILURES_BY_ADDRESS', address)) return
  const ms = settings(env).THROTTLE_RETRY_SECONDS * 1000
  const now = Date.now()
  await writeMark(client.origin, 'address', await idOf(address), now + ms, now)
  throw tooMany('signin', ms)
}

/** 429 for an anonymous manifest GET past ANONYMOUS_PULLS_BY_ADDRESS, when THROTTLE_ANONYMOUS_PULLS is on. */
export async function assertMayPullAnonymously(req: IRequest, env: Env, auth: Access | undefined): Promise<void> {
  if (req.method !== 'GET' || !req.route?.includes('/manifests/') || (auth && auth.sub !== '')) return
  const s = settings(env)
  if (!s.THROTTLE_ANONYMOUS_PULLS) return
  if (!env.ANONYMOUS_PULLS_BY_ADDRESS) {
    throw new Error('THROTTLE_ANONYMOUS_PULLS: "true" needs the ANONYMOUS_PULLS_BY_ADDRESS [[ratelimits]] binding in wrangler.toml')
  }
  if (await allowed(env, 'ANONYMOUS_PULLS_BY_ADDRESS', addressKey(req.headers.get('cf-connecting-ip')))) return
  throw tooMany('anonymous-pulls', s.THROTTLE_RETRY_SECONDS * 1000)
}

const MESSAGES: Record<NonNullable<RequestLine['throttled']>, string> = {
  'signin': 'too many failed sign-ins from this address or for this user name',
  'signin-checks': 'too many sign-ins from this address at once',
  'anonymous-pulls': 'too many anonymous pulls from this address: sign in, or slow down',
}

/** 429 TOOMANYREQUESTS (spec code-14) with Retry-After; the message says when (clients print it). */
function tooMany(kind: NonNullable<RequestLine['throttled']>, ms: number): RegistryError {
  const seconds = Math.max(1, Math.ceil(ms / 1000))
  annotate({ throttled: kind })
  return new RegistryError('TOOMANYREQUESTS', { retryAfter: seconds }, { 'Retry-After': String(seconds) }, {
    message: `${MESSAGES[kind]}: try again in ${seconds} seconds`,
  })
}

const unbound = new Set<string>()

/**
 * Whether the binding lets `key` through (and counts it). A missing binding lets everything
 * through (logged once); so does a failing one (logged each time): an outage of the limiter must
 * not become an outage of every sign-in.
 */
async function allowed(env: Env, binding: Binding, key: string): Promise<boolean> {
  const limiter = env[binding]
  if (!limiter) {
    if (!unbound.has(binding)) logEvent('warn', { event: 'throttle.unbound', binding })
    unbound.add(binding)
    return true
  }
  try {
    return (await limiter.limit({ key })).success
  } catch (err) {
    logEvent('error', { event: 'error', ...errorFields(err) })
    return true
  }
}

/** A user name or address as a fixed-length key (names may be long). */
async function idOf(s: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s)))).slice(0, 32)
}

/**
 * The key an address is limited by: IPv4 as it is; IPv6 by its /64 (an IPv4-mapped one as
 * IPv4); no address (only outside Cloudflare) is one shared key.
 */
export function addressKey(address: string | null): string {
  const ip = address?.trim().toLowerCase() ?? ''
  if (!ip) return 'unknown'
  if (!ip.includes(':')) return ip
  if (ip.includes('.')) return ip.slice(ip.lastIndexOf(':') + 1)
  const [head = '', tail = ''] = ip.split('::')
  const front = head ? head.split(':') : []
  const back = tail ? tail.split(':') : []
  const groups = ip.includes('::') ? [...front, ...Array(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back] : front
  return `${groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':')}::/64`
}
