/**
 * The client of an upstream registry: one request at a time, authenticated the way the
 * upstream asks (distribution docs/spec/auth/token.md):
 * - anonymous, until the upstream answers 401;
 * - `WWW-Authenticate: Basic` → the configured `user:password` as Basic;
 * - `WWW-Authenticate: Bearer realm=…,service=…` → a token from the realm for the request's
 *   scope (with the credentials as Basic, or anonymously), then the request again.
 * A bare token in UPSTREAM_CREDENTIALS (no `:`) is sent as `Bearer` as it is.
 *
 * Credentials, and tokens earned with them, go to the upstream's own origin and to the realm
 * its own challenge names, nowhere else. Redirects (blob bytes on a CDN or S3) are followed by
 * hand, without our Authorization: pre-signed URLs refuse a second credential, and a redirect
 * target asking for credentials gets none (its challenge is never taken: that would send our
 * credentials to whatever realm it names, and its tokens to the upstream).
 * Every request has a deadline for its answer's headers (the upstream's `timeoutSeconds`).
 */
import { RegistryError } from '../errors'
import { chunksOf, concat, toHex } from '../storage/streams'
import type { Upstream } from './config'

/** A token is used until this long before it expires (clock skew, a slow request). */
const EXPIRY_MARGIN_MS = 10_000
/** Token lifetime when the token server does not say (the token spec's default). */
const DEFAULT_TOKEN_SECONDS = 60
const MAX_REDIRECTS = 5
const MAX_TOKEN_BYTES = 64 * 1024
/** Tokens kept per isolate (one per entry and repository pulled): the oldest go first. */
const MAX_TOKENS = 1000

interface Challenge {
  scheme: 'basic' | 'bearer'
  realm?: string
  service?: string
}

/**
 * Per isolate, both keyed by the entry's identity (`upstreamIdentity`: the entry and its
 * credentials), never by the upstream's URL alone: two entries on one upstream, one with
 * credentials and one without, must never share a token.
 * - challenges: identity → what the upstream's own (unredirected) 401 asked for last;
 * - tokens: identity + realm + service + scope → the Authorization it earned, until it expires.
 */
const challenges = new Map<string, Challenge>()
const tokens = new Map<string, { header: string; expires: number }>()
/** Per parsed entry (settings are parsed once per isolate): its identity. */
const identities = new WeakMap<Upstream, Promise<string>>()

/** Test hook: forget every cached challenge and token (each test starts from a cold isolate). */
export function forgetUpstreamAuth(): void {
  challenges.clear()
  tokens.clear()
}

/**
 * What anything obtained from the upstream for entry `u` is cached under, outside the entry's
 * own repositories (tokens, edge-cached listings, a tag record's `via`): the entry (namespace
 * and url) and its credentials, as 16 hex digits of a SHA-256 (never the credentials themselves).
 * Changing an entry's credentials changes it. CPU only (one digest per entry and isolate).
 */
export function upstreamIdentity(u: Upstream): Promise<string> {
  let id = identities.get(u)
  if (!id) {
    const text = `edge-registry upstream\n${u.namespace}\n${u.url}\n${u.credentials ?? ''}`
    id = crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)).then((d) => toHex(new Uint8Array(d)).slice(0, 16))
    identities.set(u, id)
  }
  return id
}

/** Why the upstream could not answer: it did not (network, timeout) or it said so (status). */
export class UpstreamFailure extends Error {
  constructor(
    readonly status: number | null,
    readonly reason: string,
    readonly retryAfter: string | null = null,
  ) {
    super(reason)
  }
}

/**
 * `method` on `/v2/<remote>/<path>` at the upstream, authenticated; the response, whatever its
 * status (the caller decides what a 404 means). Throws UpstreamFailure when nothing came back
 * in time or the upstream refused every credential we have.
 */
