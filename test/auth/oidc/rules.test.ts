import { describe, expect, it } from 'vitest'
import { authConfig } from '../../../src/auth/config'
import { parseIssuers } from '../../../src/auth/oidc/config'
import { oidcActionsOn, oidcGrantedActions, oidcPullPrefixes, type OidcIdentity } from '../../../src/auth/oidc/rules'
import { actionsOn, parseRules } from '../../../src/auth/rules'
import { authEnv, send } from '../setup'

const gh = (claims: Record<string, unknown>): OidcIdentity => ({ alias: 'github', claims: { sub: 'x', ...claims } })
const rulesOf = (...rules: unknown[]) => parseRules(JSON.stringify(rules))
const on = (rules: ReturnType<typeof parseRules>, id: OidcIdentity, repo: string) => [...oidcActionsOn(rules, id, repo)].sort()

describe('OIDC rules: claims', () => {
  const rules = rulesOf(
    { repos: 'acme/*', oidc: { issuer: 'github', claims: { repository_owner: 'acme', ref: 'refs/heads/main' } }, actions: ['pull', 'push'] },
    { repos: 'acme/*', oidc: { issuer: 'github', claims: { repository_owner: 'acme', ref: 'refs/tags/v*' } }, actions: ['pull', 'push', 'delete'] },
    { repos: 'public/*', anonymous: ['pull'] },
    { repos: '*', users: ['*'], actions: ['pull'] },
  )

  it('grants when every claim of the rule matches, patterns included', () => {
    expect(on(rules, gh({ repository_owner: 'acme', ref: 'refs/heads/main' }), 'acme/app')).toEqual(['pull', 'push'])
    expect(on(rules, gh({ repository_owner: 'acme', ref: 'refs/tags/v1.2' }), 'acme/app')).toEqual(['delete', 'pull', 'push'])
  })

  it('grants nothing when one claim differs, is missing, or is not text', () => {
    expect(on(rules, gh({ repository_owner: 'acme', ref: 'refs/heads/mainline' }), 'acme/app')).toEqual([])
    expect(on(rules, gh({ repository_owner: 'acme' }), 'acme/app')).toEqual([])
    expect(on(rules, gh({ repository_owner: ['acme'], ref: 'refs/heads/main' }), 'acme/app')).toEqual([])
    expect(on(rules, gh({ repository_owner: 'Acme', ref: 'refs/heads/main' }), 'acme/app')).toEqual([])
  })

  it('binds a rule to its issuer alias', () => {
    expect(on(rules, { alias: 'gitlab', claims: { repository_owner: 'acme', ref: 'refs/heads/main' } }, 'acme/app')).toEqual([])
  })

  it('gives OIDC callers the anonymous grants but not what "users": ["*"] grants', () => {
    expect(on(rules, gh({}), 'public/site')).toEqual(['pull'])
    expect(on(rules, gh({}), 'other/app')).toEqual([])
    // …and OIDC rules never reach users.
    expect([...actionsOn(rules, 'alice', 'acme/app')]).toEqual(['pull'])
  })

  it('never grants the catalog', () => {
    const withCatalog = rulesOf({ catalog: ['*'] }, ...[])
    expect(oidcGrantedActions(withCatalog, gh({}), { type: 'registry', name: 'catalog', actions: ['*'] })).toEqual([])
  })
})

