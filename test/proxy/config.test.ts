/** UPSTREAMS and UPSTREAM_CREDENTIALS (src/proxy/config.ts). */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { cacheRetention, parseUpstreams, resolveTarget } from '../../src/proxy/config'
import { credentialsByUpstream } from '../../src/settings/upstream-credentials'
import type { Env } from '../../src/env'
import { get, UPSTREAM, upstreams } from './fake-upstream'

afterEach(() => {
  vi.restoreAllMocks()
})

const env = (list: unknown[], credentials?: Record<string, string>) =>
  ({ UPSTREAMS: JSON.stringify(list), ...(credentials ? { UPSTREAM_CREDENTIALS: JSON.stringify(credentials) } : {}) }) as Env

describe('UPSTREAMS', () => {
  it('reads prefix, host and ns upstreams with their defaults', () => {
    const [hub, mirror] = parseUpstreams(
      JSON.stringify([
        { prefix: 'hub', url: 'https://registry-1.docker.io/', dockerHubLibrary: true, ns: 'docker.io' },
        { host: 'mirror.example.com', url: 'https://ghcr.io', tagTtlSeconds: 60, repositories: ['org/*'], cacheDays: 30 },
      ]),
      JSON.stringify({ hub: 'me:secret' }),
    )
    expect(hub).toMatchObject({
      namespace: 'hub', url: 'https://registry-1.docker.io', dockerHubLibrary: true, ns: ['docker.io'],
      tagTtlSeconds: 300, repositories: null, cacheDays: null, credentials: 'me:secret',
    })
    expect(mirror).toMatchObject({ namespace: 'mirror.example.com', host: 'mirror.example.com', tagTtlSeconds: 60, repositories: ['org/*'], cacheDays: 30, credentials: null })
  })

  it('takes credentials keyed by the upstream\'s host too', () => {
    const [u] = parseUpstreams(JSON.stringify([{ prefix: 'ghcr', url: 'https://ghcr.io' }]), JSON.stringify({ 'ghcr.io': 'tok' }))
    expect(u!.credentials).toBe('tok')
  })

  it.each([
    ['not JSON', '[', undefined, /^UPSTREAMS: not valid JSON: /],
    ['not a list', '{}', undefined, /^UPSTREAMS: must be a JSON array/],
    ['an unknown field', '[{"prefix":"a","url":"https://x.io","ttl":5}]', undefined, /^UPSTREAMS\[0\]\.ttl: unknown field/],
    ['no url', '[{"prefix":"a"}]', undefined, /^UPSTREAMS\[0\]\.url/],
    ['credentials in the url', '[{"prefix":"a","url":"https://u:p@x.io"}]', undefined, /^UPSTREAMS\[0\]\.url: .*UPSTREAM_CREDENTIALS/],
    ['no way to reach it', '[{"url":"https://x.io"}]', undefined, /^UPSTREAMS\[0\]: needs a "prefix"/],
    ['a bad prefix', '[{"prefix":"Hub","url":"https://x.io"}]', undefined, /^UPSTREAMS\[0\]\.prefix/],
    ['a negative TTL', '[{"prefix":"a","url":"https://x.io","tagTtlSeconds":-1}]', undefined, /^UPSTREAMS\[0\]\.tagTtlSeconds/],
    ['zero cacheDays', '[{"prefix":"a","url":"https://x.io","cacheDays":0}]', undefined, /^UPSTREAMS\[0\]\.cacheDays/],
    ['a bad pattern', '[{"prefix":"a","url":"https://x.io","repositories":["A B"]}]', undefined, /^UPSTREAMS\[0\]\.repositories/],
    ['a namespace used twice', '[{"prefix":"a","url":"https://x.io"},{"prefix":"a","url":"https://y.io"}]', undefined, /^UPSTREAMS\[1\]: namespace "a" is already used/],
    ['an ns used twice', '[{"prefix":"a","url":"https://x.io","ns":"docker.io"},{"prefix":"b","url":"https://y.io","ns":"docker.io"}]', undefined, /^UPSTREAMS\[1\]: ns "docker.io"/],
    ['nested namespaces', '[{"prefix":"a","url":"https://x.io"},{"prefix":"a/b","url":"https://y.io"}]', undefined, /contains another upstream's namespace/],
    ['credentials not JSON', '[]', '{', /^UPSTREAM_CREDENTIALS: not valid JSON: /],
    ['credentials for no upstream', '[{"prefix":"a","url":"https://x.io"}]', '{"zzz":"user:hunter2"}', /^UPSTREAM_CREDENTIALS\[key 1\]: names no upstream of UPSTREAMS/],
    ['a credential that is not a string', '[{"prefix":"a","url":"https://x.io"}]', '{"a":5}', /^UPSTREAM_CREDENTIALS\.a: must be a non-empty string/],
  ])('refuses %s, naming the setting', (_name, json, creds, message) => {
    expect(() => parseUpstreams(json, creds)).toThrow(message)
  })

  it('never puts a credential in its message', () => {
    let message = ''
    try {
      parseUpstreams('[{"prefix":"a","url":"https://x.io"}]', '{"a": 7, "b": "user:hunter2"}')
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).not.toBe('')
    expect(message).not.toContain('hunter2')
  })

  it('fails closed: a bad setting makes every request answer 500 and logs the setting\'s name', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {})
    for (const path of ['/v2/', '/v2/team/app/manifests/v1', '/v2/_catalog']) {
      const { res } = await get({ UPSTREAMS: '[{"prefix":"a"}]' }, path)
      expect(res.status).toBe(500)
    }
    expect(log.mock.calls[0]?.[0]).toMatchObject({ event: 'misconfigured', problems: [expect.stringMatching(/^UPSTREAMS\[0\]\.url/)] })
  })
})

