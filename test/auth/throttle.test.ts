/**
 * Throttling (src/auth/throttle.ts) with real Rate Limiting bindings at the limits wrangler.toml
 * ships (vitest.config.ts binds them as SHIPPED_<name>): failed sign-ins per address and per user
 * name on every way in, bursts of checks, and the optional anonymous pull limit. PBKDF2 runs are
 * counted on crypto.subtle.deriveBits, which only a password check calls.
 */
import { env as testEnv } from 'cloudflare:workers'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { addressKey } from '../../src/auth/throttle'
import { hashPassword } from '../../src/auth/passwords'
import type { Env } from '../../src/env'
import { MT, ociImage, push } from '../manifests/fixtures'
import { authEnv, basic, codeOf, fresh, open, ROBOT_TOKEN, send, SERVICE } from './setup'

const shipped = testEnv as unknown as Record<string, RateLimit>
/** wrangler.toml's limits (SIGNIN_FAILURES_BY_ADDRESS 10, SIGNIN_FAILURES_BY_USER 30, SIGNIN_CHECKS_BY_ADDRESS 60 a minute). */
const LIMITS = { byAddress: 10, byUser: 30, checks: 60 }
const PASSWORD = 'correct horse battery staple'

let n = 0
/** An address and a user nobody else in the run uses (the bindings count for the whole run). */
const uniqueAddress = () => `2001:db8:${(Date.now() & 0xffff).toString(16)}:${(n++ & 0xffff).toString(16)}::1`
const uniqueUser = () => `user${Date.now().toString(36)}${(n++).toString(36)}`

/** Token auth with one user, `user`, and the shipped limits. */
async function throttledEnv(user: string, overrides: Partial<Env> = {}): Promise<Env> {
  return authEnv({
    AUTH_USERS: JSON.stringify({ [user]: await hashPassword(PASSWORD, 1000) }),
    AUTH_RULES: JSON.stringify([{ repos: 'team-a/*', users: [user, 'robot:ci'], actions: ['pull', 'push'] }]),
    SIGNIN_FAILURES_BY_ADDRESS: shipped.SHIPPED_SIGNIN_FAILURES_BY_ADDRESS,
    SIGNIN_FAILURES_BY_USER: shipped.SHIPPED_SIGNIN_FAILURES_BY_USER,
    SIGNIN_CHECKS_BY_ADDRESS: shipped.SHIPPED_SIGNIN_CHECKS_BY_ADDRESS,
    ANONYMOUS_PULLS_BY_ADDRESS: shipped.SHIPPED_ANONYMOUS_PULLS_BY_ADDRESS,
    ...overrides,
  })
}

const tokenGet = (e: Env, address: string, user: string, password: string) =>
  send(e, `/token?service=${SERVICE}&scope=repository:team-a/x:pull`, { headers: { Authorization: basic(user, password), 'CF-Connecting-IP': address } })

/** The four ways in, each a sign-in attempt from `address`. */
const WAYS: [string, (e: Env, address: string, user: string, password: string) => Promise<Response>][] = [
  ['GET /token with Basic', tokenGet],
  ['POST /token (password grant)', (e, address, user, password) => send(e, '/token', {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', username: user, password, service: SERVICE, scope: 'repository:team-a/x:pull' }),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'CF-Connecting-IP': address },
  })],
  ['Basic on /v2/', (e, address, user, password) => send(e, '/v2/', { headers: { Authorization: basic(user, password), 'CF-Connecting-IP': address } })],
  ['the web UI /sign-in', (e, address, user, password) => {
    const body = new URLSearchParams({ username: user, password, next: '/' }).toString()
    return send(e, '/sign-in', {
      method: 'POST', body, redirect: 'manual',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(body.length),
        Origin: 'http://registry.test', 'Sec-Fetch-Site': 'same-origin', 'CF-Connecting-IP': address,
      },
    })
  }],
]

/** Rate Limiting counts in fixed windows locally: start a run of attempts well inside one. */
async function awayFromWindowEdge(): Promise<void> {
  const into = Date.now() % 60_000
  if (into > 55_000) await new Promise((r) => setTimeout(r, 60_000 - into + 100))
}

let pbkdf2: ReturnType<typeof vi.spyOn>
beforeAll(() => {
  pbkdf2 = vi.spyOn(crypto.subtle, 'deriveBits')
})
afterEach(() => pbkdf2.mockClear())

