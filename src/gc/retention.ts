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
 * - `pulledWithinDays`: keep, whatever the clauses above say, tags whose manifest was pulled
 *   within the last N days (Harbor's "pulled within", ECR's `sinceImagePulled`).
 * - `keepLastPulled`: keep, likewise, the N tags pulled most recently.
 * The two pull clauses only keep (they need PULL_STATS = "true": pulls are counted only then);
 * a rule still needs a clause that drops. Tags without a push time (written before it was
 * recorded) are never dropped. Tags matching IMMUTABLE_TAGS are never dropped either: immutable
 * means nobody moves or deletes them.
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

/** Whether a rule keeps tags by their pulls (the collector then reads the repository's pull statistics). */
export const usesPulls = (rule: RetentionRule): boolean => rule.pulledWithinDays !== undefined || rule.keepLastPulled !== undefined

export interface TagAge {
  tag: string
  /** ms since epoch; undefined when unknown. */
  pushed?: number
  /** When its manifest was last pulled (PULL_STATS), ms since epoch; undefined: never (or not counted). */
  lastPulled?: number
}

const DAY = 86_400_000

/** A tag and the rule clause that drops or keeps it, as the report names it. */
export interface RuledTag {
  tag: string
  rule: string
}

/**
 * What the rule does to a repository's tags: those it drops, and those a pull clause kept from
 * being dropped (the dry run names both). CPU only.
 */
export function applyRetention(
  rule: RetentionRule,
  tags: TagAge[],
  now: number,
  isImmutable: (tag: string) => boolean,
): { drop: RuledTag[]; keptByPulls: RuledTag[] } {
  const drops = tagsToDrop(rule, tags, now, isImmutable)
  const keptByPulls: RuledTag[] = []
  const pulled = new Map(tags.map((t) => [t.tag, t.lastPulled]))
  const recent = new Set<string>()
  if (rule.keepLastPulled !== undefined) {
    // Most recently pulled first; never-pulled tags are not ranked.
    const ranked = tags.filter((t) => t.lastPulled !== undefined).sort((a, b) => b.lastPulled! - a.lastPulled! || (a.tag < b.tag ? -1 : 1))
    for (const t of ranked.slice(0, rule.keepLastPulled)) recent.add(t.tag)
  }
  const drop = drops.filter((d) => {
    const last = pulled.get(d.tag)
    if (rule.pulledWithinDays !== undefined && last !== undefined && now - last <= rule.pulledWithinDays * DAY) {
      keptByPulls.push({ tag: d.tag, rule: `${rule.name}.pulledWithinDays=${rule.pulledWithinDays} (last pulled ${new Date(last).toISOString()})` })
      return false
    }
    if (recent.has(d.tag)) {
      keptByPulls.push({ tag: d.tag, rule: `${rule.name}.keepLastPulled=${rule.keepLastPulled} (last pulled ${new Date(last!).toISOString()})` })
      return false
    }
    return true
  })
  return { drop, keptByPulls }
}

/** Tags the push-time clauses drop, each with the rule (and clause) that drops it. CPU only. */
export function tagsToDrop(
  rule: RetentionRule,
  tags: TagAge[],
  now: number,
  isImmutable: (tag: string) => boolean,
): RuledTag[] {
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
