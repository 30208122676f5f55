/**
 * The kinds of value a setting holds, as valibot schemas, and the one style of problem they
 * report: `AUTH_RULES[2].repos: must be …`, naming the setting and the path, never the value.
 *
 * A setting arrives as a string (`[vars]`, `--var`, a secret, `.dev.vars`) or, from `[vars]`,
 * as the TOML value itself (`MAX_CHUNK_BYTES = 94371840`, `READ_ONLY = true`, `UPSTREAMS = [{…}]`):
 * the worker then gets a number, a boolean, an array or an object. Every kind takes both.
 * Unset or empty (`READ_ONLY = ""`, `--var READ_ONLY:`) means the default.
 */
import * as v from 'valibot'

/** One thing wrong with the settings, as `<setting><path>: <message>` says it. */
export interface Problem {
  setting: string
  /** `[2].repos`, `.alice`, `[key 2]`, or '' for the value as a whole. */
  path: string
  message: string
  /** A required secret is absent (check-config then says where to set it). */
  missingSecret?: true
}

export const formatProblem = (p: Problem): string => `${p.setting}${p.path}: ${p.message}`

/** A check across settings (index.ts CROSS_CHECKS): the problems it finds in parsed settings. */
export type CrossCheck<S> = (settings: S) => Problem[]

/** Options every schema of a setting may carry into the JSON Schema (docs/settings.schema.json). */
const meta = <T>(description: string, extra: Record<string, unknown> = {}) =>
  v.metadata<T, Record<string, unknown>>({ description, ...extra })

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

/** `"true"` or `"false"` (or a TOML boolean); empty or unset is `fallback`. */
export function flag(fallback: boolean, description: string) {
  const message = 'must be "true" or "false"'
  return v.pipe(
    v.optional(v.union([v.picklist(['true', 'false', '']), v.boolean()], message), fallback ? 'true' : 'false'),
    meta(description),
    v.transform((x): boolean => (x === '' ? fallback : x === true || x === 'true')),
  )
}

/** A whole number, as digits or a TOML integer, at least `min`; empty or unset is `fallback`. */
export function wholeNumber(o: { fallback: number; min: number; description: string; message: string }) {
  return v.pipe(
    v.optional(
      v.union([v.pipe(v.string(), v.regex(/^\s*\d*\s*$/, o.message)), v.pipe(v.number(), v.safeInteger(o.message), v.minValue(o.min, o.message))], o.message),
      String(o.fallback),
    ),
    meta(o.description),
    v.transform((x): number => (typeof x === 'number' ? x : x.trim() === '' ? o.fallback : Number(x))),
    v.safeInteger(o.message),
    v.minValue(o.min, o.message),
  )
}

/** A string, trimmed; empty or unset is ''. */
export function text(description: string) {
  return v.pipe(v.optional(v.string('must be a string'), ''), meta(description), v.trim())
}

/** Marks a JSON setting's schema with the structure it holds (the JSON Schema shows both forms). */
export const JSON_STRUCTURE = Symbol('json structure')

/**
 * A JSON setting: JSON text (what `[vars]` strings, secrets and `.dev.vars` hold) or, in
 * `[vars]`, the same structure written in TOML. Empty or unset is `[]` (`{}` for an object).
 * Text that does not parse is described by its shape, never quoted (secrets hold hashes).
 * `shortForm` reads text that does not start with `expect` (IMMUTABLE_TAGS' `v*,stable`).
 */
export function jsonSetting<const S extends v.GenericSchema>(
  structure: S,
  o: { expect: '[' | '{'; description: string; shortForm?: (text: string) => unknown },
) {
  const what = o.expect === '[' ? 'a JSON array' : 'a JSON object'
  const parse = v.rawTransform<unknown, unknown>(({ dataset, addIssue, NEVER }) => {
    const input = dataset.value
    if (input === undefined) return o.expect === '[' ? [] : {}
    if (typeof input !== 'string') {
      if (o.expect === '[' ? Array.isArray(input) : isRecord(input)) return input
      addIssue({ message: `must be ${what} (or, in wrangler.toml, a TOML ${o.expect === '[' ? 'array' : 'table'})` })
      return NEVER
    }
    const text = input.trim()
    if (text === '') return o.expect === '[' ? [] : {}
    if (o.shortForm && !text.startsWith(o.expect)) return o.shortForm(text)
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      addIssue({ message: `not valid JSON: ${shapeOf(text, o.expect)}` })
      return NEVER
    }
    // `"[…]"`: the quotes became part of the value, and JSON reads it as one string.
    if (typeof parsed === 'string') {
      addIssue({ message: 'not valid JSON: it is wrapped in quotes, which became part of the value' })
      return NEVER
    }
    // valibot's record takes an array as an object keyed "0", "1"…: not what an object setting means.
    if (o.expect === '{' && !isRecord(parsed)) {
      addIssue({ message: `must be ${what}` })
      return NEVER
    }
    return parsed
  })
  const schema = v.pipe(v.optional(v.unknown(), o.expect === '[' ? '[]' : '{}'), meta(o.description), parse, structure)
  return Object.assign(schema, { [JSON_STRUCTURE]: structure })
}

/**
 * What is wrong with JSON text, for a person to fix by looking at how they wrote it: never
 * a character of it (AUTH_USERS holds password hashes).
 */