describe('throttling failed sign-ins', () => {
  it('answers 30 wrong passwords from one address: 401 up to the limit, then 429 TOOMANYREQUESTS with Retry-After, and no password check after it', async () => {
    const user = uniqueUser()
    const e = await throttledEnv(user)
    const address = uniqueAddress()
    await awayFromWindowEdge()
    pbkdf2.mockClear()
    const statuses: number[] = []
    let refusal: Response | null = null
    for (let i = 0; i < 30; i++) {
      const res = await tokenGet(e, address, user, `wrong-${i}`)
      statuses.push(res.status)
      if (res.status === 429 && !refusal) refusal = res
      else await res.body?.cancel()
    }
    expect(statuses).toEqual([...Array(LIMITS.byAddress).fill(401), ...Array(30 - LIMITS.byAddress).fill(429)])
    // The (limit + 1)th attempt is the last one checked: it is the failure that passes the limit.
    expect(pbkdf2).toHaveBeenCalledTimes(LIMITS.byAddress + 1)
    expect(refusal!.headers.get('retry-after')).toBe('60')
    const body = (await refusal!.json()) as { errors: { code: string; message: string; detail: unknown }[] }
    expect(body.errors[0]).toEqual({
      code: 'TOOMANYREQUESTS',
      message: 'too many failed sign-ins from this address or for this user name: try again in 60 seconds',
      detail: { retryAfter: 60 },
    })
  })

  it('refuses even the right password from the throttled address, unchecked, and lets it in from another address', async () => {
    const user = uniqueUser()
    const e = await throttledEnv(user)
    const [guesser, owner] = [uniqueAddress(), uniqueAddress()]
    await awayFromWindowEdge()
    for (let i = 0; i <= LIMITS.byAddress; i++) await (await tokenGet(e, guesser, user, `wrong-${i}`)).body?.cancel()
    pbkdf2.mockClear()
    const fromGuesser = await tokenGet(e, guesser, user, PASSWORD)
    expect(fromGuesser.status).toBe(429)
    expect(await codeOf(fromGuesser)).toBe('TOOMANYREQUESTS')
    expect(pbkdf2).not.toHaveBeenCalled()
    const fromOwner = await tokenGet(e, owner, user, PASSWORD)
    expect(fromOwner.status).toBe(200)
    expect(pbkdf2).toHaveBeenCalledTimes(1)
  })

  it.each(WAYS)('throttles %s', async (_way, attempt) => {
    const user = uniqueUser()
    const e = await throttledEnv(user)
    const address = uniqueAddress()
    await awayFromWindowEdge()
    const statuses: number[] = []
    let last: Response | null = null
    for (let i = 0; i < LIMITS.byAddress + 3; i++) {
      last = await attempt(e, address, user, `wrong-${i}`)
      statuses.push(last.status)
      if (i < LIMITS.byAddress + 2) await last.body?.cancel()
    }
    expect(statuses).toEqual([...Array(LIMITS.byAddress).fill(401), 429, 429, 429])
    expect(last!.headers.get('retry-after')).toBe('60')
  })

  it('shows the web UI form again with 429, Retry-After and why', async () => {
    const user = uniqueUser()
    const e = await throttledEnv(user)
    const address = uniqueAddress()
    await awayFromWindowEdge()
    const signIn = WAYS[3]![1]
    for (let i = 0; i <= LIMITS.byAddress; i++) await (await signIn(e, address, user, `wrong-${i}`)).body?.cancel()
    const res = await signIn(e, address, user, PASSWORD)
    expect(res.status).toBe(429)
    expect(res.headers.get('retry-after')).toMatch(/^(59|60)$/)
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(await res.text()).toMatch(/Too many failed sign-ins from this address or for this user name: try again in (59|60) seconds\./)
  })

  it('holds a mark whatever Host, scheme or port the next attempts name: no password is checked through another origin', async () => {
    const user = uniqueUser()
    const e = await throttledEnv(user)
    const address = uniqueAddress()
    await awayFromWindowEdge()
    for (let i = 0; i <= LIMITS.byAddress; i++) await (await tokenGet(e, address, user, `wrong-${i}`)).body?.cancel()
    pbkdf2.mockClear()
    const elsewhere = ['http://other.registry.test', 'https://registry.test', 'http://registry.test:8080', 'https://registry.test:8443', 'http://REGISTRY.test.']
    for (const origin of elsewhere) {
      const res = await send(e, `${origin}/token`, { headers: { Authorization: basic(user, PASSWORD), 'CF-Connecting-IP': address } })
      expect(res.status).toBe(429)
      await res.body?.cancel()
    }
    expect(pbkdf2).not.toHaveBeenCalled()
  })

  it('throttles a user name guessed from many addresses, for every address, its owner\'s too', async () => {
    const user = uniqueUser()
    const e = await throttledEnv(user)
    await awayFromWindowEdge()
    const statuses: number[] = []
    for (let i = 0; i <= LIMITS.byUser; i++) {
      const res = await tokenGet(e, uniqueAddress(), user, `wrong-${i}`)
      statuses.push(res.status)
      await res.body?.cancel()
    }
    expect(statuses).toEqual([...Array(LIMITS.byUser).fill(401), 429])
    pbkdf2.mockClear()
    expect((await tokenGet(e, uniqueAddress(), user, PASSWORD)).status).toBe(429)
    expect(pbkdf2).not.toHaveBeenCalled()
  })

  it('limits a robot per address only: guessing robot:ci cannot lock the robot out', async () => {
    const e = await throttledEnv(uniqueUser())
    const [guesser, ci] = [uniqueAddress(), uniqueAddress()]
    await awayFromWindowEdge()
    const statuses: number[] = []
    for (let i = 0; i <= LIMITS.byAddress; i++) {
      const res = await tokenGet(e, guesser, 'robot:ci', `erbt_wrong${i}`)
      statuses.push(res.status)
      await res.body?.cancel()
    }
    expect(statuses).toEqual([...Array(LIMITS.byAddress).fill(401), 429])
    expect((await tokenGet(e, ci, 'robot:ci', ROBOT_TOKEN)).status).toBe(200)
  })

  it('caps a burst of parallel guesses at SIGNIN_CHECKS_BY_ADDRESS password checks', async () => {
    const user = uniqueUser()
    const e = await throttledEnv(user)
    const address = uniqueAddress()
    await awayFromWindowEdge()
    pbkdf2.mockClear()
    const burst = await Promise.all(Array.from({ length: LIMITS.checks + 20 }, (_, i) => tokenGet(e, address, user, `wrong-${i}`)))
    const statuses = burst.map((r) => r.status)
    await Promise.all(burst.map((r) => r.body?.cancel()))
    expect(pbkdf2.mock.calls.length).toBeLessThanOrEqual(LIMITS.checks)
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(20)
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true)
  })

  it('caps a burst of parallel guesses for one user name from many addresses at SIGNIN_FAILURES_BY_USER password checks', async () => {
    // All pass the marks before the first failure is counted: each address alone stays under its
    // own checks limit, so without a count before the hash every guess was checked, and a right
    // one among them let in.
    const user = uniqueUser()
    const e = await throttledEnv(user)
    const addresses = Array.from({ length: 10 }, uniqueAddress)
    await awayFromWindowEdge()
    pbkdf2.mockClear()
    const burst = await Promise.all(addresses.flatMap((a) => Array.from({ length: 20 }, (_, i) => tokenGet(e, a, user, `wrong-${a}-${i}`))))
    await Promise.all(burst.map((r) => r.body?.cancel()))
    expect(pbkdf2.mock.calls.length).toBeLessThanOrEqual(LIMITS.byUser)
    expect(burst.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(200 - LIMITS.byUser)
    expect(burst.every((r) => r.status === 401 || r.status === 429)).toBe(true)
    // The right password from yet another address: the name is throttled, unchecked.
    pbkdf2.mockClear()
    expect((await tokenGet(e, uniqueAddress(), user, PASSWORD)).status).toBe(429)
    expect(pbkdf2).not.toHaveBeenCalled()
  })

  it('counts a known user\'s right password checked (not cached) against its name, never a cached one', async () => {
    const user = uniqueUser()
    const e = await throttledEnv(user)
    await awayFromWindowEdge()
    // The first sign-in is checked (and counted), the next 100 come from the isolate's cache.
    for (let i = 0; i < 100; i++) expect((await tokenGet(e, uniqueAddress(), user, PASSWORD)).status).toBe(200)
    const statuses: number[] = []
    for (let i = 0; i < LIMITS.byUser; i++) {
      const res = await tokenGet(e, uniqueAddress(), user, `wrong-${i}`)
      statuses.push(res.status)
      await res.body?.cancel()
    }
    expect(statuses).toEqual([...Array(LIMITS.byUser - 1).fill(401), 429])
  })

  it('keys IPv6 clients by their /64, IPv4 as it is', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:DB8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(addressKey('::ffff:203.0.113.9')).toBe('203.0.113.9')
    expect(addressKey('203.0.113.9')).toBe('203.0.113.9')
    expect(addressKey(null)).toBe('unknown')
  })

  it('throttles one /64 as one client', async () => {
    const user = uniqueUser()
    const e = await throttledEnv(user)
    const prefix = `2001:db8:${(Date.now() & 0xffff).toString(16)}:${(n++ & 0xffff).toString(16)}`
    await awayFromWindowEdge()
    const statuses: number[] = []
    for (let i = 0; i <= LIMITS.byAddress; i++) {
      const res = await tokenGet(e, `${prefix}:${i.toString(16)}::${i + 1}`, user, `wrong-${i}`)
      statuses.push(res.status)
      await res.body?.cancel()
    }
    expect(statuses.at(-1)).toBe(429)
  })
})

