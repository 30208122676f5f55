/**
 * docs/authentication.md "Keyless CI push with OIDC": its `[vars]` block, taken from the page as
 * written (TOML literal strings, `${repository}` and `${project_path}` plain), configures a
 * registry that grants what the page says. The issuers are stand-ins at the documented URLs.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import doc from '../../../docs/authentication.md?raw'
import type { Env } from '../../../src/env'
import { authEnv, basic, claimsOf, tokenFor } from '../setup'
import { interceptIssuers, TestIssuer } from './issuer'

/** `NAME = '''…'''` settings of the page's first ```toml block holding AUTH_OIDC (a newline right after ''' is not part of the value, as in TOML). */
function documentedVars(): Record<string, string> {
  const block = /```toml\n(\[vars\]\nAUTH_OIDC[\s\S]*?)```/.exec(doc)?.[1]
  if (!block) throw new Error('no [vars] block with AUTH_OIDC in docs/authentication.md')
  return Object.fromEntries([...block.matchAll(/^([A-Z_]+) = '''\n?([\s\S]*?)'''$/gm)].map((m) => [m[1]!, m[2]!]))
}

const AUDIENCE = 'https://registry.example.com'
let github: TestIssuer
let gitlab: TestIssuer
let e: Env

beforeAll(async () => {
  interceptIssuers()
  github = await TestIssuer.create('https://token.actions.githubusercontent.com')
  gitlab = await TestIssuer.create('https://gitlab.com')
  const vars = documentedVars()
  expect(Object.keys(vars)).toEqual(['AUTH_OIDC', 'AUTH_RULES'])
  expect(vars.AUTH_RULES).toContain('"repos": "gh/${repository}"')
  e = await authEnv(vars)
})

const granted = async (token: string, ...scopes: string[]) =>
  claimsOf(await tokenFor(e, basic('oidc', token), ...scopes)).access

describe('the documented OIDC settings, as written', () => {
  it('let the main branch of acme/app push acme/app, and every acme repository push gh/<itself>', async () => {
    const main = await github.token({ aud: AUDIENCE, sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app', repository_owner: 'acme', ref: 'refs/heads/main' })
    expect(await granted(main, 'repository:acme/app:pull,push', 'repository:gh/acme/app:pull,push', 'repository:gh/acme/other:pull')).toEqual([
      { type: 'repository', name: 'acme/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'gh/acme/app', actions: ['pull', 'push'] },
    ])
    const feature = await github.token({ aud: AUDIENCE, sub: 'repo:acme/tools:ref:refs/heads/x', repository: 'Acme/Tools', repository_owner: 'acme', ref: 'refs/heads/x' })
    expect(await granted(feature, 'repository:acme/app:pull,push', 'repository:gh/acme/tools:pull,push')).toEqual([
      { type: 'repository', name: 'gh/acme/tools', actions: ['pull', 'push'] },
    ])
  })

  it('let a protected GitLab branch of the acme group push gl/<its project path>, and nothing from elsewhere', async () => {
    const protectedJob = await gitlab.token({ aud: AUDIENCE, sub: 'project_path:acme/api:ref_type:branch:ref:main', project_path: 'acme/api', namespace_path: 'acme', ref_protected: 'true' })
    expect(await granted(protectedJob, 'repository:gl/acme/api:pull,push')).toEqual([{ type: 'repository', name: 'gl/acme/api', actions: ['pull', 'push'] }])
    const unprotected = await gitlab.token({ aud: AUDIENCE, sub: 'project_path:acme/api:ref_type:branch:ref:x', project_path: 'acme/api', namespace_path: 'acme', ref_protected: 'false' })
    expect(await granted(unprotected, 'repository:gl/acme/api:pull,push')).toEqual([])
    const outsider = await github.token({ aud: AUDIENCE, sub: 'repo:evil/app:ref:refs/heads/main', repository: 'evil/app', repository_owner: 'evil', ref: 'refs/heads/main' })
    expect(await granted(outsider, 'repository:acme/app:pull,push', 'repository:gh/evil/app:pull,push')).toEqual([])
  })
})
