// @ts-check
/**
 * One repository on one registry, over `fetch`: every request carries the credentials the
 * registry asked for. Runtime-agnostic (fetch, URL, web streams): the same code runs in Node
 * and, in the tests, inside workerd against the worker itself.
 *
 * Auth (distribution "Token Authentication Specification"): a 401 with
 * `WWW-Authenticate: Bearer realm=…,service=…` sends us to the realm for a token covering
 * every scope this run needs (so one token serves the whole push); a `Basic` challenge gets the
 * credentials themselves. A 401 later on (tokens expire in minutes, pushes can take longer)
 * fetches a new token and sends the request again: request bodies are factories, never streams
 * already half read.
 */
import { EXIT, ToolError } from './errors.mjs'
import { apiHost, schemeFor } from './reference.mjs'

/**
 * @typedef {{ username: string, password: string } | { identityToken: string }} Credentials
 * `identityToken`: an OAuth2 refresh token (what `docker login` keeps when the registry gives one).
 */

/**
 * @typedef {object} RegistryOptions
 * @property {string} host registry host (with port)
 * @property {string} repository
 * @property {typeof fetch} [fetch]
 * @property {boolean} [plainHttp] HTTP even for a host that is not loopback
 * @property {Credentials | null} [credentials]
 * @property {string[]} [scopes] token scopes beyond `repository:<repository>:<actions>`
 * @property {string} [actions] actions on the repository: `pull,push` (default) or `pull`
 */

/**
 * @typedef {object} RequestOptions
 * @property {Record<string, string>} [headers]
 * @property {() => Promise<BodyInit | null> | BodyInit | null} [body] called once per attempt
 */

