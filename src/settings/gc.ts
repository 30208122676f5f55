/**
 * The collector's settings (docs/garbage-collection.md): its timing (GC_*), what it removes
 * (RETENTION), and the tags nobody moves or deletes (IMMUTABLE_TAGS). src/gc/ applies them.
 */
import * as v from 'valibot'
import { count, type CrossCheck, fields, flag, jsonSetting, repoPatterns, TAG_PATTERN, tagPatterns, wholeNumber } from './values'

/** Below this grace only with GC_TEST_SHORT_GRACE. */
export const GRACE_FLOOR_SECONDS = 3600
/** KV propagation (about 60 s) + the link cache (LINK_CACHE_SECONDS) + the longest manifest PUT, with margin. */
export const SETTLE_FLOOR_SECONDS = 300

export const GC_GRACE_SECONDS = wholeNumber({
  fallback: 86400,
  min: 0,
  description: `Nothing younger than this many seconds is collected (≥ ${GRACE_FLOOR_SECONDS} unless GC_TEST_SHORT_GRACE)`,
  message: 'must be a whole number of seconds',
})

export const GC_SETTLE_SECONDS = wholeNumber({
  fallback: SETTLE_FLOOR_SECONDS,
  min: 0,
  description: `Seconds between a collection's mark and its sweep (≥ ${SETTLE_FLOOR_SECONDS} unless GC_TEST_SHORT_GRACE)`,
  message: 'must be a whole number of seconds',
})

export const GC_TEST_SHORT_GRACE = flag(false, '"true" allows GC_GRACE_SECONDS and GC_SETTLE_SECONDS below their floors (tests, local trials; never in production)')

/**
 * GC_MAX_KV_WRITES: how many KV writes, and how many KV deletes, one collection may make
 * (docs/garbage-collection.md, "On the Free plan"). Unset or "": no limit. The Free plan allows
 * 1,000 KV writes and 1,000 KV deletes a day: "900" keeps a daily run within them, and each run
 * collects what its budget covers, repository by repository, leaving the rest to the next.
 */
export const GC_MAX_KV_WRITES = v.pipe(
  v.optional(v.union([v.string(), v.number()], 'must be a whole number ≥ 1, or empty for no limit'), ''),
  v.metadata({ description: 'KV writes (and KV deletes) one collection may make; empty: no limit ("900" on the Free plan)' }),
  v.transform((x) => (typeof x === 'number' ? String(x) : x.trim())),
  v.check((s) => s === '' || /^[1-9][0-9]{0,8}$/.test(s), 'must be a whole number ≥ 1, or empty for no limit'),
  v.transform((s): number | null => (s === '' ? null : Number(s))),
)

type GcTiming = { GC_GRACE_SECONDS: number; GC_SETTLE_SECONDS: number; GC_TEST_SHORT_GRACE: boolean }

/** The floors of GC_GRACE_SECONDS and GC_SETTLE_SECONDS hold unless GC_TEST_SHORT_GRACE lifts them. */
export const gcFloorsKept: CrossCheck<GcTiming> = (s) => {
  if (s.GC_TEST_SHORT_GRACE) return []
  const below = (setting: string, floor: number) => ({ setting, path: '', message: `must be at least ${floor} (below only with GC_TEST_SHORT_GRACE = "true")` })
  return [
    ...(s.GC_GRACE_SECONDS < GRACE_FLOOR_SECONDS ? [below('GC_GRACE_SECONDS', GRACE_FLOOR_SECONDS)] : []),
    ...(s.GC_SETTLE_SECONDS < SETTLE_FLOOR_SECONDS ? [below('GC_SETTLE_SECONDS', SETTLE_FLOOR_SECONDS)] : []),
  ]
}

// ---------------------------------------------------------------- RETENTION

export interface RetentionRule {
  /** `RETENTION[i]`, named in reports. */
  name: string
  repos: string[]
  keepLast?: number
  keep?: string[]
  olderThanDays?: number
  untaggedDays?: number
  /** Keep tags whose manifest was pulled within N days (needs PULL_STATS). */
  pulledWithinDays?: number
  /** Keep the N tags pulled most recently (needs PULL_STATS). */
  keepLastPulled?: number
}

const days = (what: string) => v.optional(count(0, `must be a whole number ${what} ≥ 0`))

