/**
 * The collector's timing: GC_GRACE_SECONDS, GC_SETTLE_SECONDS (and GC_TEST_SHORT_GRACE, which
 * lifts their floors), parsed and checked by src/settings/gc.ts.
 */
import type { Env } from '../env'
import { settings } from '../settings'

export interface GcConfig {
  /** Nothing younger than this is collected. */
  graceMs: number
  /** Time between a run's mark and its sweep (docs/garbage-collection.md: the protocol). */
  settleMs: number
}

/** CPU only; throws a SettingsError when a setting is bad. */
export function gcConfig(env: Env): GcConfig {
  const s = settings(env)
  return { graceMs: s.GC_GRACE_SECONDS * 1000, settleMs: s.GC_SETTLE_SECONDS * 1000 }
}
