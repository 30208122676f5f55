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
import { globMatch } from '../auth/rules'

interface ImmutableRule {
  name: string
  repos: string[] | null
  tags: string[]
}

const PATTERN = /^[a-z0-9._\/*-]{1,255}$/
const TAG_PATTERN = /^[A-Za-z0-9_.*-]{1,128}$/

let memo: { input: string | undefined; rules: ImmutableRule[] } | null = null

export function immutableRules(env: Env): ImmutableRule[] {
  if (memo && memo.input === env.IMMUTABLE_TAGS) return memo.rules
  const rules = parseImmutable(env.IMMUTABLE_TAGS)
  memo = { input: env.IMMUTABLE_TAGS, rules }
  return rules
}

export function parseImmutable(json: string | undefined): ImmutableRule[] {
  const text = json?.trim() || '[]'
  // The short form: comma-separated tag patterns for every repository (`v*,stable`).
  if (!text.startsWith('[')) return parseImmutable(JSON.stringify(text.split(',').map((p) => p.trim())))
  let input: unknown
  try {
    input = JSON.parse(text)
  } catch {
    throw new Error('IMMUTABLE_TAGS is not valid JSON')
  }
  if (!Array.isArray(input)) throw new Error('IMMUTABLE_TAGS must be a JSON array of tag patterns')
  const list = (v: unknown): unknown => (typeof v === "string" ? [v] : v)
  return input.map((entry: unknown, i) => {
    const name = `IMMUTABLE_TAGS[${i}]`
    if (typeof entry === 'string') {
      if (!TAG_PATTERN.test(entry)) throw new Error(`${name} is not a tag pattern`)
      return { name, repos: null, tags: [entry] }
    }
    const e = entry as Record<string, unknown>
    const repos = list(e?.repos)
    const tags = list(e?.tags)
    if (!Array.isArray(repos) || !repos.every((p) => typeof p === 'string' && PATTERN.test(p))) throw new Error(`${name}.repos must be a pattern or a list of patterns`)
    if (!Array.isArray(tags) || !tags.every((p) => typeof p === 'string' && TAG_PATTERN.test(p))) throw new Error(`${name}.tags must be a tag pattern or a list of them`)
    return { name, repos: repos as string[], tags: tags as string[] }
  })
}

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
