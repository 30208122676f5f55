/**
 * The auth settings as the auth layer uses them: AUTH_MODE, AUTH_SERVICE, AUTH_RULES and
 * AUTH_OIDC from `[vars]`, AUTH_USERS and AUTH_TOKEN_SECRET from secrets, parsed and checked
 * by src/settings/ (auth.ts there says what a valid value is). A broken setting fails closed
 * before any route runs (src/http/configured.ts).
 */
import type { Env } from '../env'
import { settings, type Settings } from '../settings'
import type { Issuers, Rules, User } from '../settings/auth'

export type { User } from '../settings/auth'

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

/** One per parse of the settings: the key is imported once, not per request. */
const configs = new WeakMap<Settings, AuthConfig>()

/** The auth config, or null when AUTH_MODE is "none" (the open registry). CPU only; throws on bad settings. */
export function authConfig(env: Env): AuthConfig | null {
  const s = settings(env)
  if (s.AUTH_MODE === 'none') return null
  let config = configs.get(s)
  if (!config) {
    const raw = new TextEncoder().encode(s.AUTH_TOKEN_SECRET)
    config = {
      service: s.AUTH_SERVICE,
      rules: s.AUTH_RULES,
      users: s.AUTH_USERS,
      oidc: s.AUTH_OIDC,
      key: crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']),
    }
    configs.set(s, config)
  }
  return config
}
