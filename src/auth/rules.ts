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
 * - `admin`: who may run and read garbage collections (`/admin/gc`) and read events and pull
 *   statistics (`/admin/events`, `/admin/stats/`). Never anonymous.
 *
 * Rules only add: a caller's actions on a repository are the union over every matching rule.
 * Nothing is granted that no rule names. What a valid rule is: src/settings/auth.ts.
 */
import { globMatch } from '../glob'
import { parseSetting } from '../settings'
import type { Action, Rules } from '../settings/auth'
import type { Scope } from './scopes'

export type { RepoRule, Rules } from '../settings/auth'
/** The pattern matcher (src/glob.ts), still reachable where it was. */
export { globMatch } from '../glob'

/** Parses and checks AUTH_RULES alone (src/settings/auth.ts); throws a SettingsError naming each problem. */
export const parseRules = (json: string | undefined): Rules => parseSetting('AUTH_RULES', json)

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
