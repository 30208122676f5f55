/**
 * GET /_health — for monitors and load balancers: 200 `{"r2":"ok","kv":"ok","settings":"ok"}`,
 * or 503 with `"failed"` where storage failed and `"failed: <SETTING>, …"` naming the settings
 * that do not parse (their values never; the log says what is wrong). No auth: it tells nothing
 * about content. Cost: at most 1 R2 head + 1 KV get per location every 10 s (storage/health.ts);
 * the settings are checked each time, CPU only.
 */
import type { IRequest } from 'itty-router'
import type { Env } from '../env'
import { logEvent } from '../log'
import { formatProblem, logMisconfiguration, missingBindings, readSettings } from '../settings'
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
 * The settings that do not parse, by name (src/settings: never their values; the log says what is
 * wrong), and Rate Limiting bindings the settings need but wrangler.toml lacks.
 */
function settingsProblems(env: Env): string[] {
  const s = readSettings(env)
  if (!s.ok) {
    logMisconfiguration(s.problems, { route: '/_health' })
    return [...new Set(s.problems.map((p) => p.setting))]
  }
  const missing = missingBindings(s.settings, (b) => Boolean((env as unknown as Record<string, unknown>)[b]))
  for (const p of missing) logEvent('error', { event: 'settings.invalid', setting: p.setting, message: formatProblem(p) })
  return missing.map((p) => p.setting)
}
