/**
 * What `npm start`'s front (scripts/start.mjs) forwards of a request's headers, and which Host
 * headers it refuses. Apart from start.mjs so it can be tested without starting wrangler.
 */

// Hop-by-hop headers (RFC 9110 7.6.1) concern one connection and are not forwarded; nor is
// Expect, which the front's own server answers (100 Continue).
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect'])

/**
 * The headers to forward (a raw [name, value, …] list): the client's, without hop-by-hop ones
 * and without any `CF-…` header (Cloudflare's edge sets those, never the client: a client's
 * `CF-Ray` would become the request id the worker logs and reports in events), and with the two
 * the front vouches for set by the front alone, whatever the client sent:
 * - `CF-Connecting-IP`: the socket's peer address (as Cloudflare sets it to the client's). The
 *   worker decides who is local by it (src/auth/admin.ts); a client-sent one would otherwise
 *   reach the worker as it is (wrangler dev keeps a CF-Connecting-IP it finds), and one left
 *   unset would be filled in by wrangler with the front's own loopback address.
 * - `X-Forwarded-Proto: https` on TLS connections.
 * @param {string[]} rawHeaders
 * @param {{ remoteAddress: string | undefined, encrypted: boolean }} socket
 * @returns {string[]}
 */
export function forwardedHeaders(rawHeaders, { remoteAddress, encrypted }) {
  const out = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = /** @type {string} */ (rawHeaders[i])
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower) || lower === 'x-forwarded-proto' || lower.startsWith('cf-')) continue
    out.push(name, /** @type {string} */ (rawHeaders[i + 1]))
  }
  out.push('CF-Connecting-IP', clientAddress(remoteAddress))
  if (encrypted) out.push('X-Forwarded-Proto', 'https')
  return out
}

/**
 * `::ffff:192.0.2.2` (an IPv4 peer of a dual-stack socket) as `192.0.2.2`; other addresses as they are.
 * @param {string | undefined} address
 */
export const clientAddress = (address) => (address ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')

/** host, IPv4 or [IPv6], then an optional :port (RFC 9110 7.2, RFC 3986 3.2.2). */
const HOST = /^(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?\.?)(?::\d{1,5})?$/i

/**
 * Why a request's Host header is unusable, or null when it is fine. RFC 9112 3.2: a request
 * without one, with more than one, or with an invalid one gets 400 from the server. wrangler dev
 * cannot build a URL from such a Host (`localhost:8787.`, `a b`) and answered 500 before the worker ran.
 * @param {string[]} rawHeaders
 * @returns {string | null}
 */
export function badHost(rawHeaders) {
  const hosts = []
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]?.toLowerCase() === 'host') hosts.push(/** @type {string} */ (rawHeaders[i + 1]))
  if (hosts.length !== 1) return hosts.length ? 'more than one Host header' : 'no Host header'
  const host = /** @type {string} */ (hosts[0]).trim()
  if (!HOST.test(host)) return 'the Host header is not a valid host[:port]'
  try {
    new URL(`http://${host}/`)
  } catch {
    return 'the Host header is not a valid host[:port]'
  }
  return null
}

/**
 * The request in origin form (RFC 9112 3.2.1): `{path, rawHeaders}`. A target that is a path
 * stays as it is. An absolute-form target (`http://host:port/path`), which a server must accept
 * (3.2.2), becomes its path (`/` when it has none), and its authority replaces the Host header,
 * which the server then ignores (3.2.2), so badHost checks what the worker will see. Any other
 * form (`*`, an authority, a relative path) is null: 400 (wrangler dev answered a 500 of its own).
 * @param {string} target
 * @param {string[]} rawHeaders
 * @returns {{ path: string, rawHeaders: string[] } | null}
 */
export function originForm(target, rawHeaders) {
  if (target.startsWith('/')) return { path: target, rawHeaders }
  const m = /^https?:\/\/([^/?#]*)([^#]*)$/i.exec(target)
  if (!m) return null
  const rest = /** @type {string} */ (m[2])
  const headers = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() !== 'host') headers.push(/** @type {string} */ (rawHeaders[i]), /** @type {string} */ (rawHeaders[i + 1]))
  }
  headers.push('Host', /** @type {string} */ (m[1]))
  return { path: rest.startsWith('/') ? rest : `/${rest}`, rawHeaders: headers }
}