describe('OIDC rules: ${claim} in repos', () => {
  const rules = rulesOf(
    { repos: 'gh/${repository}', oidc: { issuer: 'github', claims: { repository_owner: '*' } }, actions: ['pull', 'push'] },
    { repos: ['ci/${repository_owner}/*', 'cache/${repository}-deps'], oidc: { issuer: 'github', claims: { repository_owner: 'acme' } }, actions: ['pull'] },
  )

  it('maps the claim into the repository pattern, one rule for every repository', () => {
    const id = gh({ repository: 'acme/app', repository_owner: 'acme' })
    expect(on(rules, id, 'gh/acme/app')).toEqual(['pull', 'push'])
    expect(on(rules, id, 'gh/acme/other')).toEqual([])
    expect(on(rules, id, 'gh/acme/app/sub')).toEqual([])
    expect(on(rules, id, 'ci/acme/anything')).toEqual(['pull'])
    expect(on(rules, id, 'cache/acme/app-deps')).toEqual(['pull'])
    expect(on(rules, gh({ repository: 'globex/app', repository_owner: 'globex' }), 'gh/globex/app')).toEqual(['pull', 'push'])
  })

  it('lowercases the value (GitHub names are case-insensitive, repository names lowercase)', () => {
    expect(on(rules, gh({ repository: 'Acme/App', repository_owner: 'Acme' }), 'gh/acme/app')).toEqual(['pull', 'push'])
  })

  it.each([
    ['U+212A KELVIN SIGN (Unicode lowercases it to k)', 'acme/\u212Aeys', ['gh/acme/keys']],
    ['U+0130 (Unicode lowercases it to i and a combining dot)', 'acme/\u0130d', ['gh/acme/id', 'gh/acme/i\u0307d']],
    ['U+017F LONG S (Unicode uppercases it to S)', 'acme/\u017Fecret', ['gh/acme/secret']],
    ['a non-ASCII letter', 'acme/caf\u00E9', ['gh/acme/caf\u00E9', 'gh/acme/cafe']],
    ['a control character', 'acme/a\u0000pp', ['gh/acme/app']],
  ])('refuses a mapped value holding anything but ASCII: %s', (_name, value, repos) => {
    const id = gh({ repository: value, repository_owner: 'acme' })
    for (const repo of repos) expect(on(rules, id, repo), repo).toEqual([])
    // The same name in ASCII still maps.
    expect(on(rules, gh({ repository: 'ACME/Keys', repository_owner: 'acme' }), 'gh/acme/keys')).toEqual(['pull', 'push'])
  })

  it.each([
    ['a wildcard', 'acme/*', ['gh/acme/app', 'gh/acme/x']],
    ['a bare wildcard', '*', ['gh/acme', 'gh/x']],
    ['a climb out', 'acme/../../admin', ['gh/admin', 'admin', 'gh/acme/admin']],
    ['a dot segment', 'acme/./app', ['gh/acme/app']],
    ['an empty segment', 'acme//app', ['gh/acme/app']],
    ['a leading slash', '/admin', ['gh/admin']],
    ['a trailing slash', 'acme/', ['gh/acme']],
    ['a percent-encoded slash', 'acme%2fapp', ['gh/acme/app']],
    ['an empty value', '', ['gh/']],
    ['a template in the value', '${repository_owner}', ['gh/acme']],
  ])('never widens the grant with %s in the claim (%s)', (_name, value, repos) => {
    const id = gh({ repository: value, repository_owner: 'acme' })
    for (const repo of repos) expect(on(rules, id, repo), repo).not.toContain('push')
  })

  it('does not apply when the claim is absent or not a string', () => {
    expect(on(rules, gh({ repository_owner: 'acme' }), 'gh/undefined')).toEqual([])
    expect(on(rules, gh({ repository: 42, repository_owner: 'acme' }), 'gh/42')).toEqual([])
  })
})

describe('parseRules with oidc rules', () => {
  const ok = { repos: 'acme/*', oidc: { issuer: 'github', claims: { repository_owner: 'acme' } }, actions: ['push'] }
  it.each([
    ['no claims', { ...ok, oidc: { issuer: 'github', claims: {} } }, 'AUTH_RULES[0].oidc.claims: must name at least one claim'],
    ['no issuer', { ...ok, oidc: { claims: { a: 'b' } } }, 'AUTH_RULES[0].oidc.issuer'],
    ['users beside oidc', { ...ok, users: ['alice'] }, 'AUTH_RULES[0].users: unknown field'],
    ['anonymous beside oidc', { ...ok, anonymous: ['pull'] }, 'AUTH_RULES[0].anonymous: unknown field'],
    ['an unknown oidc field', { ...ok, oidc: { ...ok.oidc, audience: 'x' } }, 'AUTH_RULES[0].oidc.audience: unknown field'],
    ['a non-string claim pattern', { ...ok, oidc: { issuer: 'github', claims: { ref: true } } }, 'AUTH_RULES[0].oidc.claims.ref'],
    ['a bad claim name', { ...ok, oidc: { issuer: 'github', claims: { 'a b': 'x' } } }, 'is not a claim name'],
    ['an unterminated ${', { ...ok, repos: 'gh/${repository' }, 'AUTH_RULES[0].repos: has a malformed ${claim}'],
    ['an empty ${}', { ...ok, repos: 'gh/${}' }, 'AUTH_RULES[0].repos: has a malformed ${claim}'],
    ['upper case in repos', { ...ok, repos: 'Acme/*' }, 'AUTH_RULES[0].repos'],
    ['no actions', { ...ok, actions: [] }, 'AUTH_RULES[0].actions'],
    ['an unknown action', { ...ok, actions: ['own'] }, 'AUTH_RULES[0].actions'],
  ])('refuses %s, naming where', (_name, rule, message) => {
    expect(() => parseRules(JSON.stringify([rule]))).toThrow(message)
  })
})

