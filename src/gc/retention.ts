/**
 * RETENTION: which tags and untagged manifests the collector removes, per repository pattern.
 *
 *   RETENTION = '[{"repos": "ci/*", "keepLast": 20, "keep": ["v*", "latest"], "olderThanDays": 30, "untaggedDays": 7}]'
 *
 * - `repos`: a pattern or list (AUTH_RULES syntax: `*` = one or more characters, `/` included);
 *   the first rule matching a repository applies to it.
 * - `keepLast`: keep the newest N tags by push time; older ones are dropped.
 * - `keep`: tag patterns never dropped by this rule.
 * - `olderThanDays`: drop tags pushed more than D days ago.
 * - `untaggedDays`: remove manifests no tag reaches once older than D days (even without --untagged).
 * Tags without a push time (written before it was recorded) are never dropped. Tags matching
 * IMMUTABLE_TAGS are never dropped either: immutable means nobody moves or deletes them.
 */
import type { Env } from '../env'
import { globMatch } from '../glob'
import { cacheRetention } from '../proxy/config'
import { parseSetting, settings, type Settings } from '../settings'
import type { RetentionRule } from '../settings/gc'

export type { RetentionRule } from '../settings/gc'

const joined = new WeakMap<Settings, RetentionRule[]>()

/**
 * Every retention rule the collector applies (RETENTION; the proxy cache's `cacheRetention`
 * joins here, CONTRACTS.md 4). Throws a SettingsError when a setting is bad.
 */
export function retentionRules(env: Env): RetentionRule[] {
  const s = settings(env)
  let rules = joined.get(s)
  if (rules) return rules
  // A pull-through cache's `cacheDays`: its tags are dropped once not validated with the upstream
  // for that long, and so are its untagged manifests. After RETENTION (the first matching rule
  // applies): an operator's explicit rule for a proxied namespace wins over the implicit one.
  const cache = cacheRetention(env).map(({ repos, days }): RetentionRule => ({
    name: `UPSTREAMS cacheDays (${repos})`,
    repos: [repos],
    olderThanDays: days,
    untaggedDays: days,
  }))
  rules = [...s.RETENTION, ...cache]
  joined.set(s, rules)
  return rules
}

/** Parses RETENTION alone (src/settings/gc.ts); throws a SettingsError naming each problem. */
export const parseRetention = (json: string | undefined): RetentionRule[] => parseSetting('RETENTION', json)

/** The rule for a repository (the first that matches), or null. */
export function ruleFor(rules: RetentionRule[], repo: string): RetentionRule | null {
  return rules.find((r) => r.repos.some((p) => globMatch(p, repo))) ?? null
}

export interface TagAge {
  tag: string
  /** ms since epoch; undefined when unknown. */
  pushed?: number
}

const DAY = 86_400_000

/** Tags the rule drops, each with the rule (and clause) that drops it. CPU only. */
export function tagsToDrop(
  rule: RetentionRule,
  tags: TagAge[],
  now: number,
  isImmutable: (tag: string) => boolean,
): { tag: string; rule: string }[] {
  const candidates = tags.filter((t) => t.pushed !== undefined && !isImmutable(t.tag) && !rule.keep?.some((p) => globMatch(p, t.tag)))
  const drops = new Map<string, string>()
  if (rule.olderThanDays !== undefined) {
    for (const t of candidates) if (now - t.pushed! > rule.olderThanDays * DAY) drops.set(t.tag, `${rule.name}.olderThanDays=${rule.olderThanDays}`)
  }
  if (rule.keepLast !== undefined) {
    // Newest first among every dated tag (kept ones count toward N too: "keep the newest N").
    const dated = tags.filter((t) => t.pushed !== undefined).sort((a, b) => b.pushed! - a.pushed! || (a.tag < b.tag ? -1 : 1))
    const newest = new Set(dated.slice(0, rule.keepLast).map((t) => t.tag))
    for (const t of candidates) if (!newest.has(t.tag) && !drops.has(t.tag)) drops.set(t.tag, `${rule.name}.keepLast=${rule.keepLast}`)
  }
  return [...drops].map(([tag, r]) => ({ tag, rule: r }))
}
