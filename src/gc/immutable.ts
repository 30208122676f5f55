/**
 * IMMUTABLE_TAGS: tags that, once set, may not move to another manifest nor be deleted.
 *
 *   IMMUTABLE_TAGS = '["v*", {"repos": "prod/*", "tags": ["release-*", "stable"]}]'   or   'v*,stable'
 *
 * A string is a tag pattern for every repository; an object limits patterns to repositories.
 * `*` matches one or more characters (AUTH_RULES syntax). Re-pushing the same manifest to
 * such a tag is allowed (idempotent); moving or deleting it answers 403 DENIED naming the rule.
 */
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { globMatch } from '../glob'
import { parseSetting, settings } from '../settings'
import type { ImmutableRule } from '../settings/gc'

export type { ImmutableRule } from '../settings/gc'

/** The rules of IMMUTABLE_TAGS (src/settings/gc.ts). CPU only. */
export const immutableRules = (env: Env): ImmutableRule[] => settings(env).IMMUTABLE_TAGS

/** Parses IMMUTABLE_TAGS alone; throws a SettingsError naming each problem. */
export const parseImmutable = (json: string | undefined): ImmutableRule[] => parseSetting('IMMUTABLE_TAGS', json)

/** The rule making `tag` of `repo` immutable, as `IMMUTABLE_TAGS[i] "pattern"`, or null. CPU only. */
export function immutableRule(env: Env, repo: string, tag: string): string | null {
  for (const rule of immutableRules(env)) {
    if (rule.repos && !rule.repos.some((p) => globMatch(p, repo))) continue
    const hit = rule.tags.find((p) => globMatch(p, tag))
    if (hit) return `${rule.name} "${hit}"`
  }
  return null
}

/** 403 DENIED, its message naming the rule (docker prints the message). */
export function immutableDenied(repo: string, tag: string, rule: string, what: 'moved' | 'deleted'): RegistryError {
  return new RegistryError('DENIED', { tag, rule }, {}, { message: `tag ${repo}:${tag} is immutable and cannot be ${what} (${rule})` })
}
