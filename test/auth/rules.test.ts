import { describe, expect, it } from 'vitest'
import { actionsOn, globMatch, grantedActions, mayAdmin, mayListCatalog, parseRules, pullPrefixes } from '../../src/auth/rules'

describe('globMatch', () => {
  it.each([
    ['team-a/*', 'team-a/app', true],
    ['team-a/*', 'team-a/app/sub/deeper', true],
    ['team-a/*', 'team-a', false],
    ['team-a/*', 'team-a/', false],
    ['team-a/*', 'team-ab/app', false],
    ['team-a/*', 'x/team-a/app', false],
    ['*', 'anything/at/all', true],
    ['*-dev', 'team/app-dev', true],
    ['*-dev', '-dev', false],
    ['team/app', 'team/app', true],
    ['team/app', 'team/app2', false],
    ['a*b*c', 'axxbyyc', true],
    ['a*b*c', 'abc', false],
    ['a*b*c', 'axbyc/d', false],
    ['*/*', 'a/b', true],
    ['*/*', 'ab', false],
  ])('%s against %s → %s', (pattern, name, expected) => {
    expect(globMatch(pattern, name)).toBe(expected)
  })

  it('stays linear-ish on patterns built to backtrack', () => {
    const name = 'a'.repeat(255)
    const started = Date.now()
    expect(globMatch('*a*a*a*a*a*a*a*a*b', name)).toBe(false)
    expect(Date.now() - started).toBeLessThan(100)
  })
})

describe('parseRules', () => {
  const rules = parseRules(JSON.stringify([
    { repos: 'team-a/*', users: ['alice', 'robot:ci'], actions: ['pull', 'push'] },
    { repos: ['team-a/*', 'ops'], users: ['alice'], actions: ['delete'] },
    { repos: 'public/*', users: ['*'], actions: ['push'], anonymous: ['pull'] },
    { catalog: ['alice'] },
  ]))

  it('gives each caller the union of every matching rule', () => {
    expect([...actionsOn(rules, 'alice', 'team-a/app')].sort()).toEqual(['delete', 'pull', 'push'])
    expect([...actionsOn(rules, 'robot:ci', 'team-a/app')].sort()).toEqual(['pull', 'push'])
    expect([...actionsOn(rules, 'alice', 'ops')]).toEqual(['delete'])
    expect([...actionsOn(rules, 'bob', 'team-a/app')]).toEqual([])
  })

  it('lets anyone pull an anonymous repository, and "*" means anyone signed in', () => {
    expect([...actionsOn(rules, '', 'public/site')]).toEqual(['pull'])
    expect([...actionsOn(rules, 'bob', 'public/site')].sort()).toEqual(['pull', 'push'])
    expect([...actionsOn(rules, '', 'team-a/app')]).toEqual([])
  })

  it('grants the catalog only to the users named, never to anonymous', () => {
    expect(mayListCatalog(rules, 'alice')).toBe(true)
    expect(mayListCatalog(rules, 'bob')).toBe(false)
    expect(mayListCatalog(parseRules('[{"catalog":["*"]}]'), '')).toBe(false)
    expect(mayListCatalog(parseRules('[{"catalog":["*"]}]'), 'bob')).toBe(true)
  })

  it('grants the admin right (garbage collection) only to the users named, never to anonymous', () => {
    const admin = parseRules('[{"admin":["carol"]}]')
    expect(mayAdmin(admin, 'carol')).toBe(true)
    expect(mayAdmin(admin, 'alice')).toBe(false)
    expect(mayAdmin(parseRules('[{"admin":["*"]}]'), '')).toBe(false)
    expect(grantedActions(admin, 'carol', { type: 'registry', name: 'admin', actions: ['*'] })).toEqual(['*'])
    expect(grantedActions(admin, 'alice', { type: 'registry', name: 'admin', actions: ['*'] })).toEqual([])
    expect(() => parseRules('[{"admin":["carol"],"repos":"a"}]')).toThrow('only "admin"')
  })

  it('grants of a scope only the asked actions the rules allow; unknown types and actions get nothing', () => {
    expect(grantedActions(rules, 'robot:ci', { type: 'repository', name: 'team-a/x', actions: ['pull', 'delete', '*', 'frob'] })).toEqual(['pull'])
    expect(grantedActions(rules, 'alice', { type: 'registry', name: 'catalog', actions: ['*'] })).toEqual(['*'])
    expect(grantedActions(rules, 'alice', { type: 'registry', name: 'other', actions: ['*'] })).toEqual([])
    expect(grantedActions(rules, 'alice', { type: 'repository(plugin)', name: 'team-a/x', actions: ['pull'] })).toEqual([])
  })

  it('reads an empty or absent setting as no rules', () => {
    expect(parseRules(undefined).repos).toEqual([])
    expect(parseRules('  ').repos).toEqual([])
  })

  it.each([
    ['not json', 'not valid JSON'],
    ['{}', 'AUTH_RULES: must be a JSON array of rules'],
    ['[1]', 'must be an object'],
    ['[{"repos":"a/*","user":["x"],"actions":["pull"]}]', 'AUTH_RULES[0].user: unknown field'],
    ['[{"repos":"A/*","users":["x"],"actions":["pull"]}]', 'repos'],
    ['[{"repos":[],"users":["x"],"actions":["pull"]}]', 'repos'],
    ['[{"repos":"a/*","users":["x"]}]', '"users" and "actions" go together'],
    ['[{"repos":"a/*","users":["x"],"actions":["pull","write"]}]', 'actions'],
    ['[{"repos":"a/*","anonymous":["push"]}]', 'may only pull'],
    ['[{"repos":"a/*"}]', 'grants nothing'],
    ['[{"repos":"a/*","users":["x:y"],"actions":["pull"]}]', 'users'],
    ['[{"repos":"a/*","users":["robot:CI"],"actions":["pull"]}]', 'users'],
    ['[{"catalog":["x"],"repos":"a"}]', 'only "catalog"'],
  ])('refuses %s, naming the problem', (json, message) => {
    expect(() => parseRules(json)).toThrow(message)
  })
})

describe('pullPrefixes', () => {
  const rules = parseRules(JSON.stringify([
    { repos: ['team-a/*', 'tools/lint'], users: ['rita'], actions: ['pull', 'push'] },
    { repos: 'ci/*', users: ['rita'], actions: ['push'] },
    { repos: 'public/*', anonymous: ['pull'] },
    { repos: '*-dev', users: ['dave'], actions: ['pull'] },
  ]))

  it('names the literal part of each pattern that lets the caller pull (an exact name is its own prefix)', () => {
    expect(pullPrefixes(rules, 'rita')).toEqual(['team-a/', 'tools/lint', 'public/'])
    expect(pullPrefixes(rules, '')).toEqual(['public/'])
  })

  it('bounds nothing when a pattern that lets the caller pull starts with *', () => {
    expect(pullPrefixes(rules, 'dave')).toBeNull()
  })

  it('covers every repository the caller may pull', () => {
    for (const [sub, repo] of [['rita', 'team-a/app'], ['rita', 'tools/lint'], ['rita', 'public/x'], ['', 'public/y']] as const) {
      expect(actionsOn(rules, sub, repo).has('pull')).toBe(true)
      expect(pullPrefixes(rules, sub)!.some((p) => repo.startsWith(p))).toBe(true)
    }
    expect(actionsOn(rules, 'rita', 'ci/app').has('pull')).toBe(false)
  })
})
