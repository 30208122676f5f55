import { describe, expect, it } from 'vitest'
import { RegistryError } from '../../src/errors'
import { formatScope, MAX_SCOPES, parseScopes } from '../../src/auth/scopes'

const codeOf = (f: () => unknown): string | null => {
  try {
    f()
    return null
  } catch (e) {
    return e instanceof RegistryError ? e.code : 'not a RegistryError'
  }
}

describe('parseScopes', () => {
  it('reads several scope parameters, and several space-separated scopes in one', () => {
    expect(parseScopes(['repository:team/a:pull,push', 'registry:catalog:* repository:team/b:pull'])).toEqual([
      { type: 'repository', name: 'team/a', actions: ['pull', 'push'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'repository', name: 'team/b', actions: ['pull'] },
    ])
  })

  it('merges scopes of one resource and drops repeated actions', () => {
    expect(parseScopes(['repository:a:pull', 'repository:a:push,pull'])).toEqual([
      { type: 'repository', name: 'a', actions: ['pull', 'push'] },
    ])
  })

  it('keeps unknown actions and types (they are simply never granted)', () => {
    expect(parseScopes(['repository:a:pull,frobnicate,*', 'repository(plugin):p:pull'])).toEqual([
      { type: 'repository', name: 'a', actions: ['pull', 'frobnicate', '*'] },
      { type: 'repository(plugin)', name: 'p', actions: ['pull'] },
    ])
  })

  it('reads no scope as none', () => {
    expect(parseScopes([])).toEqual([])
    expect(parseScopes(['', ' '])).toEqual([])
  })

  it.each([
    'repository',
    'repository:a',
    ':a:pull',
    'repository::pull',
    'repository:a:',
    'repository:a:pull,,push',
    'Repository:a:pull',
    'repository:a:PULL',
    `repository:${'a'.repeat(600)}:pull`,
  ])('answers TOKEN_REQUEST_INVALID for the malformed %s', (scope) => {
    expect(codeOf(() => parseScopes([scope]))).toBe('TOKEN_REQUEST_INVALID')
  })

  it('answers NAME_INVALID for a repository name outside the spec grammar', () => {
    expect(codeOf(() => parseScopes(['repository:Team/A:pull']))).toBe('NAME_INVALID')
    expect(codeOf(() => parseScopes(['repository:localhost:5000/a:pull']))).toBe('NAME_INVALID')
  })

  it(`refuses more than ${MAX_SCOPES} scopes`, () => {
    const many = Array.from({ length: MAX_SCOPES + 1 }, (_, i) => `repository:r${i}:pull`)
    expect(codeOf(() => parseScopes(many.slice(0, MAX_SCOPES)))).toBeNull()
    expect(codeOf(() => parseScopes(many))).toBe('TOKEN_REQUEST_INVALID')
    expect(codeOf(() => parseScopes([many.join(' ')]))).toBe('TOKEN_REQUEST_INVALID')
  })

  it('formats a scope as a challenge names it', () => {
    expect(formatScope({ type: 'repository', name: 'team/a', actions: ['pull', 'push'] })).toBe('repository:team/a:pull,push')
  })
})