describe('AUTH_OIDC', () => {
  const gh = { alias: 'github', issuer: 'https://token.actions.githubusercontent.com', audience: 'https://registry.example.com' }

  it('parses issuers by alias and by iss, discovery unless jwks_uri', () => {
    const issuers = parseIssuers(JSON.stringify([gh, { alias: 'gitlab', issuer: 'https://gitlab.com', audience: 'r', jwks_uri: 'https://gitlab.com/oauth/discovery/keys' }]))
    expect(issuers.byAlias.get('github')).toEqual({ ...gh, jwksUri: null })
    expect(issuers.byIssuer.get('https://gitlab.com')?.jwksUri).toBe('https://gitlab.com/oauth/discovery/keys')
    expect(parseIssuers(undefined).byAlias.size).toBe(0)
  })

  it('allows http only on loopback hosts', () => {
    for (const issuer of ['http://127.0.0.1:8865', 'http://localhost:8865', 'http://[::1]:8865']) {
      expect(parseIssuers(JSON.stringify([{ ...gh, issuer }])).byIssuer.has(issuer)).toBe(true)
    }
  })

  it.each([
    ['not JSON', '[{', 'AUTH_OIDC: not valid JSON'],
    ['an object', '{}', 'AUTH_OIDC: must be a JSON array'],
    ['no audience', JSON.stringify([{ ...gh, audience: undefined }]), 'AUTH_OIDC[0].audience: is required'],
    ['an empty audience', JSON.stringify([{ ...gh, audience: ' ' }]), 'AUTH_OIDC[0].audience: is required'],
    ['an http issuer', JSON.stringify([{ ...gh, issuer: 'http://issuer.example' }]), 'AUTH_OIDC[0].issuer: must be an https URL'],
    ['an http jwks_uri', JSON.stringify([{ ...gh, jwks_uri: 'http://issuer.example/keys' }]), 'AUTH_OIDC[0].jwks_uri: must be an https URL'],
    ['a bad alias', JSON.stringify([{ ...gh, alias: 'Git Hub' }]), 'AUTH_OIDC[0].alias'],
    ['a repeated alias', JSON.stringify([gh, { ...gh, issuer: 'https://b.example' }]), 'AUTH_OIDC[1]: alias "github" is used twice'],
    ['a repeated issuer', JSON.stringify([gh, { ...gh, alias: 'gh2' }]), 'AUTH_OIDC[1]: issuer'],
    ['an unknown field', JSON.stringify([{ ...gh, audiences: ['x'] }]), 'AUTH_OIDC[0].audiences: unknown field'],
  ])('refuses %s, naming the setting', (_name, json, message) => {
    expect(() => parseIssuers(json)).toThrow(message)
  })

  it('fails closed when a rule names an issuer AUTH_OIDC does not list, or AUTH_USERS has a user "oidc"', async () => {
    const rules = JSON.stringify([{ repos: 'a/*', oidc: { issuer: 'gitlab', claims: { sub: '*' } }, actions: ['pull'] }])
    const base = await authEnv()
    expect(() => authConfig({ ...base, AUTH_RULES: rules, AUTH_OIDC: JSON.stringify([gh]) }))
      .toThrow('AUTH_RULES[0].oidc.issuer: names "gitlab", which AUTH_OIDC does not list')
    expect(() => authConfig({ ...base, AUTH_USERS: '{"oidc":"pbkdf2-sha256$1000$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}' }))
      .toThrow('AUTH_USERS[key 1]: is not a valid user name (robots live in KV; "oidc" and "robot" are reserved)')
    for (const broken of [{ AUTH_OIDC: '[{"alias":"x"' }, { AUTH_OIDC: JSON.stringify([{ ...gh, audience: '' }]) }]) {
      const res = await send(await authEnv(broken), '/v2/')
      expect(res.status).toBe(500)
    }
  })
})

describe('OIDC rules: where a caller\'s pulls lie (oidcPullPrefixes)', () => {
  const rules = rulesOf(
    { repos: ['gh/${repository}', 'ci/${repository_owner}/*'], oidc: { issuer: 'github', claims: { repository_owner: 'acme' } }, actions: ['pull', 'push'] },
    { repos: 'pushonly/*', oidc: { issuer: 'github', claims: { repository_owner: 'acme' } }, actions: ['push'] },
    { repos: 'public/*', anonymous: ['pull'] },
  )

  it('fills the claims in, then takes each pattern\'s literal part; rules its claims do not meet add nothing', () => {
    expect(oidcPullPrefixes(rules, gh({ repository_owner: 'acme', repository: 'acme/app' }))).toEqual(['public/', 'gh/acme/app', 'ci/acme/'])
    expect(oidcPullPrefixes(rules, gh({ repository_owner: 'other', repository: 'other/app' }))).toEqual(['public/'])
  })

  it('bounds nothing when anonymous may pull anything', () => {
    expect(oidcPullPrefixes(rulesOf({ repos: '*', anonymous: ['pull'] }), gh({ repository_owner: 'acme' }))).toBeNull()
  })
})