describe('UPSTREAM_CREDENTIALS keys name exactly one upstream', () => {
  const parse = (list: unknown[], creds: Record<string, string>) => parseUpstreams(JSON.stringify(list), JSON.stringify(creds))

  it('refuses a key that is one entry\'s namespace and another\'s url host (an ns-only entry named like a real upstream)', () => {
    // The issue: ghcr's credentials went to the ns-only entry's http://127.0.0.1:5073.
    const list = [{ prefix: 'gh2', url: 'https://ghcr.io' }, { ns: ['ghcr.io'], url: 'http://127.0.0.1:5073' }]
    expect(() => parse(list, { 'ghcr.io': 'ghuser:ghp_secret' })).toThrow(
      'UPSTREAM_CREDENTIALS["ghcr.io"]: is ambiguous: it names UPSTREAMS[0] (its url\'s host) and UPSTREAMS[1] (its namespace); key each upstream\'s credentials by its prefix',
    )
    // Keyed by prefix, each gets what is meant for it.
    const [gh2, nsOnly] = parse(list, { gh2: 'ghuser:ghp_secret' })
    expect(gh2!.credentials).toBe('ghuser:ghp_secret')
    expect(nsOnly!.credentials).toBeNull()
  })

  it('refuses a url host that two entries share (two entries on one upstream)', () => {
    const list = [{ prefix: 'tk', url: 'http://127.0.0.1:8791' }, { prefix: 'anon', url: 'http://127.0.0.1:8791' }]
    expect(() => parse(list, { '127.0.0.1:8791': 'admin:admin-pw' })).toThrow(/^UPSTREAM_CREDENTIALS\["127\.0\.0\.1:8791"\]: is ambiguous: it names UPSTREAMS\[0\] \(its url's host\) and UPSTREAMS\[1\]/)
    const [tk, anon] = parse(list, { tk: 'admin:admin-pw' })
    expect(tk!.credentials).toBe('admin:admin-pw')
    expect(anon!.credentials).toBeNull()
  })

  it('refuses two keys naming one entry (its prefix and its url host)', () => {
    expect(() => parse([{ prefix: 'hub', url: 'https://registry-1.docker.io' }], { hub: 'a:b', 'registry-1.docker.io': 'c:d' }))
      .toThrow('UPSTREAM_CREDENTIALS["registry-1.docker.io"]: names UPSTREAMS[0], as ["hub"] does: keep one')
  })

  it('never names a value in its messages', () => {
    const list = [{ prefix: 'tk', url: 'http://u.test' }, { prefix: 'anon', url: 'http://u.test' }]
    const cases: Record<string, string>[] = [{ 'u.test': 'admin:hunter2' }, { tk: 'admin:hunter2', 'u.test': 'admin:hunter2' }, { nope: 'admin:hunter2' }]
    for (const creds of cases) {
      expect(() => parse(list, creds)).toThrow()
      try {
        parse(list, creds)
      } catch (err) {
        expect((err as Error).message).not.toContain('hunter2')
      }
    }
  })

  it('credentialsByUpstream works on parsed settings alone (the settings schema\'s cross-field check)', () => {
    const entries = [{ namespace: 'hub', url: 'https://registry-1.docker.io' }, { namespace: 'ghcr.io', url: 'https://ghcr.io' }]
    expect(credentialsByUpstream(entries, new Map([['hub', 'u:p'], ['ghcr.io', 'tok']]))).toEqual({ credentials: ['u:p', 'tok'], problems: [] })
    expect(credentialsByUpstream(entries, new Map())).toEqual({ credentials: [null, null], problems: [] })
    expect(credentialsByUpstream(entries, new Map([['example.com', 'x']])).problems).toEqual([
      { setting: 'UPSTREAM_CREDENTIALS', path: '[key 1]', message: expect.stringMatching(/^names no upstream of UPSTREAMS/) },
    ])
  })

  it('an ambiguous key fails closed: every request answers 500, and no credential is sent anywhere', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {})
    const fetch = vi.spyOn(globalThis, 'fetch')
    const settings = {
      UPSTREAMS: JSON.stringify([{ prefix: 'gh2', url: UPSTREAM }, { ns: ['upstream.test'], url: 'http://127.0.0.1:5073' }]),
      UPSTREAM_CREDENTIALS: JSON.stringify({ 'upstream.test': 'ghuser:ghp_secret' }),
    }
    const { res } = await get(settings, '/v2/org/app/manifests/latest?ns=upstream.test')
    expect(res.status).toBe(500)
    expect(fetch).not.toHaveBeenCalled()
    expect(log.mock.calls[0]?.[0]).toMatchObject({ event: 'misconfigured', problems: [expect.stringMatching(/^UPSTREAM_CREDENTIALS\["upstream\.test"\]: is ambiguous/)] })
  })
})

