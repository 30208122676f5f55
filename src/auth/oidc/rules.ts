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
 * - `repos` may map a claim into the pattern with `${claim}`. The claim's value is lowercased
 *   (GitHub and GitLab names are case-insensitive, repository names are lowercase) and must
 *   then be a valid repository path by itself, else the rule does not apply: a value holding
 *   `*`, `..`, `//` or anything else a repository name cannot hold never widens the pattern.
 * - OIDC callers are not "signed-in users": `"users": ["*"]` and `"catalog": ["*"]` do not
 *   include them. They get what OIDC rules and `anonymous` grant, nothing else.
 */
import { parseRepo } from '../../names'
import { ACTIONS, isAction, type Action, type Scope } from '../scopes'
import { actionsOn, globMatch, literalPrefix, pullPrefixes, type Rules } from '../rules'

/** A verified identity token's caller. */
export interface OidcIdentity {
  /** The AUTH_OIDC alias of its issuer. */
  alias: string
  /** Its claims (sub among them), as the issuer signed them. */
  claims: Record<string, unknown>
}

/** A `repos` pattern, split at each `${claim}`. */
type Template = (string | { claim: string })[]

export interface OidcRule {
  patterns: Template[]
  issuer: string
  claims: [name: string, pattern: string][]
  actions: Action[]
}

const KEYS = new Set(['repos', 'oidc', 'actions'])
const OIDC_KEYS = new Set(['issuer', 'claims'])
const LITERAL = /^[a-z0-9._\/*-]*$/
const CLAIM = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/
const MAX_PATTERN = 255
const MAX_CLAIM_PATTERN = 512

/** Whether an AUTH_RULES entry is an OIDC rule (it has `oidc`). */
export const isOidcRule = (rule: Record<string, unknown>): boolean => 'oidc' in rule

/** Parses one OIDC rule of AUTH_RULES (`where` names it in errors). */
export function parseOidcRule(r: Record<string, unknown>, where: string): OidcRule {
  for (const k of Object.keys(r)) {
    if (!KEYS.has(k)) throw new Error(`${where}: unknown field "${k.slice(0, 64)}" (an "oidc" rule has repos, oidc, actions)`)
  }
  const list = typeof r.repos === 'string' ? [r.repos] : r.repos
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${where}.repos must be a pattern or a list of patterns`)
  const patterns = list.map((p) => template(p, `${where}.repos`))
  const o = r.oidc
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error(`${where}.oidc must be {"issuer": <alias>, "claims": {…}}`)
  const oidc = o as Record<string, unknown>
  for (const k of Object.keys(oidc)) if (!OIDC_KEYS.has(k)) throw new Error(`${where}.oidc: unknown field "${k.slice(0, 64)}"`)
  if (typeof oidc.issuer !== 'string' || oidc.issuer === '') throw new Error(`${where}.oidc.issuer must name an issuer of AUTH_OIDC`)
  const c = oidc.claims
  if (typeof c !== 'object' || c === null || Array.isArray(c) || Object.keys(c).length === 0) {
    throw new Error(`${where}.oidc.claims must name at least one claim (whose jobs the rule means)`)
  }
  const claims = Object.entries(c as Record<string, unknown>).map(([name, pattern]): [string, string] => {
    if (!CLAIM.test(name)) throw new Error(`${where}.oidc.claims: "${name.slice(0, 64)}" is not a claim name`)
    if (typeof pattern !== 'string' || pattern === '' || pattern.length > MAX_CLAIM_PATTERN) {
      throw new Error(`${where}.oidc.claims.${name} must be a non-empty string pattern`)
    }
    return [name, pattern]
  })
  const actions = r.actions
  if (!Array.isArray(actions) || actions.length === 0 || !actions.every((a) => typeof a === 'string' && isAction(a))) {
    throw new Error(`${where}.actions must be a non-empty list of ${ACTIONS.join(', ')}`)
  }
  return { patterns, issuer: oidc.issuer, claims, actions: actions as Action[] }
}

/** `gh/${repository}/*` → ['gh/', {claim: 'repository'}, '/*']. */
function template(pattern: unknown, where: string): Template {
  const problem = `${where} must be a pattern or a list of patterns (a-z 0-9 . _ - / * and \${claim})`
  if (typeof pattern !== 'string' || pattern === '' || pattern.length > MAX_PATTERN) throw new Error(problem)
  const out: Template = []
  let rest = pattern
  while (rest !== '') {
    const open = rest.indexOf('${')
    const literal = open < 0 ? rest : rest.slice(0, open)
    if (!LITERAL.test(literal)) throw new Error(problem)
    if (literal) out.push(literal)
    if (open < 0) break
    const close = rest.indexOf('}', open)
    const claim = close < 0 ? '' : rest.slice(open + 2, close)
    if (!CLAIM.test(claim)) throw new Error(`${where}: "${pattern.slice(0, 100)}" has a malformed \${claim}`)
    out.push({ claim })
    rest = rest.slice(close + 1)
  }
  return out
}

/** Every rule's issuer is an alias of AUTH_OIDC (a typo must not silently grant nothing, nor something else). */
export function checkIssuers(rules: OidcRule[], aliases: ReadonlySet<string>): void {
  rules.forEach((rule) => {
    if (!aliases.has(rule.issuer)) {
      throw new Error(`AUTH_RULES: an "oidc" rule names issuer "${rule.issuer.slice(0, 64)}", which AUTH_OIDC does not list`)
    }
  })
}

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
    if (typeof value !== 'string') return null
    const path = repoPath(value.toLowerCase())
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
