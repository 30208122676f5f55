/**
 * AUTH_RULES: who may do what, as JSON an operator reads at a glance.
 *
 *   [
 *     {"repos": "team-a/*", "users": ["alice", "robot:ci"], "actions": ["pull", "push"]},
 *     {"repos": ["public/*", "docs"], "users": ["alice"], "actions": ["pull", "push", "delete"], "anonymous": ["pull"]},
 *     {"repos": "*", "users": ["*"], "actions": ["pull"]},
 *     {"catalog": ["alice"]},
 *     {"admin": ["alice"]}
 *   ]
 *
 * - `repos`: a pattern or a list. `*` matches one or more characters, `/` included, so
 *   `team-a/*` is every repository under `team-a/` at any depth (not `team-a` itself) and
 *   `*` is every repository; everything else is literal.
 * - `users`: user names (AUTH_USERS), robots as `robot:<name>`, or `*` for anyone signed in.
 * - `actions`: what those users get: `pull`, `push`, `delete` (each is separate: a pusher
 *   needs `pull` too, as every client reads before it writes).
 * - `anonymous`: `["pull"]` lets anyone pull, signed in or not (public repositories).
 * - `catalog`: who may list every repository name (`*`: anyone signed in). Never anonymous:
 *   the catalog names private repositories too.
 * - `oidc`: a rule for CI jobs signing in with an identity token, by its claims (oidc/rules.ts).
 * - `admin`: who may run and read garbage collections (`/admin/gc`). Never anonymous.
 *
 * Rules only add: a caller's actions on a repository are the union over every matching rule.
 * Nothing is granted that no rule names.
 */
import { isOidcRule, parseOidcRule, type OidcRule } from './oidc/rules'
import { robotName } from './robots'
import { ACTIONS, isAction, type Action, type Scope } from './scopes'
import { notJsonError } from './shape'

interface RepoRule {
  patterns: string[]
  users: Set<string>
  actions: Action[]
  anonymous: Action[]
}

export interface Rules {
  repos: RepoRule[]
  catalog: Set<string>
  /** Rules for OIDC callers (oidc/rules.ts). */
  oidc: OidcRule[]
  /** Who may run and read garbage collections. */
  admin: Set<string>
}

/** User names (as config.ts accepts them for AUTH_USERS). */
const USER = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/
const PATTERN = /^[a-z0-9._\/*-]{1,255}$/
const REPO_KEYS = new Set(['repos', 'users', 'actions', 'anonymous'])

/** Parses and checks AUTH_RULES; throws an Error naming the first problem (no secrets in it). */
export function parseRules(json: string | undefined): Rules {
  let input: unknown
  try {
    input = JSON.parse(json?.trim() || '[]')
  } catch {
    throw notJsonError('AUTH_RULES', json ?? '', '[')
  }
  if (!Array.isArray(input)) throw new Error('AUTH_RULES must be a JSON array of rules')
  const rules: Rules = { repos: [], catalog: new Set(), oidc: [], admin: new Set() }
  input.forEach((rule: unknown, i) => {
    const where = `AUTH_RULES[${i}]`
    if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) throw new Error(`${where} must be an object`)
    const r = rule as Record<string, unknown>
    if ('catalog' in r) {
      if (Object.keys(r).length !== 1) throw new Error(`${where}: a catalog rule has only "catalog"`)
      for (const u of userList(r.catalog, `${where}.catalog`)) rules.catalog.add(u)
      return
    }
    if ('admin' in r) {
      if (Object.keys(r).length !== 1) throw new Error(`${where}: an admin rule has only "admin"`)
      for (const u of userList(r.admin, `${where}.admin`)) rules.admin.add(u)
      return
    }
    if (isOidcRule(r)) {
      rules.oidc.push(parseOidcRule(r, where))
      return
    }
    for (const k of Object.keys(r)) if (!REPO_KEYS.has(k)) throw new Error(`${where}: unknown field "${k}"`)
    const patterns = typeof r.repos === 'string' ? [r.repos] : r.repos
    if (!Array.isArray(patterns) || patterns.length === 0 || !patterns.every((p) => typeof p === 'string' && PATTERN.test(p))) {
      throw new Error(`${where}.repos must be a pattern or a list of patterns (a-z 0-9 . _ - / *)`)
    }
    const users = r.users === undefined ? [] : userList(r.users, `${where}.users`)
    const actions = r.actions === undefined ? [] : actionList(r.actions, `${where}.actions`)
    const anonymous = r.anonymous === undefined ? [] : actionList(r.anonymous, `${where}.anonymous`)
    if ((users.length > 0) !== (actions.length > 0)) throw new Error(`${where}: "users" and "actions" go together`)
    if (anonymous.some((a) => a !== 'pull')) throw new Error(`${where}.anonymous: anonymous callers may only pull`)
    if (users.length === 0 && anonymous.length === 0) throw new Error(`${where} grants nothing`)
    rules.repos.push({ patterns: patterns as string[], users: new Set(users), actions, anonymous })
  })
  return rules
}