/** `key="value"` pairs of a challenge; values may hold commas (scopes do). */
export function parseChallenge(/** @type {string} */ header) {
  const scheme = header.trim().split(/\s+/, 1)[0]?.toLowerCase() ?? ''
  /** @type {Record<string, string>} */
  const params = {}
  for (const m of header.matchAll(/([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    params[(m[1] ?? '').toLowerCase()] = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1')
  }
  return { scheme, params }
}

/** The OCI error of a reply, as one line: `413 SIZE_INVALID: message (detail)`. */
export async function describeError(/** @type {Response} */ res) {
  const text = await res.text().catch(() => '')
  /** @type {{ code?: string, message?: string, detail?: unknown } | undefined} */
  let first
  try {
    first = JSON.parse(text)?.errors?.[0]
  } catch {}
  if (!first) return { code: undefined, line: `${res.status} ${res.statusText || ''}${text ? `: ${text.slice(0, 200)}` : ''}`.trim() }
  const detail = first.detail === undefined || first.detail === null ? '' : ` (${typeof first.detail === 'string' ? first.detail : JSON.stringify(first.detail)})`
  return { code: first.code, line: `${res.status} ${first.code ?? ''}: ${first.message ?? ''}${detail}` }
}

/** Exit status for a refused reply. */
export const exitFor = (/** @type {number} */ status) =>
  status === 401 || status === 403 ? EXIT.AUTH : status >= 500 || status === 408 || status === 429 ? EXIT.UNAVAILABLE : EXIT.REFUSED

/** A ToolError from an unexpected reply, read and closed. */
export async function replyError(/** @type {string} */ what, /** @type {Response} */ res) {
  const { code, line } = await describeError(res)
  return new ToolError(`${what}: ${line}`, exitFor(res.status), { status: res.status, code })
}

export class Registry {
  /** @param {RegistryOptions} options */
  constructor(options) {
    this.host = options.host
    this.repository = options.repository
    this.base = `${schemeFor(options.host, options.plainHttp)}://${apiHost(options.host)}`
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis)
    this.credentials = options.credentials ?? null
    this.scopes = [`repository:${options.repository}:${options.actions ?? 'pull,push'}`, ...(options.scopes ?? [])]
    /** @type {string | null} the Authorization header to send */
    this.authorization = null
    /** @type {Promise<void> | null} a token request in flight, shared by parallel requests */
    this.renewing = null
  }

  /** A path under /v2/<repository>/ or a Location the registry gave (relative or absolute). */
  url(/** @type {string} */ pathOrLocation) {
    return new URL(pathOrLocation.startsWith('/') || /^https?:/.test(pathOrLocation)
      ? pathOrLocation
      : `/v2/${this.repository}/${pathOrLocation}`, this.base).toString()
  }

  /**
   * One request, with credentials; on a 401, credentials are (re)acquired and the request sent
   * once more. Network errors propagate (callers decide what is worth a retry).
   * @param {string} method
   * @param {string} pathOrLocation
   * @param {RequestOptions} [options]
   * @returns {Promise<Response>}
   */
  async request(method, pathOrLocation, options = {}) {
    const url = this.url(pathOrLocation)
    const send = async () => {
      const body = options.body ? await options.body() : null
      /** @type {Record<string, string>} */
      const headers = { ...options.headers }
      if (this.authorization) headers.Authorization = this.authorization
      /** @type {RequestInit & { duplex?: 'half' }} */
      const init = { method, headers, body, redirect: 'follow' }
      // Node's fetch sends a stream body only when told it is half duplex.
      if (body instanceof ReadableStream) init.duplex = 'half'
      return this.fetch(url, init)
    }
    const before = this.authorization
    let res = await send()
    if (res.status !== 401) return res
    const challenge = res.headers.get('www-authenticate')
    await res.body?.cancel()
    if (!challenge) throw new ToolError(`${method} ${url}: 401 without a challenge`, EXIT.AUTH, { status: 401 })
    // Parallel requests that met the same expiry share one token request.
    if (this.authorization === before) {
      this.renewing ??= this.authenticate(challenge).finally(() => { this.renewing = null })
      await this.renewing
    } else if (this.renewing) await this.renewing
    res = await send()
    if (res.status === 401) throw await replyError(`${method} ${url}: credentials refused`, res)
    return res
  }

  /**
   * GET /v2/: learns how the registry wants credentials and gets a token for every scope of the
   * run before any request with a body is sent.
   */
  async ping() {
    const res = await this.request('GET', '/v2/')
    await res.body?.cancel()
    if (!res.ok) throw await replyError(`GET ${this.base}/v2/`, res)
  }

  /** Answers a challenge: Basic credentials, or a Bearer token from the realm. */
  async authenticate(/** @type {string} */ header) {
    const { scheme, params } = parseChallenge(header)
    const creds = this.credentials
    if (scheme === 'basic') {
      if (!creds || !('username' in creds)) throw new ToolError(`${this.host} asks for a user name and password: none found (docker login, or --creds)`, EXIT.AUTH, { status: 401 })
      this.authorization = `Basic ${btoa(`${creds.username}:${creds.password}`)}`
      return
    }
    if (scheme !== 'bearer' || !params.realm) throw new ToolError(`${this.host}: unsupported challenge "${header.slice(0, 100)}"`, EXIT.AUTH, { status: 401 })
    const scopes = [...new Set([...(params.scope ? params.scope.split(' ') : []), ...this.scopes])]
    const realm = new URL(params.realm, this.base)
    /** @type {Response} */
    let res
    if (creds && 'identityToken' in creds) {
      // OAuth2 refresh-token grant (as docker does with a stored identity token).
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'edge-registry', scope: scopes.join(' ') })
      if (params.service) form.set('service', params.service)
      res = await this.fetch(realm.toString(), { method: 'POST', body: form, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })
    } else {
      if (params.service) realm.searchParams.set('service', params.service)
      for (const s of scopes) realm.searchParams.append('scope', s)
      /** @type {Record<string, string>} */
      const headers = {}
      if (creds) headers.Authorization = `Basic ${btoa(`${creds.username}:${creds.password}`)}`
      res = await this.fetch(realm.toString(), { headers })
    }
    if (!res.ok) throw await replyError(`token from ${realm.origin}${realm.pathname}`, res)
    const json = /** @type {{ token?: string, access_token?: string }} */ (await res.json())
    const token = json.token ?? json.access_token
    if (!token) throw new ToolError(`token from ${realm.origin}${realm.pathname}: no token in the reply`, EXIT.AUTH)
    this.authorization = `Bearer ${token}`
  }
}
