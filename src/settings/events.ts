/**
 * The events settings (docs/events.md), as valibot schemas named for the settings:
 *
 *   NOTIFICATIONS = '[{"name": "ci", "url": "https://ci.example.com/hooks/registry",
 *                      "actions": ["push"], "repos": "team-a/*", "tags": ["v*", "latest"]}]'
 *   NOTIFICATION_SECRETS (secret) = '{"ci": "whsec_<base64 key>"}'
 *   PULL_STATS = "true"
 *
 * They are parsed with every other setting (src/settings/index.ts): a problem names the setting
 * and the path (`NOTIFICATIONS[2].url: …`), never a secret's value, and a bad one fails closed.
 * Every endpoint needs a secret (deliveries are always signed): `endpointsKeyed` checks both.
 * `notificationSettings(env)` is what the events code reads: endpoints, their key bytes, PULL_STATS.
 */
import * as v from 'valibot'
import type { Env } from '../env'
import { type CrossCheck, flag, jsonSetting } from './values'

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

/** NOTIFICATIONS: the endpoints, names unique. */
export const NOTIFICATIONS = jsonSetting(v.pipe(
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
), { expect: '[', description: 'Webhook endpoints told of pushes, pulls, mounts and deletes (docs/events.md)' })

/** A Standard Webhooks key: `whsec_` and the base64 of 24 to 64 random bytes. */
const WEBHOOK_SECRET = v.pipe(
  v.string('must be a string'),
  v.check((s) => keyBytes(s) !== null, 'must be "whsec_" followed by the base64 of 24 to 64 bytes'),
)

/** NOTIFICATION_SECRETS (a secret): `{"<endpoint name>": "whsec_…"}`. */
export const NOTIFICATION_SECRETS = jsonSetting(
  v.record(v.pipe(v.string(), v.regex(NAME, 'is not an endpoint name')), WEBHOOK_SECRET, 'must be a JSON object'),
  { expect: '{', description: 'Secret: {"<endpoint name>": "whsec_<base64 key>"}, each NOTIFICATIONS endpoint\'s Standard Webhooks key' },
)

/** PULL_STATS: "true" counts manifest GETs per manifest; default "false". */
export const PULL_STATS = flag(false, '"true": manifest GETs are counted per manifest (pulls, last pull) for /admin/stats, the UI and retention')

type EventSettings = { NOTIFICATIONS: Endpoint[]; NOTIFICATION_SECRETS: Record<string, string> }

/** NOTIFICATION_SECRETS is needed as soon as there is an endpoint: every delivery is signed. */
export const secretsNeeded = (s: Pick<EventSettings, 'NOTIFICATIONS'>): string | null =>
  s.NOTIFICATIONS.length > 0 ? 'NOTIFICATIONS names endpoints, and every delivery is signed' : null

/** Every endpoint has its key, and every key names an endpoint (an endpoint's name is not secret). */
export const endpointsKeyed: CrossCheck<EventSettings> = (s) => [
  ...s.NOTIFICATIONS.flatMap((e, i) =>
    s.NOTIFICATION_SECRETS[e.name] === undefined
      ? [{ setting: 'NOTIFICATIONS', path: `[${i}].name`, message: `"${e.name}" has no key in NOTIFICATION_SECRETS (deliveries are signed)` }]
      : [],
  ),
  ...Object.keys(s.NOTIFICATION_SECRETS)
    .filter((name) => !s.NOTIFICATIONS.some((e) => e.name === name))
    .map((name) => ({ setting: 'NOTIFICATION_SECRETS', path: `.${name}`, message: 'no endpoint of NOTIFICATIONS has this name' })),
]

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

const read = new WeakMap<object, NotificationSettings>()

/**
 * The events settings as the events code uses them (endpoints, their key bytes, PULL_STATS), from
 * the parsed settings (`parsed`: src/settings `settings(env)`, passed in so this file imports
 * nothing above it). Throws when a queue binding they need is missing (wrangler.toml
 * [[queues.producers]]): events would be lost, so the registry fails closed.
 */
export function eventSettings(env: Env, parsed: EventSettings & { PULL_STATS: boolean }): NotificationSettings {
  let value = read.get(parsed)
  if (!value) {
    const keys = new Map(parsed.NOTIFICATIONS.map((e) => [e.name, keyBytes(parsed.NOTIFICATION_SECRETS[e.name]!)!] as const))
    value = { endpoints: parsed.NOTIFICATIONS, keys, pullStats: parsed.PULL_STATS }
    read.set(parsed, value)
  }
  if (value.endpoints.length > 0 && !env.EVENTS) throw new Error('NOTIFICATIONS: the EVENTS queue binding is missing (wrangler.toml [[queues.producers]])')
  if (value.pullStats && !env.PULLS) throw new Error('PULL_STATS: the PULLS queue binding is missing (wrangler.toml [[queues.producers]])')
  return value
}
