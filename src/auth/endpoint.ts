/**
 * /token: the registry is its own token server (distribution docs/spec/auth/token.md
 * and oauth.md).
 *
 * - `GET /token?service=…&scope=…&scope=…` with Basic credentials, or none for an anonymous
 *   token; docker's `account` and `client_id` are accepted and ignored, `offline_token=true`
 *   adds a refresh token for a signed-in caller.
 * - `POST /token`, a form: `grant_type=password` (username, password) or
 *   `grant_type=refresh_token` (refresh_token), with service, scope, client_id, and
 *   `access_type=offline` for a refresh token.
 *
 * The reply is `{token, access_token, expires_in, issued_at, scope[, refresh_token]}` with only
 * the granted actions: asking for more than the rules allow is not an error, it just is not
 * granted. A CI job signs in as user `oidc` with its identity token as password (oidc/);
 * it never gets a refresh token. Malformed scopes, more than MAX_SCOPES of them or another service → 400
 * TOKEN_REQUEST_INVALID (NAME_INVALID for a bad repository name); wrong credentials → 401; past the
 * sign-in limits (throttle.ts) → 429 TOOMANYREQUESTS with Retry-After, no password checked.
 *
 * Cost: CPU only (one HMAC per token), plus the credential check (credentials.ts).
 */
import type { IRequest } from 'itty-router'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { localScopes } from '../proxy/layer'
import { chunksOf, concat } from '../storage/streams'
import { grantedTo } from './access'
import { authConfig, type AuthConfig } from './config'
import { basicCredentials, stillValid, verifyCredentials, type Principal } from './credentials'
import { formatScope, parseScopes, type Scope } from './scopes'
import { clientOf } from './throttle'
import { issueAccessToken, issueRefreshToken, verifyRefreshToken } from './tokens'

const MAX_FORM_BYTES = 16 * 1024

/** GET /token */
export async function get(req: IRequest, env: Env): Promise<Response> {
  const config = configured(env)
  const url = new URL(req.url)
  const service = serviceOf(config, url, url.searchParams.get('service'))
  const scopes = localScopes(env, url, parseScopes(url.searchParams.getAll('scope')))    // proxied names → local
  let principal: Principal | null = null
  const header = req.headers.get('authorization')
  if (header !== null) {
    const credentials = basicCredentials(header)
    principal = credentials && (await verifyCredentials(env, config, credentials.user, credentials.password, clientOf(req)))
    if (!principal) throw unauthorized(service)
  }
  return issue(config, service, principal, scopes, url.searchParams.get('offline_token') === 'true')
}

/** POST /token */
export async function post(req: IRequest, env: Env): Promise<Response> {
  const config = configured(env)
  const form = await readForm(req)
  const service = serviceOf(config, new URL(req.url), form.get('service'))
  const scopes = localScopes(env, new URL(req.url), parseScopes(form.getAll('scope')))   // proxied names → local
  const grant = form.get('grant_type')
  if (grant === 'password') {
    const principal = await verifyCredentials(env, config, form.get('username') ?? '', form.get('password') ?? '', clientOf(req))
    if (!principal) throw unauthorized(service)
    return issue(config, service, principal, scopes, form.get('access_type') === 'offline')
  }
  if (grant === 'refresh_token') {
    const claims = await verifyRefreshToken(await config.key, service, form.get('refresh_token') ?? '')
    if (!claims || !(await stillValid(env, config, claims.sub, claims.proof))) throw unauthorized(service)
    return issue(config, service, claims, scopes, false)
  }
  throw new RegistryError('TOKEN_REQUEST_INVALID', 'grant_type must be "password" or "refresh_token"')
}

/** Signs what the rules grant `principal` (null: anonymous) of `scopes`. */
async function issue(
  config: AuthConfig, service: string, principal: Principal | null, scopes: Scope[], offline: boolean,
): Promise<Response> {
  const sub = principal?.sub ?? ''
  const access = scopes
    .map((s) => ({ ...s, actions: grantedTo(config.rules, principal, s) }))
    .filter((s) => s.actions.length > 0)
  const key = await config.key
  const { token, issuedAt, expiresIn } = await issueAccessToken(key, service, sub, access)
  const body: Record<string, unknown> = {
    token,
    access_token: token,
    expires_in: expiresIn,
    issued_at: new Date(issuedAt * 1000).toISOString(),
    scope: access.map(formatScope).join(' '),
  }
  // OIDC callers get none: their identity tokens are short-lived by design, and so is their access.
  if (offline && principal && !principal.oidc) body.refresh_token = (await issueRefreshToken(key, service, sub, principal.proof)).token
  return Response.json(body, { headers: { 'Cache-Control': 'no-store' } })
}

/** The auth config; /token does not exist on an open registry. */
function configured(env: Env): AuthConfig {
  const config = authConfig(env)
  if (!config) throw new RegistryError('NOT_FOUND')
  return config
}

/** Our service name; a request naming another one gets a token nobody here would accept, so 400. */
function serviceOf(config: AuthConfig, url: URL, asked: string | null): string {
  const service = config.service ?? url.host
  if (asked && asked !== service) throw new RegistryError('TOKEN_REQUEST_INVALID', `unknown service "${asked.slice(0, 100)}"`)
  return service
}

const unauthorized = (service: string) =>
  new RegistryError('UNAUTHORIZED', null, { 'WWW-Authenticate': `Basic realm="${service}"` })

/** A url-encoded form body of at most MAX_FORM_BYTES. */
async function readForm(req: IRequest): Promise<URLSearchParams> {
  const invalid = (detail: string) => new RegistryError('TOKEN_REQUEST_INVALID', detail)
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers.get('content-type') ?? '')) {
    throw invalid('expected an application/x-www-form-urlencoded body')
  }
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of req.body ? chunksOf(req.body) : []) {
    size += chunk.byteLength
    if (size > MAX_FORM_BYTES) throw invalid(`form larger than ${MAX_FORM_BYTES} bytes`)
    chunks.push(chunk)
  }
  return new URLSearchParams(new TextDecoder().decode(concat(chunks)))
}
