/** What a /v2/ request's caller may do, as routes see it (`Ctx.auth`; absent when auth is off). */
import type { Principal } from './credentials'
import { oidcActionsOn, oidcGrantedActions, oidcPullPrefixes } from './oidc/rules'
import { actionsOn, grantedActions, mayListCatalog, pullPrefixes, type Rules } from './rules'
import { CATALOG_SCOPE, type Action, type Scope } from './scopes'
import type { AccessClaims } from './tokens'

export interface Access {
  /** Who: a user name, `robot:<name>`, `oidc:<alias>:<sub>`, or '' for anonymous. Upload sessions are bound to it. */
  readonly sub: string
  /** Whether the caller may `action` on repository `repo`. CPU only. */
  can(repo: string, action: Action): boolean
  /** Whether the caller may list every repository name; otherwise the catalog lists those it may pull. */
  readonly catalog: boolean
  /**
   * Name prefixes every repository the caller may pull starts with (null: no bound), so a
   * listing of what it may pull reads only under them. CPU only.
   */
  pullPrefixes(): string[] | null
}

/** A caller with Basic credentials or none: the rules decide. */
export const ruleAccess = (rules: Rules, sub: string): Access => ({
  sub,
  can: (repo, action) => actionsOn(rules, sub, repo).has(action),
  catalog: mayListCatalog(rules, sub),
  pullPrefixes: () => pullPrefixes(rules, sub),
})

/** A caller proven by Basic credentials: an OIDC caller by its claims, anyone else by name. */
export const principalAccess = (rules: Rules, p: Principal): Access =>
  p.oidc
    ? {
        sub: p.sub,
        can: (repo, action) => oidcActionsOn(rules, p.oidc!, repo).has(action),
        catalog: false,
        pullPrefixes: () => oidcPullPrefixes(rules, p.oidc!),
      }
    : ruleAccess(rules, p.sub)

/** Of the actions `scope` asks for, those the rules give `p` (null: anonymous). CPU only. */
export const grantedTo = (rules: Rules, p: Principal | null, scope: Scope): string[] =>
  p?.oidc ? oidcGrantedActions(rules, p.oidc, scope) : grantedActions(rules, p?.sub ?? '', scope)

/** A Bearer token's holder: only what the token grants (a leaked token stays as narrow as it was issued). */
export const tokenAccess = (claims: AccessClaims): Access => ({
  sub: claims.sub,
  can: (repo, action) => holds(claims.access, { type: 'repository', name: repo, actions: [action] }),
  catalog: holds(claims.access, CATALOG_SCOPE),
  // A token names each repository exactly.
  pullPrefixes: () => claims.access.filter((g) => g.type === 'repository' && g.actions.includes('pull')).map((g) => g.name),
})

/** Which repositories a listing shows: those `keep` accepts, found only under `prefixes` (null: anywhere). */
export interface RepoFilter {
  keep: (repo: string) => boolean
  prefixes: string[] | null
}

/**
 * Which repositories a caller's catalog names: all (null) or those it may pull, listed only
 * under the prefixes its rules name. The catalog of a signed-in caller without the catalog
 * right is filtered rather than refused (layer.ts), for the API and the web UI alike.
 */
export const catalogFilter = (access: Access | undefined): RepoFilter | null =>
  !access || access.catalog ? null : pullFilter(access)

/** The repositories a caller may pull, as a listing filter (the web UI's, whatever the catalog right). */
export const pullFilter = (access: Access): RepoFilter => ({ keep: (repo) => access.can(repo, 'pull'), prefixes: access.pullPrefixes() })

/** Whether `granted` covers every action `need` asks for. */
export const holds = (granted: Scope[], need: Scope): boolean =>
  granted.some((g) => g.type === need.type && g.name === need.name && need.actions.every((a) => g.actions.includes(a)))