describe('the anonymous pull limit (THROTTLE_ANONYMOUS_PULLS)', () => {
  let repo: string
  beforeAll(async () => {
    repo = fresh('public')
    await push(repo, 'v1', await ociImage(repo))
  })
  const pull = (e: Env, address: string, method = 'GET', headers: Record<string, string> = {}) =>
    send(e, `/v2/${repo}/manifests/v1`, { method, headers: { Accept: MT.ociManifest, 'CF-Connecting-IP': address, ...headers } })
  const PULLS = 100

  it('is off by default: anonymous pulls are not counted', async () => {
    const e = { ...open, ANONYMOUS_PULLS_BY_ADDRESS: shipped.SHIPPED_ANONYMOUS_PULLS_BY_ADDRESS }
    const address = uniqueAddress()
    await awayFromWindowEdge()
    for (let i = 0; i < PULLS + 5; i++) {
      const res = await pull(e, address)
      expect(res.status).toBe(200)
      await res.body?.cancel()
    }
  })

  it('on, answers an anonymous GET past the limit with 429 TOOMANYREQUESTS and Retry-After; HEADs do not count', async () => {
    const e = { ...open, THROTTLE_ANONYMOUS_PULLS: 'true', ANONYMOUS_PULLS_BY_ADDRESS: shipped.SHIPPED_ANONYMOUS_PULLS_BY_ADDRESS }
    const address = uniqueAddress()
    await awayFromWindowEdge()
    for (let i = 0; i < 20; i++) expect((await pull(e, address, 'HEAD')).status).toBe(200)
    const statuses: number[] = []
    let last: Response | null = null
    for (let i = 0; i <= PULLS; i++) {
      last = await pull(e, address)
      statuses.push(last.status)
      if (i < PULLS) await last.body?.cancel()
    }
    expect(statuses).toEqual([...Array(PULLS).fill(200), 429])
    expect(last!.headers.get('retry-after')).toBe('60')
    expect(await codeOf(last!)).toBe('TOOMANYREQUESTS')
    // Another address pulls on.
    expect((await pull(e, uniqueAddress())).status).toBe(200)
  })

  it('on, does not count signed-in pulls', async () => {
    const user = uniqueUser()
    const e = await throttledEnv(user, {
      THROTTLE_ANONYMOUS_PULLS: 'true',
      AUTH_RULES: JSON.stringify([{ repos: 'public/*', users: [user], actions: ['pull'], anonymous: ['pull'] }]),
    })
    const address = uniqueAddress()
    await awayFromWindowEdge()
    for (let i = 0; i < PULLS + 5; i++) {
      const res = await pull(e, address, 'GET', { Authorization: basic(user, PASSWORD) })
      expect(res.status).toBe(200)
      await res.body?.cancel()
    }
    const anonymous = await pull(e, address)
    expect(anonymous.status).toBe(200)
  })

  it('on without its binding, fails closed naming the setting', async () => {
    const e = { ...open, THROTTLE_ANONYMOUS_PULLS: 'true', ANONYMOUS_PULLS_BY_ADDRESS: undefined }
    const res = await pull(e, uniqueAddress())
    expect(res.status).toBe(500)
  })
})
