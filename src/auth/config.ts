/**
 * The auth settings, parsed once per isolate (and again only when they change):
 * AUTH_MODE, AUTH_SERVICE, AUTH_RULES and AUTH_OIDC from `[vars]`, AUTH_USERS and
 * AUTH_TOKEN_SECRET from secrets. A broken setting fails closed: every request
 * gets 500 and the log says which setting is wrong, never its value.
 */
import type { Env } from '../env'
import { parseIssuers, type Issuers } from './oidc/config'
import { checkIssuers } from './oidc/rules'
import { OIDC_USER } from './oidc/verify'
import { parsePasswordHash, type PasswordHash } from './passwords'
import { ROBOT_PREFIX } from './robots'
import { parseRules, type Rules } from './rules'
import { hashShape, notJsonError } from './shape'

export interface User {
  hash: PasswordHash
  /** Changes whenever the password is re-hashed (its salt): refresh tokens carry it. */
  proof: string
}

export interface AuthConfig {
  /** The token service; null = the request's host. */
  service: string | null
  rules: Rules
  users: Map<string, User>
  /** AUTH_OIDC: issuers whose identity tokens sign CI jobs in (oidc/). */
  oidc: Issuers
  /** The HS256 key tokens are signed with. */
  key: Promise<CryptoKey>
}

const MIN_SECRET_LENGTH = 32
const USER = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/

/** Per isolate, keyed by every auth setting's raw text (users and their hashes, rules, the secret). */
let memo: { inputs: (string | undefined)[]; config: AuthConfig | null } | null = null

/** The auth config, or null when AUTH_MODE is "none" (the open registry). CPU only. */
export function authConfig(env: Env): AuthConfig | null {
  const inputs = [env.AUTH_MODE, env.AUTH_SERVICE, env.AUTH_RULES, env.AUTH_USERS, env.AUTH_TOKEN_SECRET, env.AUTH_OIDC]
  if (memo && memo.inputs.every((v, i) => v === inputs[i])) return memo.config
  const config = parse(env)
  memo = { inputs, config }
  return config
}

function parse(env: Env): AuthConfig | null {
  const mode = env.AUTH_MODE?.trim() || 'none'
  if (mode === 'none') return null
  if (mode !== 'token') throw new Error(`AUTH_MODE must be "none" or "token"`)
  const secret = env.AUTH_TOKEN_SECRET ?? ''
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new Error(`AUTH_TOKEN_SECRET must be set to at least ${MIN_SECRET_LENGTH} characters when AUTH_MODE is "token"`)
  }
  const raw = new TextEncoder().encode(secret)
  const rules = parseRules(env.AUTH_RULES)
  const oidc = parseIssuers(env.AUTH_OIDC)
  checkIssuers(rules.oidc, new Set(oidc.byAlias.keys()))
  return {
    service: env.AUTH_SERVICE?.trim() || null,
    rules,
    users: parseUsers(env.AUTH_USERS),
    oidc,
    key: crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']),
  }
}

/** AUTH_USERS: `{"alice": "pbkdf2-sha256$…"}`. */
function parseUsers(json: string | undefined): Map<string, User> {
  let input: unknown
  try {
    input = JSON.parse(json?.trim() || '{}')
  } catch {
    throw notJsonError('AUTH_USERS', json ?? '', '{')
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new Error('AUTH_USERS must be a JSON object of user name to password hash')
  }
  const users = new Map<string, User>()
  for (const [name, value] of Object.entries(input)) {
    // Clients that split `robot:<name>:<token>` at the first colon send user "robot" (credentials.ts);
    // user "oidc" is how CI jobs present identity tokens (oidc/verify.ts).
    if (!USER.test(name) || name === 'robot' || name === OIDC_USER || name.startsWith(ROBOT_PREFIX)) {
      throw new Error(`AUTH_USERS: "${name.slice(0, 64)}" is not a valid user name (robots live in KV; "oidc" is reserved)`)
    }
    const hash = typeof value === 'string' ? parsePasswordHash(value) : null
    if (!hash) throw new Error(`AUTH_USERS: the hash of "${name}" is not a password hash: ${hashShape(value)}`)
    users.set(name, { hash, proof: (value as string).split('$')[2]! })
  }
  return users
}
