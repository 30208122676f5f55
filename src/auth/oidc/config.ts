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
 * What a valid entry is: src/settings/auth.ts.
 */
import { parseSetting } from '../../settings'
import { isIssuerUrl, type Issuers } from '../../settings/auth'

export type { Issuer, Issuers } from '../../settings/auth'
export { isLoopback } from '../../settings/auth'

/** Parses and checks AUTH_OIDC alone (src/settings/auth.ts); throws a SettingsError naming each problem. */
export const parseIssuers = (json: string | undefined): Issuers => parseSetting('AUTH_OIDC', json)

/** An https URL (http only on a loopback host), kept exactly as written: `iss` is compared as a string. */
export function checkUrl(value: unknown, where: string): string {
  if (!isIssuerUrl(value)) throw new Error(`${where} must be an https URL (http only for 127.0.0.1, ::1 or localhost)`)
  return value
}