export async function upstreamFetch(u: Upstream, method: 'GET' | 'HEAD', remote: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
  const url = `${u.url}/v2/${remote}/${path}`
  const scope = `repository:${remote}:pull`
  const id = await upstreamIdentity(u)
  let auth = await authorization(u, id, scope)
  for (let attempt = 0; ; attempt++) {
    const { res, redirected } = await send(u, method, url, { ...headers, ...(auth ? { Authorization: auth.header } : {}) })
    if (res.status !== 401) return res
    await res.body?.cancel()
    if (redirected) throw new UpstreamFailure(401, 'a server the upstream redirected to asked for credentials (they go to the upstream only)')
    if (attempt === 1) throw new UpstreamFailure(401, 'the upstream refused our credentials')
    const challenge = parseChallenge(res.headers.get('www-authenticate'))
    if (!challenge) throw new UpstreamFailure(401, 'the upstream asked for credentials without a usable challenge')
    challenges.set(id, challenge)
    if (auth?.tokenKey) tokens.delete(auth.tokenKey)
    auth = await authorization(u, id, scope)
    if (!auth) throw new UpstreamFailure(401, 'the upstream needs credentials (UPSTREAM_CREDENTIALS)')
  }
}

/**
 * Sends one request, following redirects without credentials; a deadline on each answer.
 * `redirected`: the answer is not the upstream's own (it came from where a redirect led).
 */
async function send(u: Upstream, method: string, url: string, headers: Record<string, string>): Promise<{ res: Response; redirected: boolean }> {
  let target = url
  let h = headers
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    // The deadline covers the answer's headers only: a blob's body may stream for minutes.
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), u.timeoutSeconds * 1000)
    let res: Response
    try {
      res = await fetch(target, { method, headers: h, redirect: 'manual', signal: deadline.signal })
    } catch {
      throw new UpstreamFailure(null, deadline.signal.aborted ? `no answer from the upstream within ${u.timeoutSeconds} s` : 'the upstream cannot be reached')
    } finally {
      clearTimeout(timer)
    }
    const location = res.headers.get('location')
    if (res.status < 300 || res.status >= 400 || res.status === 304 || !location) return { res, redirected: hop > 0 }
    await res.body?.cancel()
    target = new URL(location, target).toString()
    const { Authorization: _dropped, ...rest } = h
    h = rest
  }
  throw new UpstreamFailure(null, 'the upstream redirected too many times')
}

/**
 * The Authorization for `scope`, from the entry's cached challenge (fetching a token if needed),
 * or null; `tokenKey` names a cached token (dropped when the upstream refuses it).
 */
async function authorization(u: Upstream, id: string, scope: string): Promise<{ header: string; tokenKey?: string } | null> {
  const creds = u.credentials
  const bare = creds !== null && !creds.includes(':')
  if (bare) return { header: `Bearer ${creds}` }
  const challenge = challenges.get(id)
  if (!challenge) return null
  if (challenge.scheme === 'basic') return creds ? { header: `Basic ${btoa(creds)}` } : null
  const tokenKey = `${id} ${challenge.realm ?? ''} ${challenge.service ?? ''} ${scope}`
  const cached = tokens.get(tokenKey)
  if (cached && cached.expires > Date.now()) return { header: cached.header, tokenKey }
  const token = await fetchToken(u, challenge, scope)
  tokens.delete(tokenKey)
  tokens.set(tokenKey, token)
  // Maps iterate in insertion order: the first key is the oldest.
  if (tokens.size > MAX_TOKENS) tokens.delete(tokens.keys().next().value!)
  return { header: token.header, tokenKey }
}

