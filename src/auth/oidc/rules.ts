/**
 * AUTH_RULES entries for OIDC callers: rights granted by the claims of a verified identity
 * token instead of a user name.
 *
 *   {"repos": "acme/*", "oidc": {"issuer": "github", "claims": {"repository_owner": "acme",
 *    "ref": "refs/heads/main"}}, "actions": ["pull", "push"]}
 *   {"repos": "gh/${repository}", "oidc": {"issuer": "github", "claims": {"repository_owner": "acme"}},
 *    "actions": ["pull", "push"]}
 *
 * - `oidc.issuer`: an alias of AUTH_OIDC; `oidc.claims`: claim name → pattern (`*` as in
 *   repos: one or more characters), every one of which must match. At least one claim is
 *   required: anyone can mint a token of a public CI's issuer for any audience they like, so
 *   a rule must say whose jobs it means.
 * - `repos` may map a claim into the pattern with `${claim}`. The claim's value must be ASCII;
 *   its A-Z are lowercased (GitHub and GitLab names are case-insensitive, repository names are
 *   lowercase) and it must then be a valid repository path by itself, else the rule does not
 *   apply: a value holding `*`, `..`, `//` or anything else a repository name cannot hold never
 *   widens the pattern. Only ASCII letters are folded: Unicode lowercasing maps other characters
 *   onto ASCII ones (U+212A KELVIN SIGN → `k`), so a look-alike name on the issuer would be
 *   granted the repository of the name it imitates.
 * - OIDC callers are not "signed-in users": `"users": ["*"]` and `"catalog": ["*"]` do not
 *   include them. They get what OIDC rules and `anonymous` grant, nothing else.
 */
import { globMatch } from '../../glob'
import { parseRepo } from '../../names'
import type { Action, Rules, Template } from '../../settings/auth'
import { actionsOn, literalPrefix, pullPrefixes } from '../rules'
import type { Scope } from '../scopes'

export type { OidcRule } from '../../settings/auth'

/** A verified identity token's caller. */
export interface OidcIdentity {
  /** The AUTH_OIDC alias of its issuer. */
  alias: string
  /** Its claims (sub among them), as the issuer signed them. */
  claims: Record<string, unknown>
}

/** A mapped claim value may hold printable ASCII only (anything else: the rule does not apply). */
const ASCII = /^[\x20-\x7e]*$/

/** What an OIDC caller may do on `repo`: the anonymous grants plus every OIDC rule its claims satisfy. CPU only. */
export function oidcActionsOn(rules: Rules, id: OidcIdentity, repo: string): Set<Action> {
  const out = actionsOn(rules, '', repo)
  for (const rule of rules.oidc) {
    if (rule.issuer !== id.alias || !rule.claims.every(([name, pattern]) => claimMatches(id.claims[name], pattern))) continue
    if (rule.patterns.some((t) => matches(t, id.claims, repo))) for (const a of rule.actions) out.add(a)
  }
  return out
}

/** pullPrefixes (rules.ts) of an OIDC caller: the anonymous ones and those of every rule its claims satisfy, claims filled in. */
export function oidcPullPrefixes(rules: Rules, id: OidcIdentity): string[] | null {
  const out = pullPrefixes(rules, '')
  if (out === null) return null
  for (const rule of rules.oidc) {
    if (!rule.actions.includes('pull')) continue
    if (rule.issuer !== id.alias || !rule.claims.every(([name, pattern]) => claimMatches(id.claims[name], pattern))) continue
    for (const t of rule.patterns) {
      const filled = fill(t, id.claims)
      if (filled === null) continue // a claim missing: the pattern matches nothing
      const literal = literalPrefix(filled)
      if (literal === '') return null
      out.push(literal)
    }
  }
  return out
}

/** Of the actions a scope asks for, those an OIDC caller gets (repositories only: never the catalog). */
export function oidcGrantedActions(rules: Rules, id: OidcIdentity, scope: Scope): string[] {
  if (scope.type !== 'repository') return []
  const allowed = oidcActionsOn(rules, id, scope.name)
  return scope.actions.filter((a) => allowed.has(a as Action))
}

/** Claims are compared as the issuer wrote them; strings, or numbers and booleans in their JSON form. */
function claimMatches(value: unknown, pattern: string): boolean {
  const text = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : null
  return text !== null && globMatch(pattern, text)
}

/** Whether `repo` matches the template with the caller's claims filled in; false when a claim cannot be. */
function matches(t: Template, claims: Record<string, unknown>, repo: string): boolean {
  const pattern = fill(t, claims)
  return pattern !== null && globMatch(pattern, repo)
}

/** A template with its claims filled in; null when a claim is missing or not a repository path. */
function fill(t: Template, claims: Record<string, unknown>): string | null {
  let pattern = ''
  for (const part of t) {
    if (typeof part === 'string') {
      pattern += part
      continue
    }
    const value = claims[part.claim]
    if (typeof value !== 'string' || !ASCII.test(value)) return null
    const path = repoPath(value.replace(/[A-Z]/g, (ch) => ch.toLowerCase()))
    if (path === null) return null
    // A valid repository path holds no `*`: filled in, it matches only itself.
    pattern += path
  }
  return pattern
}

function repoPath(s: string): string | null {
  try {
    return parseRepo(s)
  } catch {
    return null
  }
}
