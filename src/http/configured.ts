/**
 * A layer in front of every route: a registry whose settings do not parse answers every
 * request with 500 UNKNOWN, its message saying the registry is misconfigured and naming the
 * settings (never their values), and logs what is wrong with each (settings/index.ts
 * `logMisconfiguration`). Fail closed: a broken AUTH_RULES must not open the registry, and a
 * broken RETENTION must not wait for the collector to be noticed. CPU only: the settings are
 * parsed once per env object. A missing binding a setting needs is named the same way
 * (`EVENTS: missing from wrangler.toml [[queues.producers]]`).
 */
import type { IRequest } from 'itty-router'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { logMisconfiguration, missingBindings, readSettings, type Problem } from '../settings'

export function assertConfigured(req: IRequest, env: Env): void {
  // /_health names bad settings itself (a 503 a monitor can read), so it must still answer.
  if (new URL(req.url).pathname === '/_health') return
  const s = readSettings(env)
  // A queue the events settings need and wrangler.toml lacks fails closed too (events would be
  // lost); a missing Rate Limiting binding only turns its limit off (/_health names it).
  const problems = s.ok ? missingBindings(s.settings, (b, kind) => kind === 'ratelimit' || (env as unknown as Record<string, unknown>)[b] !== undefined) : s.problems
  if (problems.length === 0) return
  logMisconfiguration(problems, { method: req.method, path: new URL(req.url).pathname })
  throw misconfigured(problems)
}

/** The 500 of a misconfigured registry: docker, podman and skopeo print its message. */
export function misconfigured(problems: readonly Problem[]): RegistryError {
  const names = [...new Set(problems.map((p) => p.setting))]
  return new RegistryError('UNKNOWN', { settings: names }, {}, {
    message: `the registry is misconfigured: ${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} not valid (its operator's log says why; npm run check-config)`,
  })
}
