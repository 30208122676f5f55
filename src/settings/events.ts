/**
 * The events settings (docs/events.md), as valibot schemas named for the settings:
 *
 *   NOTIFICATIONS = '[{"name": "ci", "url": "https://ci.example.com/hooks/registry",
 *                      "actions": ["push"], "repos": "team-a/*", "tags": ["v*", "latest"]}]'
 *   NOTIFICATION_SECRETS (secret) = '{"ci": "whsec_<base64 key>"}'
 *   PULL_STATS = "true"
 *
 * `notificationSettings(env)` reads them (memoized on their text) and throws an Error naming the
 * setting and the path (`NOTIFICATIONS[2].url: …`), never a secret's value: a bad setting fails
 * closed, like the others. Every endpoint needs a secret (deliveries are always signed).
 */
import * as v from 'valibot'
import type { Env } from '../env'

/** What can happen (distribution's event actions). */
export const EVENT_ACTIONS = ['push', 'pull', 'mount', 'delete'] as const
export type EventAction = (typeof EVENT_ACTIONS)[number]
/** An endpoint's `actions` when it names none: everything but pulls (there are many). */
export const DEFAULT_ACTIONS: readonly EventAction[] = ['push', 'mount', 'delete']

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/
/** AUTH_RULES' repository patterns: `*` = one or more characters, `/` included. */
const REPO_PATTERN = /^[a-z0-9._\/*-]{1,255}$/
/** RETENTION's and IMMUTABLE_TAGS' tag patterns. */
const TAG_PATTERN = /^[A-Za-z0-9_.*-]{1,128}$/
const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+*-]{1,127}\/[A-Za-z0-9!#$&^_.+*-]{1,127}$/
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/
/** Headers the delivery sets itself: a static header may not replace them. */
const RESERVED_HEADERS = /^(content-type|content-length|host|user-agent|webhook-.*|transfer-encoding|connection)$/i

/** One pattern or a list of them. */
const patterns = (re: RegExp, what: string) =>
  v.pipe(
    v.union([v.string(), v.array(v.string())], `must be ${what} or a list of them`),
    v.transform((x) => (typeof x === 'string' ? [x] : x)),
    v.minLength(1, `must name at least one ${what}`),
    v.check((list) => list.every((p) => re.test(p)), `must be ${what} or a list of them`),
  )

/** https, or http only to this machine (a local receiver under `npm start`). */
function deliverable(url: string): boolean {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return false
  }
  if (u.username || u.password) return false
  if (u.protocol === 'https:') return true
  return u.protocol === 'http:' && (u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname))
}

/** One endpoint of NOTIFICATIONS. */
export const NotificationEndpoint = v.strictObject(
  {
    name: v.pipe(v.string('must be a string'), v.regex(NAME, 'must be a-z 0-9 _ - (up to 63, starting with a letter or digit)')),
    url: v.pipe(
      v.string('must be a string'),
      v.check(deliverable, 'must be an https URL (http only on localhost or 127.0.0.1), without user:password (use "headers")'),
    ),
    format: v.optional(v.picklist(['distribution', 'cloudevents'], 'must be "distribution" or "cloudevents"'), 'distribution'),
    actions: v.optional(
      v.pipe(v.array(v.picklist(EVENT_ACTIONS, `must be a list of ${EVENT_ACTIONS.join(', ')}`)), v.minLength(1, 'must not be empty')),
      [...DEFAULT_ACTIONS],
    ),
    repos: v.optional(patterns(REPO_PATTERN, 'a repository pattern (a-z 0-9 . _ - / *)')),
    tags: v.optional(patterns(TAG_PATTERN, 'a tag pattern (A-Z a-z 0-9 _ . - *)')),
    mediaTypes: v.optional(patterns(MEDIA_TYPE, 'a media type (type/subtype, * allowed)')),
    headers: v.optional(
      v.pipe(
        v.record(
          v.pipe(v.string(), v.regex(HEADER_NAME, 'is not a header name'), v.check((h) => !RESERVED_HEADERS.test(h), 'is set by the delivery itself')),
          v.pipe(v.string('must be a string'), v.regex(/^[^\r\n]{0,4096}$/, 'must be one line')),
        ),
      ),
      {},
    ),
    timeoutSeconds: v.optional(v.pipe(v.number('must be a number'), v.integer('must be whole'), v.minValue(1, 'must be 1 to 30'), v.maxValue(30, 'must be 1 to 30')), 10),
    /** Queues allow 100 retries of a message; one is kept for the dead-letter step. */
    maxRetries: v.optional(v.pipe(v.number('must be a number'), v.integer('must be whole'), v.minValue(0, 'must be 0 to 99'), v.maxValue(99, 'must be 0 to 99')), 10),
  },
  (issue) => `unknown field "${String(issue.input === undefined ? issue.expected : issue.received)}"`,
)
export type Endpoint = v.InferOutput<typeof NotificationEndpoint>

