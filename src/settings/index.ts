/**
 * Every setting and secret, described once and parsed in one place: `settings(env)` turns the
 * worker's `Env` into typed settings, once per env object (every request reads them; after
 * the first, a read costs a WeakMap lookup). Nothing here imports a layer above: auth, storage,
 * gc, proxy, routes all read their settings from here.
 *
 * A problem reads `AUTH_RULES[2].repos: must be …`: the setting, the path inside it, what is
 * wrong; never the value (secrets hold hashes and keys; a key of a secret that its own rule
 * refused is counted, `[key 2]`, not quoted). `npm run check-config` reports with the same
 * schemas before a deploy; a bad setting at runtime fails closed (src/http/configured.ts).
 *
 * Adding a setting:
 *   1. Its schema in src/settings/<area>.ts, exported under the setting's name
 *      (`export const MAX_WIDGETS = wholeNumber({…})`; values.ts has the kinds: flag, wholeNumber,
 *      text, jsonSetting …). Its input is the raw value (a string, or a TOML value from [vars]);
 *      its output is what the code reads. Give every failure a message that names no value.
 *   2. One line in VARS (or SECRETS) below. `Settings` and the JSON Schema follow from it.
 *   3. If it depends on another setting, a function in CROSS_CHECKS; if a secret becomes
 *      required by some setting, a line in REQUIRED_SECRETS.
 *   4. Env (src/env.ts), wrangler.toml [vars] with a comment, docs/settings.md, then
 *      `npm run settings-schema` (test/settings/docs.test.ts fails until docs and schema name it).
 */
import * as v from 'valibot'
import type { Env } from '../env'
import { logEvent } from '../log'
import * as auth from './auth'
import * as events from './events'
import * as gc from './gc'
import * as proxy from './proxy'
import * as registry from './registry'
import * as throttle from './throttle'
import * as uploads from './uploads'
import { fallbackMessage, formatProblem, type Problem, problemsOf } from './values'

export { formatProblem, type Problem } from './values'

/** Settings of wrangler.toml `[vars]` (per environment), `--var`, or `.dev.vars` locally. */
export const VARS = {
  DELETE_ENABLED: registry.DELETE_ENABLED,
  SCHEMA1_ENABLED: registry.SCHEMA1_ENABLED,
  MANIFEST_MAX_BYTES: registry.MANIFEST_MAX_BYTES,
  MAX_CHUNK_BYTES: uploads.MAX_CHUNK_BYTES,
  LINK_CACHE_SECONDS: registry.LINK_CACHE_SECONDS,
  READ_ONLY: registry.READ_ONLY,
  AUTH_MODE: auth.AUTH_MODE,
  AUTH_SERVICE: auth.AUTH_SERVICE,
  AUTH_RULES: auth.AUTH_RULES,
  AUTH_OIDC: auth.AUTH_OIDC,
  UPSTREAMS: proxy.UPSTREAMS,
  GC_GRACE_SECONDS: gc.GC_GRACE_SECONDS,
  GC_SETTLE_SECONDS: gc.GC_SETTLE_SECONDS,
  GC_TEST_SHORT_GRACE: gc.GC_TEST_SHORT_GRACE,
  GC_MAX_KV_WRITES: gc.GC_MAX_KV_WRITES,
  RETENTION: gc.RETENTION,
  IMMUTABLE_TAGS: gc.IMMUTABLE_TAGS,
  THROTTLE_RETRY_SECONDS: throttle.THROTTLE_RETRY_SECONDS,
  THROTTLE_ANONYMOUS_PULLS: throttle.THROTTLE_ANONYMOUS_PULLS,
  NOTIFICATIONS: events.NOTIFICATIONS,
  PULL_STATS: events.PULL_STATS,
}

/** Secrets (`wrangler secret put NAME`, or `.dev.vars` locally): never in wrangler.toml, never quoted. */
export const SECRETS = {
  UPLOAD_SECRET: uploads.UPLOAD_SECRET,
  AUTH_USERS: auth.AUTH_USERS,
  AUTH_TOKEN_SECRET: auth.AUTH_TOKEN_SECRET,
  UPSTREAM_CREDENTIALS: proxy.UPSTREAM_CREDENTIALS,
  NOTIFICATION_SECRETS: events.NOTIFICATION_SECRETS,
}

