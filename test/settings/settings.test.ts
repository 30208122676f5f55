/**
 * src/settings/: every setting broken in every way is reported as `SETTING<path>: message`,
 * naming the setting and never the value; good values parse in every form; settings are parsed
 * once per env; a registry with a bad setting answers every request 500 naming it, and logs why.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import worker from '../../src/index'
import type { Env } from '../../src/env'
import { formatProblem, parseSetting, parseSettings, readSettings, SECRETS, settings, SETTING_NAMES, VARS } from '../../src/settings'
import { bindings, callWith } from '../helpers'
import { BROKEN, GOOD, MISSING, SECRET_MARK } from './cases'

afterEach(() => {
  vi.restoreAllMocks()
})

const problemsOf = (values: Record<string, unknown>): string[] => {
  const result = parseSettings(values)
  return result.ok ? [] : result.problems.map(formatProblem)
}

describe('each setting broken in each way', () => {
  it.each([...BROKEN, ...MISSING].map((c) => [`${c.setting}: ${c.how}`, c] as const))('%s is named with its path, never its value', (_, c) => {
    const problems = problemsOf({ ...c.others, [c.setting]: c.value })
    expect(problems.some((p) => c.problem.test(p)), problems.join('\n')).toBe(true)
    // Only the broken setting is reported.
    expect(problems.every((p) => p.startsWith(c.setting)), problems.join('\n')).toBe(true)
    for (const p of problems) expect(p).not.toContain(SECRET_MARK)
  })

  it('reports every problem at once, not the first', () => {
    const problems = problemsOf({ READ_ONLY: 'yes', MAX_CHUNK_BYTES: '5', AUTH_RULES: '[1, {}]', AUTH_USERS: `{"alice": "${SECRET_MARK}"}` })
    expect(problems).toEqual([
      'MAX_CHUNK_BYTES: must be a whole number of bytes, at least 1048576 (1 MiB)',
      'READ_ONLY: must be "true" or "false"',
      'AUTH_RULES[0]: must be an object',
      'AUTH_RULES[1].repos: is required: the repositories the rule is about',
      'AUTH_USERS.alice: not a password hash: it has 1 $-separated field, not 4 (a $word expanded away? .env files and double-quoted shell strings expand them)',
    ])
  })

  it('checks across settings only once the settings they read are valid', () => {
    // AUTH_OIDC broken: the rule naming an issuer is not also reported against it.
    const problems = problemsOf({ AUTH_OIDC: '[{', AUTH_RULES: JSON.stringify([{ repos: 'a', oidc: { issuer: 'gh', claims: { sub: '*' } }, actions: ['pull'] }]) })
    expect(problems).toEqual([expect.stringMatching(/^AUTH_OIDC: not valid JSON/)])
  })
})

describe('good values', () => {
  it.each(GOOD.map((g) => [`${g.setting} = ${JSON.stringify(g.value)}`, g] as const))('%s parses', (_, g) => {
    const result = parseSettings({ [g.setting]: g.value })
    expect(result.ok).toBe(true)
    expect(result.ok && (result.settings as Record<string, unknown>)[g.setting]).toEqual(g.parsed)
  })

  it('wrangler.toml as shipped parses, to the documented defaults', () => {
    const s = settings(bindings)
    expect(s).toMatchObject({
      DELETE_ENABLED: true, SCHEMA1_ENABLED: false, MANIFEST_MAX_BYTES: 4194304, MAX_CHUNK_BYTES: 94371840, LINK_CACHE_SECONDS: 60,
      READ_ONLY: false, AUTH_MODE: 'none', AUTH_SERVICE: null, UPSTREAMS: [], GC_GRACE_SECONDS: 86400, GC_SETTLE_SECONDS: 300,
      GC_TEST_SHORT_GRACE: false, RETENTION: [], IMMUTABLE_TAGS: [], UPLOAD_SECRET: null,
    })
  })

  it('an empty env is every default', () => {
    expect(parseSettings({})).toMatchObject({ ok: true, settings: { AUTH_MODE: 'none', MAX_CHUNK_BYTES: 94371840, AUTH_USERS: new Map() } })
  })

  it('JSON settings may be TOML values in [vars] (the worker gets them parsed)', () => {
    const s = settings({
      UPSTREAMS: [{ prefix: 'hub', url: 'https://registry-1.docker.io/', dockerHubLibrary: true, ns: 'docker.io' }],
      AUTH_RULES: [{ repos: 'a/*', users: ['alice'], actions: ['pull'] }, { catalog: ['alice'] }],
      MAX_CHUNK_BYTES: 10485760,
      READ_ONLY: true,
    } as unknown as Env)
    expect(s.UPSTREAMS[0]).toMatchObject({ namespace: 'hub', url: 'https://registry-1.docker.io', ns: ['docker.io'], tagTtlSeconds: 300 })
    expect(s.AUTH_RULES.catalog).toEqual(new Set(['alice']))
    expect([s.MAX_CHUNK_BYTES, s.READ_ONLY]).toEqual([10485760, true])
  })

  it('parseSetting reads one setting alone, with the same messages', () => {
    expect(parseSetting('RETENTION', '[{"repos":"ci/*","keepLast":3}]')).toEqual([{ name: 'RETENTION[0]', repos: ['ci/*'], keepLast: 3 }])
    expect(() => parseSetting('AUTH_USERS', `{"a b": "${SECRET_MARK}"}`)).toThrow(/^AUTH_USERS\[key 1\]: is not a valid user name/)
  })

  it('names every setting once, secrets apart', () => {
    expect(SETTING_NAMES).toEqual([...Object.keys(VARS), ...Object.keys(SECRETS)])
    expect(Object.keys(SECRETS)).toEqual(['UPLOAD_SECRET', 'AUTH_USERS', 'AUTH_TOKEN_SECRET', 'UPSTREAM_CREDENTIALS', 'NOTIFICATION_SECRETS'])
  })
})

describe('parsed once per env', () => {
  it('the same env object gives the same settings object', () => {
    const env = { ...bindings, MAX_CHUNK_BYTES: '2097152' }
    expect(settings(env)).toBe(settings(env))
  })

  it('a new env object with the same values reuses the last parse; other values parse anew', () => {
    const a = settings({ ...bindings, RETENTION: '[{"repos":"x","keepLast":1}]' })
    expect(settings({ ...bindings, RETENTION: '[{"repos":"x","keepLast":1}]' })).toBe(a)
    const b = settings({ ...bindings, RETENTION: '[{"repos":"x","keepLast":2}]' })
    expect(b).not.toBe(a)
    expect(b.RETENTION[0]!.keepLast).toBe(2)
  })

  it('TOML values (new objects for the same value) reuse the last parse too', () => {
    const upstreams = () => [{ prefix: 'hub', url: 'https://registry-1.docker.io' }]
    const a = settings({ ...bindings, UPSTREAMS: upstreams() })
    expect(settings({ ...bindings, UPSTREAMS: upstreams() })).toBe(a)
    expect(settings({ ...bindings, UPSTREAMS: [{ prefix: 'hub2', url: 'https://registry-1.docker.io' }] })).not.toBe(a)
  })

  it('a failure is kept too, and reported the same way', () => {
    const env = { ...bindings, READ_ONLY: 'maybe' }
    expect(readSettings(env)).toBe(readSettings(env))
    expect(() => settings(env)).toThrow('READ_ONLY: must be "true" or "false"')
  })
})

describe('a registry with a bad setting', () => {
  it.each([
    ['a broken AUTH_RULES', { AUTH_MODE: 'token', AUTH_TOKEN_SECRET: 'x'.repeat(40), AUTH_RULES: '[{"repos":"A"}]' }, ['AUTH_RULES']],
    ['a broken RETENTION (not only when the collector runs)', { RETENTION: '{}' }, ['RETENTION']],
    ['two broken settings', { UPSTREAMS: '[{"prefix":"hub"}]', READ_ONLY: 'yes' }, ['READ_ONLY', 'UPSTREAMS']],
    ['token auth without its secret', { AUTH_MODE: 'token' }, ['AUTH_TOKEN_SECRET']],
    ['a secret set wrong', { AUTH_USERS: `{"alice":"${SECRET_MARK}"}` }, ['AUTH_USERS']],
  ])('with %s answers every path 500, saying it is misconfigured and naming the settings', async (_, overrides, names) => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {})
    for (const [method, path] of [['GET', '/v2/'], ['GET', '/v2/a/b/manifests/latest'], ['PUT', '/v2/a/b/manifests/latest'], ['GET', '/token'], ['GET', '/'], ['POST', '/admin/gc'], ['GET', '/nowhere']]) {
      const res = await callWith(overrides as Partial<Env>, path!, { method })
      expect(res.status, `${method} ${path}`).toBe(500)
      const body = (await res.json()) as { errors: { code: string; message: string; detail: { settings: string[] } }[] }
      expect(body.errors[0]).toEqual({
        code: 'UNKNOWN',
        message: `the registry is misconfigured: ${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} not valid (its operator's log says why; npm run check-config)`,
        detail: { settings: names },
      })
      expect(JSON.stringify(body)).not.toContain(SECRET_MARK)
    }
    // One structured line per request, saying what is wrong (never a value).
    const line = log.mock.calls.at(-1)![0] as { event: string; settings: string[]; problems: string[]; method: string; path: string }
    expect(line).toMatchObject({ event: 'misconfigured', settings: names, method: 'GET', path: '/nowhere' })
    expect(line.problems.length).toBeGreaterThan(0)
    for (const p of line.problems) expect(names.some((n) => p.startsWith(n))).toBe(true)
    expect(JSON.stringify(log.mock.calls)).not.toContain(SECRET_MARK)
  })

  it('answers every path 500 naming a queue the events settings need and wrangler.toml lacks (events would be lost)', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {})
    const key = `whsec_${btoa('k'.repeat(32))}`
    const res = await callWith({ NOTIFICATIONS: '[{"name":"ci","url":"https://ci.example.com/hook"}]', NOTIFICATION_SECRETS: `{"ci":"${key}"}`, EVENTS: undefined } as unknown as Partial<Env>, '/v2/', {})
    expect(res.status).toBe(500)
    const body = (await res.json()) as { errors: { message: string; detail: { settings: string[] } }[] }
    expect(body.errors[0]!.detail.settings).toContain('EVENTS')
    expect(log.mock.calls.at(-1)![0]).toMatchObject({ event: 'misconfigured', problems: [expect.stringMatching(/^EVENTS: missing from wrangler.toml \[\[queues.producers\]\]/)] })
  })

  it('answers a HEAD 500 without a body', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const res = await callWith({ READ_ONLY: 'yes' }, '/v2/a/b/manifests/latest', { method: 'HEAD' })
    expect(res.status).toBe(500)
    expect(await res.text()).toBe('')
  })

  it('skips the scheduled collection, logging why', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {})
    const started = vi.fn()
    const env = { ...bindings, GC_GRACE_SECONDS: '5', GC_WORKFLOW: { create: started } } as unknown as Env
    await worker.scheduled!({} as ScheduledController, env, { waitUntil: started } as unknown as ExecutionContext)
    expect(started).not.toHaveBeenCalled()
    expect(log.mock.calls[0]![0]).toMatchObject({ event: 'misconfigured', trigger: 'cron', settings: ['GC_GRACE_SECONDS'] })
  })
})
