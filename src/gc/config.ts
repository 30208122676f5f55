/**
 * The collector's settings: GC_GRACE_SECONDS, GC_SETTLE_SECONDS, GC_TEST_SHORT_GRACE.
 * A bad value fails closed with an Error naming the setting.
 */
import type { Env } from '../env'

export interface GcConfig {
  /** Nothing younger than this is collected. */
  graceMs: number
  /** Time between a run's mark and its sweep (docs/garbage-collection.md: the protocol). */
  settleMs: number
}

const HOUR = 3600
/** KV propagation (about 60 s) + the link cache (LINK_CACHE_SECONDS) + the longest manifest PUT, with margin. */
const SETTLE_FLOOR = 300

export function gcConfig(env: Env): GcConfig {
  const short = env.GC_TEST_SHORT_GRACE === 'true'
  const grace = seconds(env.GC_GRACE_SECONDS, 86400, 'GC_GRACE_SECONDS')
  if (grace < HOUR && !short) throw new Error(`GC_GRACE_SECONDS must be at least ${HOUR} (below only with GC_TEST_SHORT_GRACE = "true")`)
  const settle = seconds(env.GC_SETTLE_SECONDS, SETTLE_FLOOR, 'GC_SETTLE_SECONDS')
  if (settle < SETTLE_FLOOR && !short) throw new Error(`GC_SETTLE_SECONDS must be at least ${SETTLE_FLOOR} (below only with GC_TEST_SHORT_GRACE = "true")`)
  return { graceMs: grace * 1000, settleMs: settle * 1000 }
}

function seconds(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value.trim() === '') return fallback
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a whole number of seconds`)
  return n
}