function shapeOf(v: string, expected: '{' | '['): string {
  // .dev.vars is read by dotenv without variable expansion: inside single quotes every
  // character stays as written, so a `\$` reaches the worker as backslash-dollar.
  if (v.includes('\\$')) {
    return 'it contains \\$ (a backslash before a $). In .dev.vars write each $ as it is, the whole value in single quotes (docs/authentication.md)'
  }
  if (/^(['"`]).*\1$/s.test(v) && v.length >= 2) return 'it is wrapped in quotes, which became part of the value'
  if (!v.startsWith(expected)) return `it does not start with ${expected}`
  try {
    JSON.parse(v)
  } catch (err) {
    // V8's messages may quote the text; keep only where parsing stopped.
    const at = /position (\d+)/.exec(String(err))?.[1]
    return at ? `parsing stops at character ${Number(at) + 1} of ${v.length}` : `it is cut short or malformed (${v.length} characters)`
  }
  return 'it parses'
}

/**
 * The messages of an object with known fields (valibot gives one object schema one message):
 * an unknown field, a missing one, or not an object at all.
 */
export function fields(o: { what: string; unknown: string; missing?: Record<string, string> }) {
  return (issue: v.BaseIssue<unknown>): string => {
    if (issue.expected === 'never') return `unknown field (${o.unknown})`
    // At the time the message is made, a missing field's path is that field alone.
    const key = issue.path?.at(-1)?.key
    if (typeof key === 'string' && issue.expected === `"${key}"`) return o.missing?.[key] ?? 'is required'
    return `must be ${o.what}`
  }
}

/**
 * One item or a non-empty list of them, read as a list. Picked by the input's type (valibot's
 * union would report a failed item as "matches neither"); without an input (the JSON Schema
 * generator) it is both.
 */
export function oneOrMore<const S extends v.GenericSchema>(item: S, message: string) {
  const one = v.pipe(item, v.transform((x): v.InferOutput<S>[] => [x]))
  const list = v.pipe(v.array(item, message), v.minLength(1, message))
  const neither = v.pipe(v.unknown(), v.check<unknown, string>(() => false, message), v.transform((): v.InferOutput<S>[] => []))
  return v.lazy((input: unknown) => (input === undefined ? v.union([one, list]) : typeof input === 'string' ? one : Array.isArray(input) ? list : neither))
}

/** A check across a list's entries: each message `problems` gives for entry i is reported at `[i]`. */
export const eachEntry = <T>(problems: (entry: T, i: number, list: T[]) => string[]) =>
  v.rawCheck<T[]>(({ dataset, addIssue }) => {
    if (!dataset.typed) return
    const list = dataset.value
    list.forEach((entry, i) => {
      for (const message of problems(entry, i, list)) addIssue({ message, path: [{ type: 'array', origin: 'value', input: list, key: i, value: entry }] })
    })
  })

/** A string matching `re` (one message for a wrong type or a mismatch). */
export const matching = (re: RegExp, message: string) => v.pipe(v.string(message), v.regex(re, message))

/** A repository pattern (AUTH_RULES syntax, src/glob.ts): `*` is one or more characters, `/` included. */
export const REPO_PATTERN = /^[a-z0-9._\/*-]{1,255}$/
export const repoPatterns = () =>
  oneOrMore(matching(REPO_PATTERN, 'must be a pattern (a-z 0-9 . _ - / *)'), 'must be a pattern or a non-empty list of patterns (a-z 0-9 . _ - / *)')

/** A tag pattern: the tag grammar plus `*`. */
export const TAG_PATTERN = /^[A-Za-z0-9_.*-]{1,128}$/
export const tagPatterns = () =>
  oneOrMore(matching(TAG_PATTERN, 'must be a tag pattern (A-Z a-z 0-9 _ . - *)'), 'must be a tag pattern or a non-empty list of them (A-Z a-z 0-9 _ . - *)')

/** A whole number ≥ min inside a JSON setting (JSON numbers only). */
export const count = (min: number, message: string) => v.pipe(v.number(message), v.safeInteger(message), v.minValue(min, message))

/**
 * The problems of a failed parse of setting `name` (or of several, `name` null: the first path
 * key is then the setting). `secret`: keys a secret's own key schema refused are not printed.
 */
export function problemsOf(issues: readonly v.BaseIssue<unknown>[], name: string | null, isSecret: (setting: string) => boolean): Problem[] {
  // A key a secret's key rule refused may be anything pasted in the wrong place: counted, not quoted.
  const refused = new Map<unknown, Set<string>>()
  for (const issue of issues) {
    const last = issue.path?.at(-1)
    if (last?.origin === 'key') refused.set(last.input, (refused.get(last.input) ?? new Set()).add(String(last.key)))
  }
  return issues.map((issue) => {
    const path = [...(issue.path ?? [])]
    const setting = name ?? String(path.shift()?.key ?? '?')
    const secret = isSecret(setting)
    let at = ''
    for (const item of path) {
      const key: unknown = item.key
      if (typeof key === 'number') at += `[${key}]`
      else if (secret && refused.get(item.input)?.has(String(key))) at += `[key ${Object.keys(item.input as object).indexOf(String(key)) + 1}]`
      else at += pathKey(String(key))
    }
    return { setting, path: at, message: issue.message }
  })
}

const pathKey = (key: string): string =>
  /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key)}]`

/** The message of an issue no schema gave one: what was expected, never what was received. */
export const fallbackMessage = (issue: v.BaseIssue<unknown>): string =>
  issue.expected ? `must be ${issue.expected}` : `is not valid (${issue.type})`

/** A problem at `[index]` of a list setting (checks across its entries). */
export const at = (setting: string, index: number, message: string, rest = ''): Problem => ({ setting, path: `[${index}]${rest}`, message })