const retentionRule = v.pipe(
  v.strictObject(
    {
      repos: repoPatterns(), keepLast: days('of tags'), keep: v.optional(tagPatterns()), olderThanDays: days('of days'), untaggedDays: days('of days'),
      pulledWithinDays: days('of days'), keepLastPulled: days('of tags'),
    },
    fields({
      what: 'an object',
      unknown: 'a rule has repos, keepLast, keep, olderThanDays, untaggedDays, pulledWithinDays, keepLastPulled',
      missing: { repos: 'is required: the repositories the rule is about' },
    }),
  ),
  v.check(
    (r) => r.keepLast !== undefined || r.olderThanDays !== undefined || r.untaggedDays !== undefined,
    'removes nothing (give keepLast, olderThanDays or untaggedDays; pulledWithinDays and keepLastPulled only keep)',
  ),
)

export const RETENTION = jsonSetting(
  v.pipe(
    v.array(retentionRule, 'must be a JSON array of rules'),
    v.transform((list) =>
      list.map((r, i): RetentionRule => {
        const out: RetentionRule = { name: `RETENTION[${i}]`, repos: r.repos }
        // Only the clauses given: an absent one is not a zero.
        for (const k of ['keepLast', 'olderThanDays', 'untaggedDays', 'pulledWithinDays', 'keepLastPulled'] as const) if (r[k] !== undefined) out[k] = r[k]
        if (r.keep !== undefined) out.keep = r.keep
        return out
      }),
    ),
  ),
  { expect: '[', description: 'Retention per repository pattern, applied by the collector (the first matching rule applies)' },
)

/** A rule that keeps by pulls needs pulls counted (PULL_STATS = "true"), or it would keep by nothing. */
export const retentionPullsCounted: CrossCheck<{ RETENTION: RetentionRule[]; PULL_STATS: boolean }> = (s) =>
  s.PULL_STATS
    ? []
    : s.RETENTION.flatMap((r, i) =>
        (['pulledWithinDays', 'keepLastPulled'] as const)
          .filter((k) => r[k] !== undefined)
          .map((k) => ({ setting: 'RETENTION', path: `[${i}].${k}`, message: 'needs PULL_STATS = "true" (pulls are counted only then)' })),
      )

// ---------------------------------------------------------------- IMMUTABLE_TAGS

export interface ImmutableRule {
  /** `IMMUTABLE_TAGS[i]`, named in refusals. */
  name: string
  /** null: every repository. */
  repos: string[] | null
  tags: string[]
}

const IMMUTABLE_MESSAGE = 'must be a tag pattern or {"repos": <patterns>, "tags": <tag patterns>}'

const immutablePattern = v.pipe(v.string(IMMUTABLE_MESSAGE), v.regex(TAG_PATTERN, 'is not a tag pattern (A-Z a-z 0-9 _ . - *)'))
const immutableScoped = v.strictObject(
  { repos: repoPatterns(), tags: tagPatterns() },
  fields({
    what: 'an object',
    unknown: 'an entry has repos and tags',
    missing: { repos: 'is required (a plain tag pattern applies to every repository)', tags: 'is required: the tag patterns' },
  }),
)
const immutableAny = v.union([immutablePattern, immutableScoped], IMMUTABLE_MESSAGE)
/** An entry is read by its type (a pattern, or a scoped object), so a mistake is told against that form. */
const immutableRule = v.lazy((input: unknown) =>
  typeof input === 'string' ? immutablePattern : typeof input === 'object' && input !== null && !Array.isArray(input) ? immutableScoped : immutableAny,
)

export const IMMUTABLE_TAGS = jsonSetting(
  v.pipe(
    v.array(immutableRule, 'must be a JSON array of tag patterns'),
    v.transform((list) =>
      (list as v.InferOutput<typeof immutableAny>[]).map((e, i): ImmutableRule =>
        typeof e === 'string' ? { name: `IMMUTABLE_TAGS[${i}]`, repos: null, tags: [e] } : { name: `IMMUTABLE_TAGS[${i}]`, repos: e.repos, tags: e.tags },
      ),
    ),
  ),
  {
    expect: '[',
    description: 'Tags that may not move or be deleted once set: a JSON list, or comma-separated tag patterns (v*,stable)',
    // The short form: comma-separated tag patterns for every repository (`v*,stable`).
    shortForm: (text) => text.split(',').map((p) => p.trim()),
  },
)
