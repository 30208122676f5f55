/**
 * GET /_health (src/routes/health.ts, src/storage/health.ts): what it answers, and what it costs:
 * at most one R2 head and one KV get per location every 10 s, counted on spied bindings.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/env'
import { keys } from '../../src/storage/keys'
import { bindings, callWith } from '../helpers'

/** Bindings whose R2 head and KV get are counted (and may be made to fail or hang). */
function spied(fail: { r2?: 'throw' | 'hang'; kv?: 'throw' } = {}) {
  const calls = { r2: 0, kv: 0, otherR2: 0, otherKv: 0 }
  const BLOBS = new Proxy(bindings.BLOBS, {
    get(target, prop) {
      if (prop === 'head') {
        return (key: string) => {
          calls.r2++
          if (fail.r2 === 'throw') return Promise.reject(new Error('R2 is down'))
          if (fail.r2 === 'hang') return new Promise(() => {})
          return target.head(key)
        }
      }
      calls.otherR2++
      return Reflect.get(target, prop)
    },
  })
  const LINKS = new Proxy(bindings.LINKS, {
    get(target, prop) {
      if (prop === 'get') {
        return (key: string) => {
          calls.kv++
          return fail.kv === 'throw' ? Promise.reject(new Error('KV is down')) : target.get(key)
        }
      }
      calls.otherKv++
      return Reflect.get(target, prop)
    },
  })
  return { calls, env: { BLOBS, LINKS } as Partial<Env> }
}

let n = 0
/** An origin of its own per test: the Cache API keeps probe results per origin (memory per bucket binding, and each spied() is a new one). */
const origin = () => `http://health-${Date.now().toString(36)}-${n++}.test`
const health = async (o: string, overrides: Partial<Env>, method = 'GET') => {
  const res = await callWith(overrides, `${o}/_health`, { method })
  return { res, body: (method === 'HEAD' ? null : await res.json()) as Record<string, string> }
}

afterEach(() => vi.useRealTimers())

describe('GET /_health', () => {
  it('answers 200 {"r2":"ok","kv":"ok","settings":"ok"}, uncached, with one R2 head and one KV get', async () => {
    const { calls, env } = spied()
    const { res, body } = await health(origin(), env)
    expect(res.status).toBe(200)
    expect(body).toEqual({ r2: 'ok', kv: 'ok', settings: 'ok' })
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(calls).toEqual({ r2: 1, kv: 1, otherR2: 0, otherKv: 0 })
  })

  it('probes storage at most once per location every 10 s, however often and however concurrently it is asked', async () => {
    const { calls, env } = spied()
    const o = origin()
    await Promise.all(Array.from({ length: 10 }, () => health(o, env)))
    for (let i = 0; i < 10; i++) expect((await health(o, env)).body).toEqual({ r2: 'ok', kv: 'ok', settings: 'ok' })
    expect(calls).toMatchObject({ r2: 1, kv: 1 })
    // Another host name (a wildcard route) asks the same isolate: nothing more is probed.
    await health(origin(), env)
    expect(calls).toMatchObject({ r2: 1, kv: 1 })
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(Date.now() + 9_000)
    await health(o, env)
    expect(calls).toMatchObject({ r2: 1, kv: 1 })
    vi.setSystemTime(Date.now() + 2_000)
    await health(o, env)
    expect(calls).toMatchObject({ r2: 2, kv: 2 })
  })

  it('takes another isolate\'s recent probe from the location\'s Cache API instead of probing', async () => {
    const { calls, env } = spied()
    const o = origin()
    await caches.default.put(keys.cachedHealth(o), Response.json({ r2: 'ok', kv: 'failed' }, {
      headers: { 'X-Probed-At': String(Date.now() - 3_000), 'Cache-Control': 'max-age=10' },
    }))
    const { res, body } = await health(o, env)
    expect(res.status).toBe(503)
    expect(body).toEqual({ r2: 'ok', kv: 'failed', settings: 'ok' })
    expect(calls).toMatchObject({ r2: 0, kv: 0 })
  })

  it('answers 503 naming what failed: R2', async () => {
    const { env } = spied({ r2: 'throw' })
    const { res, body } = await health(origin(), env)
    expect(res.status).toBe(503)
    expect(body).toEqual({ r2: 'failed', kv: 'ok', settings: 'ok' })
  })

  it('answers 503 naming what failed: KV, and remembers the failure as long as a success (no probe storm)', async () => {
    const { calls, env } = spied({ kv: 'throw' })
    const o = origin()
    for (let i = 0; i < 5; i++) {
      const { res, body } = await health(o, env)
      expect(res.status).toBe(503)
      expect(body).toEqual({ r2: 'ok', kv: 'failed', settings: 'ok' })
    }
    expect(calls).toMatchObject({ r2: 1, kv: 1 })
  })

  it('fails a probe that does not answer in 5 s, instead of hanging', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const { env } = spied({ r2: 'hang' })
    const pending = health(origin(), env)
    await vi.advanceTimersByTimeAsync(5_100)
    const { res, body } = await pending
    expect(res.status).toBe(503)
    expect(body).toEqual({ r2: 'failed', kv: 'ok', settings: 'ok' })
  })

  it('answers 503 naming a setting that does not parse, never its value', async () => {
    const { res, body } = await health(origin(), { RETENTION: '[{"repos": "ci/*", "keepLast": "sEcReT-VaLuE"}]', AUTH_MODE: 'token' })
    expect(res.status).toBe(503)
    expect(body).toMatchObject({ r2: 'ok', kv: 'ok' })
    expect(body.settings).toMatch(/^failed: /)
    expect(body.settings).toContain('RETENTION')
    expect(body.settings).toContain('AUTH_TOKEN_SECRET')
    expect(JSON.stringify(body)).not.toContain('sEcReT')
  })

  it('answers 503 when token auth is on and a sign-in throttle binding is missing', async () => {
    const { body } = await health(origin(), {
      AUTH_MODE: 'token', AUTH_TOKEN_SECRET: 'x'.repeat(40), SIGNIN_FAILURES_BY_USER: undefined,
    })
    expect(body).toEqual({ r2: 'ok', kv: 'ok', settings: 'failed: SIGNIN_FAILURES_BY_USER' })
  })

  it('answers HEAD with the status alone', async () => {
    const { res } = await health(origin(), {}, 'HEAD')
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('')
  })
})
