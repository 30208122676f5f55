/**
 * An issuer's signing keys (its JWKS), from the nearest of: isolate memory, the edge cache
 * (Cache API, shared by the isolates of a location, for JWKS_TTL_SECONDS), or the issuer
 * itself: `jwks_uri` from AUTH_OIDC, else from its discovery document (OpenID Connect
 * Discovery 1.0 §4; its `issuer` must be the configured one, §4.3).
 *
 * A token signed with a key we do not have (a rotation) asks for a fresh set, but at most
 * once per REFETCH_MS per issuer and isolate, and not while the set in the edge cache (which
 * records when it was fetched) is younger than that: a flood of tokens with made-up `kid`s
 * costs the issuer about one request a minute per location. A failed download is retried at
 * most every RETRY_MS per isolate.
 *
 * Cost: no storage; a Cache API match when an isolate first needs a set (then every
 * JWKS_TTL_SECONDS), a fetch (or two, with discovery) when the location has none.
 */
import type { JSONWebKeySet } from 'jose'
import { keys } from '../../storage/keys'
import { chunksOf, concat } from '../../storage/streams'
import { checkUrl, type Issuer } from './config'

export interface KeySet {
  jwks: JSONWebKeySet
  /** ms since the epoch. */
  fetchedAt: number
}

export const JWKS_TTL_SECONDS = 3600
export const REFETCH_MS = 60_000
const RETRY_MS = 10_000
const MAX_BYTES = 64 * 1024
const MAX_KEYS = 64
const TIMEOUT_MS = 5000

/** Why no key set could be had (logged, never shown to the caller). */
export class JwksError extends Error {}

/**
 * Key sets in isolate memory, per issuer (its URL and configured jwks_uri: `heldAs`), whatever
 * host a request named: public keys fetched without credentials, one set per issuer. Only the
 * edge cache's key (keys.cachedJwks) names the request's origin. Were memory keyed by it too,
 * a made-up token sent with a new Host header each time (any Host reaches `npm start`, and a
 * wildcard route) would make each download the set again and be held apart, without bound.
 */
const memory = new Map<string, KeySet>()
/** When this isolate last started a refetch for an unknown kid, and when a download last failed (per issuer). */
const refetchedAt = new Map<string, number>()
const failedAt = new Map<string, number>()

const heldAs = (issuer: Issuer): string => `${issuer.issuer}\n${issuer.jwksUri ?? ''}`

/** The issuer's key set as known here (memory, else edge cache, else fetched). */
export async function keySet(issuer: Issuer, origin: string, now = Date.now()): Promise<KeySet> {
  const known = memory.get(heldAs(issuer))
  if (known && now - known.fetchedAt < JWKS_TTL_SECONDS * 1000) return known
  const key = keys.cachedJwks(origin, issuer.issuer, issuer.jwksUri)
  return (await fromCache(issuer, key)) ?? download(issuer, key, now)
}

/**
 * A key set fetched after `stale` was (a token named a key `stale` lacks): fetched now unless
 * the newest set known, here or in the edge cache, is less than REFETCH_MS old, or this isolate
 * started a refetch less than REFETCH_MS ago. That stamp is set before the first await, so
 * concurrent requests never fetch twice; none waits for another's fetch (a promise shared across
 * requests may be cancelled with the request that made it).
 */
export async function refreshedKeySet(issuer: Issuer, origin: string, stale: KeySet, now = Date.now()): Promise<KeySet> {
  const key = keys.cachedJwks(origin, issuer.issuer, issuer.jwksUri)
  const held = heldAs(issuer)
  const newest = (...sets: (KeySet | null | undefined)[]) =>
    sets.reduce<KeySet>((a, b) => (b && b.fetchedAt > a.fetchedAt ? b : a), stale)
  const last = refetchedAt.get(held)
  if (now - stale.fetchedAt < REFETCH_MS || (last !== undefined && now - last < REFETCH_MS)) return newest(memory.get(held))
  refetchedAt.set(held, now)
  const known = newest(memory.get(held), await fromCache(issuer, key))
  if (now - known.fetchedAt < REFETCH_MS) return known
  return download(issuer, key, now)
}

async function fromCache(issuer: Issuer, key: string): Promise<KeySet | null> {
  const hit = await caches.default.match(key)                             // Cache API
  if (!hit) return null
  const fetchedAt = Number(hit.headers.get('X-Fetched-At'))
  const jwks = parseJwks(await hit.text())
  if (!jwks || !Number.isFinite(fetchedAt)) return null
  const set = { jwks, fetchedAt }
  const held = heldAs(issuer)
  if (fetchedAt > (memory.get(held)?.fetchedAt ?? -Infinity)) memory.set(held, set)
  return set
}

async function download(issuer: Issuer, key: string, now: number): Promise<KeySet> {
  const held = heldAs(issuer)
  const failed = failedAt.get(held)
  if (failed !== undefined && now - failed < RETRY_MS) throw new JwksError(`key set of ${issuer.alias}: last download failed under ${RETRY_MS / 1000} s ago`)
  try {
    const uri = issuer.jwksUri ?? (await discover(issuer))
    const jwks = parseJwks(await getText(uri))
    if (!jwks) throw new JwksError(`key set of ${issuer.alias}: ${uri} did not answer a JWKS`)
    const set = { jwks, fetchedAt: now }
    memory.set(held, set)
    failedAt.delete(held)
    const headers = { 'Content-Type': 'application/json', 'Cache-Control': `max-age=${JWKS_TTL_SECONDS}`, 'X-Fetched-At': String(now) }
    await caches.default.put(key, new Response(JSON.stringify(jwks), { headers }))   // Cache API
    return set
  } catch (err) {
    failedAt.set(held, now)
    throw err instanceof JwksError ? err : new JwksError(`key set of ${issuer.alias}: ${(err as Error).message}`)
  }
}

/** `jwks_uri` from `<issuer>/.well-known/openid-configuration`. */
async function discover(issuer: Issuer): Promise<string> {
  const url = `${issuer.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
  let doc: Record<string, unknown>
  try {
    doc = JSON.parse(await getText(url)) as Record<string, unknown>
  } catch (err) {
    throw err instanceof JwksError ? err : new JwksError(`discovery of ${issuer.alias}: not JSON`)
  }
  if (doc?.issuer !== issuer.issuer) throw new JwksError(`discovery of ${issuer.alias}: "issuer" is not ${issuer.issuer}`)
  try {
    return checkUrl(doc.jwks_uri, 'jwks_uri')
  } catch {
    throw new JwksError(`discovery of ${issuer.alias}: "jwks_uri" is not an https URL`)
  }
}

/** A small JSON body (at most MAX_BYTES), or JwksError. */
async function getText(url: string): Promise<string> {
  let res: Response
  try {
    res = await fetch(url, { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(TIMEOUT_MS) })
  } catch (err) {
    throw new JwksError(`GET ${url}: ${(err as Error).message}`)
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel()
    throw new JwksError(`GET ${url}: ${res.status}`)
  }
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of chunksOf(res.body)) {
    size += chunk.byteLength
    if (size > MAX_BYTES) throw new JwksError(`GET ${url}: larger than ${MAX_BYTES} bytes`)
    chunks.push(chunk)
  }
  return new TextDecoder().decode(concat(chunks))
}

function parseJwks(text: string): JSONWebKeySet | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  const list = (value as { keys?: unknown })?.keys
  if (!Array.isArray(list) || list.length > MAX_KEYS || !list.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k))) return null
  return { keys: list }
}
