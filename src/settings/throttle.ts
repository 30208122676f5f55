/**
 * Throttling settings (docs/settings.md, docs/operating.md "Throttling"). How many failed sign-ins
 * or anonymous pulls a period allows is the Rate Limiting bindings' own `simple = { limit, period }`
 * in wrangler.toml (the binding takes only a key at runtime); these say what happens around them.
 *
 * - THROTTLE_RETRY_SECONDS: how long an address or user name past a sign-in limit is refused
 *   before any password check, and the Retry-After of every 429. At least the bindings' period
 *   (60 s as shipped), so the limit has passed when the client comes back.
 * - THROTTLE_ANONYMOUS_PULLS: "true" limits anonymous manifest GETs per client address
 *   (ANONYMOUS_PULLS_BY_ADDRESS), Docker Hub style; off by default.
 */
import * as v from 'valibot'
import type { Env } from '../env'

export const THROTTLE_RETRY_SECONDS = v.pipe(
  v.optional(v.string(), '60'),
  v.trim(),
  v.regex(/^\d+$/, 'must be a whole number of seconds'),
  v.transform(Number),
  v.minValue(1, 'must be at least 1'),
  v.maxValue(86400, 'must be at most 86400 (a day)'),
)

export const THROTTLE_ANONYMOUS_PULLS = v.pipe(
  v.optional(v.string(), 'false'),
  v.trim(),
  v.picklist(['true', 'false'], 'must be "true" or "false"'),
  v.transform((s) => s === 'true'),
)

/** The throttle settings, parsed. */
export interface ThrottleSettings {
  retrySeconds: number
  anonymousPulls: boolean
}

const SCHEMAS = { THROTTLE_RETRY_SECONDS, THROTTLE_ANONYMOUS_PULLS } as const

let memo: { inputs: (string | undefined)[]; value: ThrottleSettings } | null = null

/** THROTTLE_*, parsed once per isolate (again only when they change); a bad value throws an Error naming it. CPU only. */
export function throttleSettings(env: Env): ThrottleSettings {
  const inputs = [env.THROTTLE_RETRY_SECONDS, env.THROTTLE_ANONYMOUS_PULLS]
  if (memo && memo.inputs.every((x, i) => x === inputs[i])) return memo.value
  const value = {
    retrySeconds: parse('THROTTLE_RETRY_SECONDS', env.THROTTLE_RETRY_SECONDS),
    anonymousPulls: parse('THROTTLE_ANONYMOUS_PULLS', env.THROTTLE_ANONYMOUS_PULLS),
  }
  memo = { inputs, value }
  return value
}

function parse<K extends keyof typeof SCHEMAS>(name: K, input: string | undefined): v.InferOutput<(typeof SCHEMAS)[K]> {
  const result = v.safeParse(SCHEMAS[name], input)
  // Never the value: the message says what is wrong with it.
  if (!result.success) throw new Error(`${name}: ${result.issues[0].message}`)
  return result.output as v.InferOutput<(typeof SCHEMAS)[K]>
}