/** NOTIFICATIONS (parsed JSON): the endpoints, names unique. */
export const NOTIFICATIONS = v.pipe(
  v.array(NotificationEndpoint, 'must be a JSON array of endpoints'),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return
    const seen = new Set<string>()
    dataset.value.forEach((e, i) => {
      if (seen.has(e.name)) {
        addIssue({ message: `the name "${e.name}" is used twice`, path: [{ type: 'array', origin: 'value', input: dataset.value, key: i, value: e }] })
      }
      seen.add(e.name)
    })
  }),
)

/** A Standard Webhooks key: `whsec_` and the base64 of 24 to 64 random bytes. */
const WEBHOOK_SECRET = v.pipe(
  v.string('must be a string'),
  v.check((s) => keyBytes(s) !== null, 'must be "whsec_" followed by the base64 of 24 to 64 bytes'),
)

/** NOTIFICATION_SECRETS (parsed JSON, a secret): `{"<endpoint name>": "whsec_…"}`. */
export const NOTIFICATION_SECRETS = v.record(v.pipe(v.string(), v.regex(NAME, 'is not an endpoint name')), WEBHOOK_SECRET, 'must be a JSON object')

/** PULL_STATS: "true" or "false" (default). */
export const PULL_STATS = v.optional(v.picklist(['true', 'false', ''], 'must be "true" or "false"'), 'false')

/** The key bytes of a `whsec_` secret, or null when it is not one. */
export function keyBytes(secret: string): Uint8Array | null {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret)
  if (!m) return null
  let raw: string
  try {
    raw = atob(m[1]!)
  } catch {
    return null
  }
  if (raw.length < 24 || raw.length > 64) return null
  return Uint8Array.from(raw, (c) => c.charCodeAt(0))
}

export interface NotificationSettings {
  endpoints: Endpoint[]
  /** Key bytes per endpoint name. */
  keys: Map<string, Uint8Array>
  pullStats: boolean
}

let memo: { input: string; value: NotificationSettings } | null = null

/** NOTIFICATIONS, NOTIFICATION_SECRETS and PULL_STATS, checked; throws an Error naming what is wrong. */
export function notificationSettings(env: Env): NotificationSettings {
  const input = JSON.stringify([env.NOTIFICATIONS ?? '', env.NOTIFICATION_SECRETS ?? '', env.PULL_STATS ?? ''])
  if (memo?.input === input) return memo.value
  const endpoints = parseSetting('NOTIFICATIONS', env.NOTIFICATIONS, '[]', NOTIFICATIONS)
  const secrets = parseSetting('NOTIFICATION_SECRETS', env.NOTIFICATION_SECRETS, '{}', NOTIFICATION_SECRETS)
  const stats = v.safeParse(PULL_STATS, env.PULL_STATS?.trim() ?? '')
  if (!stats.success) throw new Error(`PULL_STATS: ${stats.issues[0].message}`)
  const keys = new Map<string, Uint8Array>()
  endpoints.forEach((e, i) => {
    const secret = secrets[e.name]
    if (secret === undefined) throw new Error(`NOTIFICATIONS[${i}].name: "${e.name}" has no key in NOTIFICATION_SECRETS (deliveries are signed)`)
    keys.set(e.name, keyBytes(secret)!)
  })
  for (const name of Object.keys(secrets)) {
    if (!keys.has(name)) throw new Error(`NOTIFICATION_SECRETS.${name}: no endpoint of NOTIFICATIONS is named "${name}"`)
  }
  if (endpoints.length > 0 && !env.EVENTS) throw new Error('NOTIFICATIONS: the EVENTS queue binding is missing (wrangler.toml [[queues.producers]])')
  const pullStats = stats.output === 'true'
  if (pullStats && !env.PULLS) throw new Error('PULL_STATS: the PULLS queue binding is missing (wrangler.toml [[queues.producers]])')
  const value = { endpoints, keys, pullStats }
  memo = { input, value }
  return value
}

/** A JSON setting through its schema; the first problem as `NAME<path>: message`. */
function parseSetting<S extends v.GenericSchema>(name: string, text: string | undefined, empty: string, schema: S): v.InferOutput<S> {
  let json: unknown
  try {
    json = JSON.parse(text?.trim() || empty)
  } catch {
    throw new Error(`${name}: is not valid JSON (expected ${empty === '[]' ? 'a JSON array' : 'a JSON object'})`)
  }
  const result = v.safeParse(schema, json)
  if (result.success) return result.output
  const issue = result.issues[0]
  const path = (issue.path ?? []).map((p) => (typeof p.key === 'number' ? `[${p.key}]` : `.${String(p.key)}`)).join('')
  // A bad record key is reported by its key; no value of a secret is ever quoted.
  return fail(`${name}${path}: ${issue.message}`)
}

function fail(message: string): never {
  throw new Error(message)
}