/** GET <realm>?service=…&scope=… with Basic credentials (or none). */
async function fetchToken(u: Upstream, c: Challenge, scope: string): Promise<{ header: string; expires: number }> {
  if (!c.realm) throw new UpstreamFailure(401, 'the upstream\'s Bearer challenge has no realm')
  let realm: URL
  try {
    realm = new URL(c.realm)
  } catch {
    throw new UpstreamFailure(401, 'the upstream\'s token realm is not a URL')
  }
  if (c.service) realm.searchParams.set('service', c.service)
  realm.searchParams.set('scope', scope)
  const headers: Record<string, string> = u.credentials ? { Authorization: `Basic ${btoa(u.credentials)}` } : {}
  const { res } = await send(u, 'GET', realm.toString(), headers)
  if (res.status === 429) throw new UpstreamFailure(429, 'the upstream\'s token server is rate limiting', res.headers.get('retry-after'))
  if (res.status >= 500) throw new UpstreamFailure(res.status, `the upstream's token server answered ${res.status}`, res.headers.get('retry-after'))
  if (!res.ok) {
    await res.body?.cancel()
    throw new UpstreamFailure(401, `the upstream's token server refused us (${res.status})`)
  }
  let body: { token?: unknown; access_token?: unknown; expires_in?: unknown }
  try {
    const bytes = await bodyAtMost(res, MAX_TOKEN_BYTES)
    if (!bytes) throw new Error('too large')
    body = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    throw new UpstreamFailure(502, 'the upstream\'s token server answered something that is not a token')
  }
  const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : null
  if (!token) throw new UpstreamFailure(502, 'the upstream\'s token server answered without a token')
  const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS
  return { header: `Bearer ${token}`, expires: Date.now() + seconds * 1000 - EXPIRY_MARGIN_MS }
}

/**
 * The body of an upstream's answer (or its token server's), at most `max` bytes whatever its
 * Content-Length says or leaves out; null past it, the rest never read: an upstream (or a man in
 * the middle of an http:// one) is not trusted with the isolate's memory. Throws when the body is
 * cut off. Memory: at most `max` bytes and one chunk.
 */
export async function bodyAtMost(res: Response, max: number): Promise<Uint8Array | null> {
  if (!res.body) return new Uint8Array(0)
  if (Number(res.headers.get('content-length') ?? 0) > max) {
    await res.body.cancel()
    return null
  }
  const parts: Uint8Array[] = []
  let size = 0
  for await (const chunk of chunksOf(res.body)) {
    size += chunk.byteLength
    if (size > max) break
    parts.push(chunk)
  }
  if (size <= max) return concat(parts)
  await res.body.cancel().catch(() => {})
  return null
}

/** `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"` (RFC 7235 auth-params). */
export function parseChallenge(header: string | null): Challenge | null {
  if (!header) return null
  const m = /^\s*(basic|bearer)\b\s*(.*)$/i.exec(header)
  if (!m) return null
  const params: Record<string, string> = {}
  for (const p of m[2]!.matchAll(/([a-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/gi)) {
    params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1')
  }
  return { scheme: m[1]!.toLowerCase() as Challenge['scheme'], realm: params.realm, service: params.service }
}

/**
 * The OCI error a client gets when the upstream failed and nothing is cached: the upstream's
 * status and Retry-After passed on (a 401/403 of the upstream is ours to fix: 502).
 */
export function failureError(f: UpstreamFailure): RegistryError {
  const retry: Record<string, string> = f.retryAfter ? { 'Retry-After': f.retryAfter } : {}
  const detail = { upstream: f.reason }
  if (f.status === 429) return new RegistryError('TOOMANYREQUESTS', detail, retry)
  if (f.status === null) return new RegistryError('UPSTREAM_UNAVAILABLE', detail, {}, { status: f.reason.startsWith('no answer') ? 504 : 502 })
  if (f.status >= 500 && f.status <= 599) return new RegistryError('UPSTREAM_UNAVAILABLE', detail, retry, { status: f.status })
  return new RegistryError('UPSTREAM_UNAVAILABLE', detail, retry, { status: 502 })
}

/** A non-2xx, non-404 upstream answer as a failure (its body dropped). */
export async function failureOf(res: Response): Promise<UpstreamFailure> {
  await res.body?.cancel()
  return new UpstreamFailure(res.status, `the upstream answered ${res.status}`, res.headers.get('retry-after'))
}

/** The RFC 7234 warning on a reply served from the cache because the upstream could not be asked. */
export const staleWarning = (f: UpstreamFailure): string => `110 - "Response is Stale: ${f.reason.replace(/["\\]/g, '')}"`