describe('which upstream a request goes to', () => {
  const list = env([
    { prefix: 'hub', url: 'https://registry-1.docker.io', dockerHubLibrary: true, ns: ['docker.io'] },
    { prefix: 'quay', host: 'mirror.test', url: 'https://quay.io', ns: ['quay.io'] },
  ])
  const at = (url: string, name: string) => {
    const t = resolveTarget(list, new URL(url), name)
    return t && { upstream: t.upstream.namespace, remote: t.remote, local: t.local, ns: t.ns }
  }

  it('by prefix, with Docker Hub\'s library/ for one-component names', () => {
    expect(at('https://r.test/v2/', 'hub/nginx')).toEqual({ upstream: 'hub', remote: 'library/nginx', local: 'hub/library/nginx', ns: null })
    expect(at('https://r.test/v2/', 'hub/library/nginx')).toEqual({ upstream: 'hub', remote: 'library/nginx', local: 'hub/library/nginx', ns: null })
    expect(at('https://r.test/v2/', 'quay/org/app')).toEqual({ upstream: 'quay', remote: 'org/app', local: 'quay/org/app', ns: null })
  })

  it('by host: the whole name is the upstream\'s', () => {
    expect(at('https://mirror.test/v2/', 'org/app')).toEqual({ upstream: 'quay', remote: 'org/app', local: 'quay/org/app', ns: null })
  })

  it('by host, also when the host is fully qualified (a trailing dot) or in capitals', () => {
    expect(at('https://mirror.test./v2/', 'org/app')).toMatchObject({ upstream: 'quay', local: 'quay/org/app' })
    expect(at('https://MIRROR.test/v2/', 'org/app')).toMatchObject({ upstream: 'quay', local: 'quay/org/app' })
  })

  it('by ns, before host and prefix; an unknown ns is ignored', () => {
    expect(at('https://mirror.test/v2/?ns=docker.io', 'nginx')).toEqual({ upstream: 'hub', remote: 'library/nginx', local: 'hub/library/nginx', ns: 'docker.io' })
    expect(at('https://r.test/v2/?ns=ghcr.io', 'org/app')).toBeNull()
    expect(at('https://r.test/v2/', 'hubble/app')).toBeNull()
  })
})

describe('cacheRetention', () => {
  it('names the repositories and days of every upstream with cacheDays', () => {
    const e = env([
      { prefix: 'hub', url: 'https://registry-1.docker.io', cacheDays: 14 },
      { prefix: 'ghcr', url: 'https://ghcr.io' },
      { host: 'mirror.test', url: 'https://quay.io', cacheDays: 3 },
    ])
    expect(cacheRetention(e)).toEqual([{ repos: 'hub/*', days: 14 }, { repos: 'mirror.test/*', days: 3 }])
  })

  it('is empty without UPSTREAMS', () => {
    expect(cacheRetention({} as Env)).toEqual([])
  })
})

describe('a proxied namespace', () => {
  it('is not local: an unproxied repository with a similar name stays local', async () => {
    const { res, body } = await get(upstreams({ prefix: 'hub', url: UPSTREAM }), '/v2/hubble/app/tags/list')
    expect(res.status).toBe(404)
    expect(JSON.parse(new TextDecoder().decode(body)).errors[0].code).toBe('NAME_UNKNOWN')
  })
})