function userList(value: unknown, where: string): string[] {
  const valid = (u: unknown) => typeof u === 'string' && (u === '*' || robotName(u) !== null || (USER.test(u) && u !== 'robot'))
  if (!Array.isArray(value) || !value.every(valid)) {
    throw new Error(`${where} must be a list of user names, robot:<name> or "*"`)
  }
  return value as string[]
}

function actionList(value: unknown, where: string): Action[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((a) => typeof a === 'string' && isAction(a))) {
    throw new Error(`${where} must be a non-empty list of ${ACTIONS.join(', ')}`)
  }
  return value as Action[]
}

/** The actions `sub` ('' = anonymous) has on repository `repo`. CPU only. */
export function actionsOn(rules: Rules, sub: string, repo: string): Set<Action> {
  const out = new Set<Action>()
  for (const rule of rules.repos) {
    if (!rule.patterns.some((p) => globMatch(p, repo))) continue
    for (const a of rule.anonymous) out.add(a)
    if (sub !== '' && (rule.users.has(sub) || rule.users.has('*'))) for (const a of rule.actions) out.add(a)
  }
  return out
}

/**
 * Where every repository `sub` may pull lies: the literal part of each pattern before its first
 * `*` (an exact name is its own prefix, which also covers names extending it; the caller's
 * `can` still decides each). null when a pattern starts with `*`: anywhere. CPU only.
 */
export function pullPrefixes(rules: Rules, sub: string): string[] | null {
  const out: string[] = []
  for (const rule of rules.repos) {
    const grants = rule.anonymous.includes('pull') || (sub !== '' && (rule.users.has(sub) || rule.users.has('*')) && rule.actions.includes('pull'))
    if (!grants) continue
    for (const p of rule.patterns) {
      const literal = literalPrefix(p)
      if (literal === '') return null
      out.push(literal)
    }
  }
  return out
}

/** A pattern's part before its first `*`. */
export const literalPrefix = (pattern: string): string => pattern.split('*', 1)[0]!

/** Whether `sub` may list the catalog. */
export const mayListCatalog = (rules: Rules, sub: string): boolean =>
  sub !== '' && (rules.catalog.has(sub) || rules.catalog.has('*'))

/** Whether `sub` may run garbage collections (the `admin` right). */
export const mayAdmin = (rules: Rules, sub: string): boolean => sub !== '' && (rules.admin.has(sub) || rules.admin.has('*'))

/** Of the actions a scope asks for, those `sub` gets (unknown types and actions: none). */
export function grantedActions(rules: Rules, sub: string, scope: Scope): string[] {
  if (scope.type === 'repository') {
    const allowed = actionsOn(rules, sub, scope.name)
    return scope.actions.filter((a) => allowed.has(a as Action))
  }
  if (scope.type === 'registry' && scope.name === 'catalog' && mayListCatalog(rules, sub)) {
    return scope.actions.filter((a) => a === '*')
  }
  if (scope.type === 'registry' && scope.name === 'admin' && mayAdmin(rules, sub)) {
    return scope.actions.filter((a) => a === '*')
  }
  return []
}

/**
 * Whether `name` matches `pattern`, where each `*` stands for one or more characters.
 * The classic two-pointer wildcard walk (backtracking only to the last `*`): O(n·m), no regex.
 */
export function globMatch(pattern: string, name: string): boolean {
  let p = 0
  let s = 0
  let star = -1
  let resume = 0
  while (s < name.length) {
    if (pattern[p] === '*') {
      // `*` takes one character now (it may not be empty), more on backtracking.
      star = p++
      resume = ++s
    } else if (p < pattern.length && pattern[p] === name[s]) {
      p++
      s++
    } else if (star >= 0) {
      p = star + 1
      s = ++resume
    } else {
      return false
    }
  }
  return p === pattern.length
}