const SCHEMA = v.object({ ...VARS, ...SECRETS })

/** Every setting, parsed: `settings(env).MAX_CHUNK_BYTES` is a number, `.AUTH_RULES` the rules. */
export type Settings = v.InferOutput<typeof SCHEMA>
export type SettingName = keyof typeof VARS | keyof typeof SECRETS

export const SETTING_NAMES = Object.keys({ ...VARS, ...SECRETS }) as SettingName[]
export const isSecret = (name: string): boolean => Object.hasOwn(SECRETS, name)

/**
 * Checks across settings, each run once the settings it reads are valid. The place for any
 * rule that one setting's schema cannot see (the proxy's credentials-to-upstream rule, the
 * collector's floors, OIDC rules naming listed issuers).
 */
const CROSS_CHECKS: { reads: SettingName[]; check: (s: Settings) => Problem[] }[] = [
  { reads: ['AUTH_RULES', 'AUTH_OIDC'], check: auth.oidcIssuersListed },
  { reads: ['UPSTREAMS', 'UPSTREAM_CREDENTIALS'], check: proxy.credentialsNameOneUpstream },
  { reads: ['GC_GRACE_SECONDS', 'GC_SETTLE_SECONDS', 'GC_TEST_SHORT_GRACE'], check: gc.gcFloorsKept },
  { reads: ['RETENTION', 'PULL_STATS'], check: gc.retentionPullsCounted },
  { reads: ['NOTIFICATIONS', 'NOTIFICATION_SECRETS'], check: events.endpointsKeyed },
]

/** Secrets some setting makes necessary: the reason they are needed, or null. */
export const REQUIRED_SECRETS: { secret: keyof typeof SECRETS; reads: SettingName[]; neededBecause: (s: Settings) => string | null }[] = [
  { secret: 'AUTH_TOKEN_SECRET', reads: ['AUTH_MODE'], neededBecause: auth.tokenSecretNeeded },
  { secret: 'NOTIFICATION_SECRETS', reads: ['NOTIFICATIONS'], neededBecause: events.secretsNeeded },
]

/**
 * Bindings some setting makes necessary (wrangler.toml [[ratelimits]], [[queues.producers]]):
 * /_health and check-config name a missing one. Without a sign-in limit's binding that limit is
 * off; without a queue the events settings fail closed (src/settings/events.ts `eventSettings`).
 */
export function missingBindings(
  s: Pick<Settings, 'AUTH_MODE' | 'THROTTLE_ANONYMOUS_PULLS' | 'NOTIFICATIONS' | 'PULL_STATS'>,
  has: (binding: string, kind: 'ratelimit' | 'queue') => boolean,
): Problem[] {
  const needed = [
    ...(s.AUTH_MODE === 'token' ? throttle.SIGNIN_BINDINGS.map((b) => ['ratelimit', b, 'AUTH_MODE is "token" (sign-in throttling)'] as const) : []),
    ...(s.THROTTLE_ANONYMOUS_PULLS ? [['ratelimit', throttle.ANONYMOUS_PULLS_BINDING, 'THROTTLE_ANONYMOUS_PULLS is "true"'] as const] : []),
    ...(s.NOTIFICATIONS.length > 0 ? [['queue', 'EVENTS', 'NOTIFICATIONS names endpoints'] as const, ['queue', 'EVENTS_DLQ', 'NOTIFICATIONS names endpoints'] as const] : []),
    ...(s.PULL_STATS ? [['queue', 'PULLS', 'PULL_STATS is "true"'] as const] : []),
  ]
  const where = { ratelimit: 'wrangler.toml [[ratelimits]]', queue: 'wrangler.toml [[queues.producers]]' }
  return needed.filter(([kind, b]) => !has(b, kind)).map(([kind, b, why]) => ({ setting: b, path: '', message: `missing from ${where[kind]}: ${why}` }))
}

