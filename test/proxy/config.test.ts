/** UPSTREAMS and UPSTREAM_CREDENTIALS (src/proxy/config.ts). */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { cacheRetention, parseUpstreams, resolveTarget } from '../../src/proxy/config'
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
    expect(String(log.mock.calls[0]?.[0])).toMatch(/UPSTREAMS\[0\]\.url/)
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
