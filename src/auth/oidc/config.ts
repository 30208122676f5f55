/**
 * AUTH_OIDC: the OIDC issuers whose identity tokens sign CI jobs in (user `oidc`, the token
 * as password), e.g.
 *
 *   [{"alias": "github", "issuer": "https://token.actions.githubusercontent.com",
 *     "audience": "https://registry.example.com"},
 *    {"alias": "gitlab", "issuer": "https://gitlab.com", "audience": "registry.example.com",
 *     "jwks_uri": "https://gitlab.com/oauth/discovery/keys"}]
 *
 * - `alias`: the name rules use (`"oidc": {"issuer": "github", …}`) and identities carry
 *   (`oidc:<alias>:<sub>`).
 * - `issuer`: the exact `iss` of its tokens. https, except on a loopback host (local tests;
 *   a deployed worker cannot reach one anyway).
 * - `audience`: required; a token must name it in `aud`. Anyone can mint a GitHub Actions
 *   token, so a token minted for another service must never pass here.
 * - `jwks_uri`: where its signing keys are; default: OIDC discovery
 *   (`<issuer>/.well-known/openid-configuration`, OpenID Connect Discovery 1.0 §4).
 */

export interface Issuer {
  alias: string
  issuer: string
  audience: string
  /** null: found by discovery. */
  jwksUri: string | null
}

/** By alias, and by `iss` (one issuer, one alias: a token's `iss` names exactly one entry). */
export interface Issuers {
  byAlias: Map<string, Issuer>
  byIssuer: Map<string, Issuer>
}

const ALIAS = /^[a-z0-9][a-z0-9_-]{0,31}$/
const FIELDS = new Set(['alias', 'issuer', 'audience', 'jwks_uri'])
const MAX_TEXT = 512

/** Parses and checks AUTH_OIDC; throws an Error naming the first problem. */
export function parseIssuers(json: string | undefined): Issuers {
  let input: unknown
  try {
    input = JSON.parse(json?.trim() || '[]')
  } catch {
    throw new Error('AUTH_OIDC is not valid JSON')
  }
  if (!Array.isArray(input)) throw new Error('AUTH_OIDC must be a JSON array of issuers')
  const issuers: Issuers = { byAlias: new Map(), byIssuer: new Map() }
  input.forEach((entry: unknown, i) => {
    const where = `AUTH_OIDC[${i}]`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new Error(`${where} must be an object`)
    const e = entry as Record<string, unknown>
    for (const k of Object.keys(e)) if (!FIELDS.has(k)) throw new Error(`${where}: unknown field "${k.slice(0, 64)}"`)
    if (typeof e.alias !== 'string' || !ALIAS.test(e.alias)) throw new Error(`${where}.alias must be 1-32 of a-z 0-9 _ - (starting with a letter or digit)`)
    const alias = e.alias
    const issuer = checkUrl(e.issuer, `${where}.issuer`)
    if (typeof e.audience !== 'string' || e.audience.trim() === '' || e.audience.length > MAX_TEXT) {
      throw new Error(`${where}.audience is required: the "aud" its tokens must carry for this registry`)
    }
    const jwksUri = e.jwks_uri === undefined ? null : checkUrl(e.jwks_uri, `${where}.jwks_uri`)
    if (issuers.byAlias.has(alias)) throw new Error(`${where}: alias "${alias}" is used twice`)
    if (issuers.byIssuer.has(issuer)) throw new Error(`${where}: issuer ${issuer.slice(0, 128)} is listed twice`)
    const parsed = { alias, issuer, audience: e.audience, jwksUri }
    issuers.byAlias.set(alias, parsed)
    issuers.byIssuer.set(issuer, parsed)
  })
  return issuers
}

/** An https URL (http only on a loopback host), kept exactly as written: `iss` is compared as a string. */
export function checkUrl(value: unknown, where: string): string {
  const problem = `${where} must be an https URL (http only for 127.0.0.1, ::1 or localhost)`
  if (typeof value !== 'string' || value.length > MAX_TEXT) throw new Error(problem)
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    throw new Error(problem)
  }
  const ok = parsed.protocol === 'https:' || (parsed.protocol === 'http:' && isLoopback(parsed.hostname))
  if (!ok || parsed.username || parsed.password || parsed.hash || parsed.search) throw new Error(problem)
  return value
}

export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