/** The events settings as the events code reads them (endpoints, key bytes, PULL_STATS); throws when a queue is missing. */
export const notificationSettings = (env: Env): events.NotificationSettings => events.eventSettings(env, settings(env))

export type SettingsResult = { ok: true; settings: Settings } | { ok: false; problems: Problem[] }

/**
 * Parses settings from raw values (an Env, or what check-config read from files): every
 * problem, not the first. Absent values are their defaults.
 */
export function parseSettings(values: Readonly<Record<string, unknown>>): SettingsResult {
  const result = v.safeParse(SCHEMA, values, { message: fallbackMessage })
  const problems = result.success ? [] : problemsOf(result.issues, null, isSecret)
  const failed = new Set(problems.map((p) => p.setting))
  // The settings a check reads parsed: their values are in `output` even when others failed.
  const parsed = result.output as Settings
  for (const { secret, reads, neededBecause } of REQUIRED_SECRETS) {
    if (reads.some((r) => failed.has(r)) || failed.has(secret)) continue
    const why = neededBecause(parsed)
    const value = values[secret]
    if (why && (value === undefined || value === '')) problems.push({ setting: secret, path: '', message: `must be set: ${why}`, missingSecret: true })
  }
  // A missing secret is reported once, above: no check reads it as if it were empty.
  for (const p of problems) failed.add(p.setting)
  for (const { reads, check } of CROSS_CHECKS) if (!reads.some((r) => failed.has(r))) problems.push(...check(parsed))
  return problems.length ? { ok: false, problems } : { ok: true, settings: parsed }
}

/** The registry's settings are not valid: every problem, each naming its setting. */
export class SettingsError extends Error {
  constructor(readonly problems: Problem[]) {
    super(problems.map(formatProblem).join('; '))
    this.name = 'SettingsError'
  }

  /** The settings that are wrong, each once (what a client may be told). */
  get settings(): string[] {
    return [...new Set(this.problems.map((p) => p.setting))]
  }
}

const byEnv = new WeakMap<object, SettingsResult>()
const NAMES = SETTING_NAMES
/** The last raw values parsed: a new env object with the same values (a new isolate's request) reuses them. */
let last: { raw: unknown[]; result: SettingsResult } | null = null

/** Strings by value; TOML arrays and tables (JSON vars) may be new objects for the same value. */
const sameValue = (a: unknown, b: unknown): boolean =>
  a === b || (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && JSON.stringify(a) === JSON.stringify(b))

/** The settings of this env, or every problem with them. Parsed once per env object. CPU only. */
export function readSettings(env: Env): SettingsResult {
  const cached = byEnv.get(env)
  if (cached) return cached
  const values = env as unknown as Record<string, unknown>
  const raw = NAMES.map((n) => values[n])
  const result = last && last.raw.every((r, i) => sameValue(r, raw[i])) ? last.result : parseSettings(values)
  last = { raw, result }
  byEnv.set(env, result)
  return result
}

/** The settings of this env; throws a SettingsError naming every problem. CPU only. */
export function settings(env: Env): Settings {
  const result = readSettings(env)
  if (!result.ok) throw new SettingsError(result.problems)
  return result.settings
}

/**
 * One setting alone, from its raw value (no checks across settings): what the modules' own
 * parsers (`parseRules`, `parseRetention` …) are, for tools and tests. Throws a SettingsError.
 */
export function parseSetting<N extends SettingName>(name: N, raw: unknown): Settings[N] {
  const schema = (VARS as Record<string, v.GenericSchema>)[name] ?? (SECRETS as Record<string, v.GenericSchema>)[name]!
  const result = v.safeParse(schema, raw, { message: fallbackMessage })
  if (!result.success) throw new SettingsError(problemsOf(result.issues, name, isSecret))
  return result.output as Settings[N]
}

/**
 * The log line of a misconfigured registry: one structured event naming each problem (never a
 * value), carrying the request's id when there is a request (src/log.ts).
 */
export function logMisconfiguration(problems: readonly Problem[], context: Record<string, unknown> = {}): void {
  logEvent('error', {
    event: 'misconfigured',
    ...context,
    settings: [...new Set(problems.map((p) => p.setting))],
    problems: problems.map(formatProblem),
  })
}
