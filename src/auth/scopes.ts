/**
 * Scopes in the Docker token grammar, `<type>:<name>:<action>[,<action>…]`
 * (distribution docs/spec/auth/scope.md): what a token request asks for, what a
 * token holds, and what a /v2/ request needs.
 */
import { RegistryError } from '../errors'
import { parseRepo } from '../names'
import { ACTIONS, type Action } from '../settings/auth'

/** What the rules can grant on a repository (AUTH_RULES' vocabulary, src/settings/auth.ts). */
export { ACTIONS, type Action } from '../settings/auth'
export const isAction = (s: string): s is Action => (ACTIONS as readonly string[]).includes(s)

/** A resource and the actions asked for, or granted, on it (the JWT `access` claim's entries). */
export interface Scope {
  type: string
  name: string
  actions: string[]
}

/** The one scope of the catalog (distribution's spelling). */
export const CATALOG_SCOPE: Readonly<Scope> = { type: 'registry', name: 'catalog', actions: ['*'] }

/** A token request may ask for at most this many resources (docker asks for 1-3). */
export const MAX_SCOPES = 10
const MAX_SCOPE_LENGTH = 512
/** `repository`, `registry`, or a typed resource such as `repository(plugin)`. */
const TYPE = /^[a-z][a-z0-9]*(?:\([a-z0-9]+\))?$/
const ACTION = /^(?:[a-z][a-z0-9_-]*|\*)$/

const invalid = (detail: string) => new RegistryError('TOKEN_REQUEST_INVALID', detail)

/**
 * The scopes of a token request: each `scope` parameter may itself hold several,
 * space-separated (OAuth2 form, as containerd sends them). Scopes of one resource
 * are merged. Unknown types and actions parse (they are simply never granted);
 * a malformed scope, an invalid repository name or more than MAX_SCOPES → 400.
 */
export function parseScopes(params: string[]): Scope[] {
  const byResource = new Map<string, Scope>()
  let count = 0
  for (const param of params) {
    for (const text of param.split(' ')) {
      if (text === '') continue
      if (++count > MAX_SCOPES) throw invalid(`at most ${MAX_SCOPES} scopes per request`)
      const scope = parseScope(text)
      const key = `${scope.type}:${scope.name}`
      const seen = byResource.get(key)
      if (seen) seen.actions = [...new Set([...seen.actions, ...scope.actions])]
      else byResource.set(key, scope)
    }
  }
  return [...byResource.values()]
}

function parseScope(text: string): Scope {
  if (text.length > MAX_SCOPE_LENGTH) throw invalid(`scope longer than ${MAX_SCOPE_LENGTH} characters`)
  const first = text.indexOf(':')
  const last = text.lastIndexOf(':')
  const shown = text.slice(0, 100)
  if (first <= 0 || last === first) throw invalid(`malformed scope "${shown}": expected <type>:<name>:<actions>`)
  const type = text.slice(0, first)
  const name = text.slice(first + 1, last)
  const actions = text.slice(last + 1).split(',')
  if (!TYPE.test(type) || name === '' || !actions.every((a) => ACTION.test(a))) {
    throw invalid(`malformed scope "${shown}"`)
  }
  if (type === 'repository') parseRepo(name)
  return { type, name, actions: [...new Set(actions)] }
}

/** `repository:team/app:pull,push`, as in a challenge's `scope` parameter. */
export const formatScope = (s: Scope): string => `${s.type}:${s.name}:${s.actions.join(',')}`

/** A repository scope. */
export const repositoryScope = (name: string, actions: string[]): Scope => ({ type: 'repository', name, actions })
