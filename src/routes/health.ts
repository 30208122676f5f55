/**
 * GET /_health — for monitors and load balancers: 200 `{"r2":"ok","kv":"ok","settings":"ok"}`,
 * or 503 with `"failed"` where storage failed and `"failed: <SETTING>, …"` naming the settings
 * that do not parse (their values never; the log says what is wrong). No auth: it tells nothing
 * about content. Cost: at most 1 R2 head + 1 KV get per location every 10 s (storage/health.ts);
 * the settings are checked each time, CPU only.
 */
import type { IRequest } from 'itty-router'
import { authConfig } from '../auth/config'
import { SIGNIN_BINDINGS } from '../auth/throttle'
import { settings, type Env } from '../env'
import { gcConfig } from '../gc/config'
import { immutableRules } from '../gc/immutable'
import { retentionRules } from '../gc/retention'
import { errorFields, logEvent } from '../log'
import { upstreams } from '../proxy/config'
import { throttleSettings } from '../settings/throttle'
import { storageHealth } from '../storage/health'

export async function get(req: IRequest, env: Env): Promise<Response> {
  const storage = await storageHealth(env, new URL(req.url).origin)
  const failed = settingsProblems(env)
  const body = { ...storage, settings: failed.length ? `failed: ${failed.join(', ')}` : 'ok' }
  const ok = body.r2 === 'ok' && body.kv === 'ok' && body.settings === 'ok'
  const init = { status: ok ? 200 : 503, headers: { 'Cache-Control': 'no-store' } }
  return req.method === 'HEAD' ? new Response(null, { ...init, headers: { ...init.headers, 'Content-Type': 'application/json' } }) : Response.json(body, init)
}

/**
 * The settings that do not parse, by name. Each reader throws an Error whose message starts with
 * the setting's name and never holds its value. (When src/settings/ has its one aggregate, this
 * asks it instead.)
 */
function settingsProblems(env: Env): string[] {
  const readers: [string, () => unknown][] = [
    ['settings', () => settings(env)],
    ['AUTH_*', () => authConfig(env)],
    ['UPSTREAMS', () => upstreams(env)],
    ['GC_*', () => gcConfig(env)],
    ['RETENTION', () => retentionRules(env)],
    ['IMMUTABLE_TAGS', () => immutableRules(env)],
    ['THROTTLE_*', () => throttleSettings(env)],
    ['bindings', () => assertBindings(env)],
  ]
  const failed: string[] = []
  for (const [fallback, read] of readers) {
    try {
      read()
    } catch (err) {
      const { message } = errorFields(err)
      const setting = /^[A-Z][A-Z0-9_]*/.exec(message)?.[0] ?? fallback
      logEvent('error', { event: 'settings.invalid', setting, message })
      failed.push(setting)
    }
  }
  return [...new Set(failed)]
}

/** The Rate Limiting bindings the settings rely on (wrangler.toml [[ratelimits]]). */
function assertBindings(env: Env): void {
  // A setting that does not parse is reported on its own above.
  const parsed = <T>(read: () => T): T | null => {
    try {
      return read()
    } catch {
      return null
    }
  }
  const missing = [
    ...(parsed(() => authConfig(env)) ? SIGNIN_BINDINGS.filter((b) => !env[b]) : []),
    ...(parsed(() => throttleSettings(env))?.anonymousPulls && !env.ANONYMOUS_PULLS_BY_ADDRESS ? ['ANONYMOUS_PULLS_BY_ADDRESS'] : []),
  ]
  if (missing.length) throw new Error(`${missing[0]}: missing from wrangler.toml [[ratelimits]]${missing.length > 1 ? ` (and ${missing.slice(1).join(', ')})` : ''}`)
}
