/**
 * GC_MAX_KV_WRITES: how many KV writes, and how many KV deletes, one collection may make
 * (docs/garbage-collection.md, "On the Free plan"). Unset or "": no limit. The Free plan allows
 * 1,000 KV writes and 1,000 KV deletes a day: "900" keeps a daily run within them, and each run
 * collects what its budget covers, repository by repository, leaving the rest to the next.
 * Read through gcMaxKvWrites (the settings aggregate takes the schema at merge).
 */
import * as v from 'valibot'
import type { Env } from '../env'

export const GC_MAX_KV_WRITES = v.pipe(
  v.optional(v.string(), ''),
  v.trim(),
  v.check((s) => s === '' || /^[1-9][0-9]{0,8}$/.test(s), 'must be a whole number ≥ 1, or empty for no limit'),
  v.transform((s): number | null => (s === '' ? null : Number(s))),
)

/** GC_MAX_KV_WRITES, or null (no limit). Throws an Error naming the setting, never its value, when it is malformed. */
export function gcMaxKvWrites(env: Env): number | null {
  const parsed = v.safeParse(GC_MAX_KV_WRITES, env.GC_MAX_KV_WRITES)
  if (!parsed.success) throw new Error(`GC_MAX_KV_WRITES: ${parsed.issues[0]!.message}`)
  return parsed.output
}
