/**
 * The auth settings (docs/authentication.md): AUTH_MODE, AUTH_SERVICE, AUTH_RULES, AUTH_OIDC
 * from `[vars]`; AUTH_USERS and AUTH_TOKEN_SECRET as secrets. What they mean at request time
 * is src/auth/'s (rules.ts matches rules, oidc/ verifies identity tokens); here is only what
 * a valid value is, and its parsed form.
 */
import * as v from 'valibot'
import { ROBOT_PREFIX, robotName } from '../names'
import { type CrossCheck, eachEntry, fields, jsonSetting, oneOrMore, repoPatterns, text } from './values'

/** What the rules can grant on a repository. */
export type Action = 'pull' | 'push' | 'delete'
export const ACTIONS: readonly Action[] = ['pull', 'push', 'delete']

/** The user name CI jobs sign in as, their identity token as password (oidc/verify.ts). */
export const OIDC_USER = 'oidc'

/** A user name of AUTH_USERS (and of rules' `users`). */
const USER = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/

export const AUTH_MODE = v.pipe(
  v.optional(v.picklist(['none', 'token', ''], 'must be "none" or "token"'), 'none'),
  v.metadata({ description: '"none": an open registry; "token": Docker token auth, the worker its own token server at /token' }),
  v.transform((m): 'none' | 'token' => (m === 'token' ? 'token' : 'none')),
)

export const AUTH_SERVICE = v.pipe(
  text('The token service named in challenges and in tokens\' audience; empty: the request\'s host'),
  v.transform((s): string | null => s || null),
)

// ---------------------------------------------------------------- AUTH_RULES

export interface RepoRule {
  patterns: string[]
  users: Set<string>
  actions: Action[]
  anonymous: Action[]
}

/** A `repos` pattern of an OIDC rule, split at each `${claim}` (auth/oidc/rules.ts fills them in). */
export type Template = (string | { claim: string })[]

export interface OidcRule {
  patterns: Template[]
  /** An alias of AUTH_OIDC. */
  issuer: string
  /** Claim name → pattern; every one must match. */
  claims: [name: string, pattern: string][]
  actions: Action[]
  /** Its index in AUTH_RULES (for messages). */
  index: number
}

/** AUTH_RULES, parsed (src/auth/rules.ts says what each part grants). */
export interface Rules {
  repos: RepoRule[]
  catalog: Set<string>
  /** Rules for OIDC callers (auth/oidc/rules.ts). */
  oidc: OidcRule[]
  /** Who may run and read garbage collections. */
  admin: Set<string>
}

const validUser = (u: string) => u === '*' || robotName(u) !== null || (USER.test(u) && u !== 'robot')
const USER_MESSAGE = 'must be a user name, robot:<name> or "*"'
const userList = v.array(v.pipe(v.string(USER_MESSAGE), v.check(validUser, USER_MESSAGE)), 'must be a list of user names, robot:<name> or "*"')
const ACTIONS_MESSAGE = `must be a non-empty list of ${ACTIONS.join(', ')}`
const actionList = v.pipe(v.array(v.picklist(ACTIONS, `must be one of ${ACTIONS.join(', ')}`), ACTIONS_MESSAGE), v.minLength(1, ACTIONS_MESSAGE))

const catalogRule = v.pipe(
  v.strictObject({ catalog: userList }, fields({ what: 'an object', unknown: 'a catalog rule has only "catalog"' })),
  v.transform((r) => ({ kind: 'catalog' as const, users: r.catalog })),
)

const adminRule = v.pipe(
  v.strictObject({ admin: userList }, fields({ what: 'an object', unknown: 'an admin rule has only "admin"' })),
  v.transform((r) => ({ kind: 'admin' as const, users: r.admin })),
)

const repoRule = v.pipe(
  v.strictObject(
    { repos: repoPatterns(), users: v.optional(userList), actions: v.optional(actionList), anonymous: v.optional(actionList) },
    fields({
      what: 'an object',
      unknown: 'a rule has repos, users, actions, anonymous; or it is a catalog, admin or oidc rule',
      missing: { repos: 'is required: the repositories the rule is about' },
    }),
  ),
  v.transform((r) => ({ repos: r.repos, users: r.users ?? [], actions: r.actions ?? [], anonymous: r.anonymous ?? [] })),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return
    const r = dataset.value
    if ((r.users.length > 0) !== (r.actions.length > 0)) addIssue({ message: '"users" and "actions" go together' })
    else if (r.anonymous.some((a) => a !== 'pull')) addIssue({ message: 'anonymous callers may only pull ("anonymous": ["pull"])' })
    else if (r.users.length === 0 && r.anonymous.length === 0) addIssue({ message: 'grants nothing (give users and actions, or anonymous)' })
  }),
  v.transform((r) => ({ kind: 'repos' as const, rule: { patterns: r.repos, users: new Set(r.users), actions: r.actions, anonymous: r.anonymous } })),
)

const LITERAL = /^[a-z0-9._\/*-]*$/
const CLAIM = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/
const TEMPLATE_MESSAGE = 'must be a pattern (a-z 0-9 . _ - / * and ${claim})'

/** `gh/${repository}/*` → ['gh/', {claim: 'repository'}, '/*']. */
const template = v.pipe(
  v.string(TEMPLATE_MESSAGE),
  v.minLength(1, TEMPLATE_MESSAGE),
  v.maxLength(255, TEMPLATE_MESSAGE),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const out: Template = []
    let rest = dataset.value
    while (rest !== '') {
      const open = rest.indexOf('${')
      const literal = open < 0 ? rest : rest.slice(0, open)
      if (!LITERAL.test(literal)) {
        addIssue({ message: TEMPLATE_MESSAGE })
        return NEVER
      }
      if (literal) out.push(literal)
      if (open < 0) break
      const close = rest.indexOf('}', open)
      const claim = close < 0 ? '' : rest.slice(open + 2, close)
      if (!CLAIM.test(claim)) {
        addIssue({ message: 'has a malformed ${claim} (a claim name: letters, digits, _)' })
        return NEVER
      }
      out.push({ claim })
      rest = rest.slice(close + 1)
    }
    return out
  }),
)
const CLAIM_PATTERN_MESSAGE = 'must be a non-empty string pattern (* = one or more characters)'

const oidcRule = v.pipe(
  v.strictObject(
    {
      repos: oneOrMore(template, 'must be a pattern or a non-empty list of patterns (a-z 0-9 . _ - / * and ${claim})'),
      oidc: v.strictObject(
        {
          issuer: v.pipe(v.string('must name an issuer of AUTH_OIDC (its alias)'), v.minLength(1, 'must name an issuer of AUTH_OIDC (its alias)')),
          claims: v.pipe(
            v.record(
              v.pipe(v.string(), v.regex(CLAIM, 'is not a claim name (letters, digits, _)')),
              v.pipe(v.string(CLAIM_PATTERN_MESSAGE), v.minLength(1, CLAIM_PATTERN_MESSAGE), v.maxLength(512, CLAIM_PATTERN_MESSAGE)),
              'must name at least one claim (whose jobs the rule means)',
            ),
            v.check((c) => Object.keys(c).length > 0, 'must name at least one claim (whose jobs the rule means)'),
          ),
        },
        fields({
          what: '{"issuer": <alias>, "claims": {…}}',
          unknown: 'oidc has issuer and claims',
          missing: { issuer: 'is required: an alias of AUTH_OIDC', claims: 'is required: at least one claim (whose jobs the rule means)' },
        }),
      ),
      actions: actionList,
    },
    fields({ what: 'an object', unknown: 'an "oidc" rule has repos, oidc, actions', missing: { actions: `is required: ${ACTIONS.join(', ')}` } }),
  ),
  v.transform((r) => ({
    kind: 'oidc' as const,
    rule: { patterns: r.repos, issuer: r.oidc.issuer, claims: Object.entries(r.oidc.claims), actions: r.actions },
  })),
)

const anyRule = v.union([catalogRule, adminRule, oidcRule, repoRule])
/**
 * A rule is read by the key that says its kind (`catalog`, `admin`, `oidc`, else a repository
 * rule), so a mistake is reported against that kind, not as "matches none of four". Called
 * without an input (the JSON Schema generator), it gives every kind.
 */
const rule = v.lazy((input: unknown) => {
  if (input === undefined) return anyRule
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return v.pipe(v.unknown(), v.check(() => false, 'must be an object'))
  return 'catalog' in input ? catalogRule : 'admin' in input ? adminRule : 'oidc' in input ? oidcRule : repoRule
})

export const AUTH_RULES = jsonSetting(
  v.pipe(
    v.array(rule, 'must be a JSON array of rules'),
    v.transform((entries): Rules => {
      const rules: Rules = { repos: [], catalog: new Set(), oidc: [], admin: new Set() }
      ;(entries as v.InferOutput<typeof anyRule>[]).forEach((e, index) => {
        if (e.kind === 'catalog') for (const u of e.users) rules.catalog.add(u)
        else if (e.kind === 'admin') for (const u of e.users) rules.admin.add(u)
        else if (e.kind === 'oidc') rules.oidc.push({ ...e.rule, index })
        else rules.repos.push(e.rule)
      })
      return rules
    }),
  ),
  { expect: '[', description: 'Who may pull, push, delete where; who may list the catalog and run collections (AUTH_MODE "token")' },
)

// ---------------------------------------------------------------- AUTH_OIDC

export interface Issuer {
  alias: string
  issuer: string
  audience: string
  /** null: found by discovery. */
  jwksUri: string | null
}

/** By alias, and by `iss` (one issuer, one alias: a token's `iss` names exactly one entry). */
export interface Issuers {
  byAlias: Map<string, Issuer>
  byIssuer: Map<string, Issuer>
}

const MAX_TEXT = 512
export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

/** An https URL (http only on a loopback host) without credentials, query or fragment; kept as written. */
export function isIssuerUrl(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > MAX_TEXT) return false
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    return false
  }
  const ok = parsed.protocol === 'https:' || (parsed.protocol === 'http:' && isLoopback(parsed.hostname))
  return ok && !parsed.username && !parsed.password && !parsed.hash && !parsed.search
}
const URL_MESSAGE = 'must be an https URL (http only for 127.0.0.1, ::1 or localhost)'
const issuerUrl = v.pipe(v.string(URL_MESSAGE), v.check((s: string) => isIssuerUrl(s), URL_MESSAGE))
const AUDIENCE_MESSAGE = 'is required: the "aud" its tokens must carry for this registry'

const issuerEntry = v.strictObject(
  {
    alias: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'must be 1-32 of a-z 0-9 _ - (starting with a letter or digit)')),
    issuer: issuerUrl,
    audience: v.pipe(v.string(AUDIENCE_MESSAGE), v.trim(), v.minLength(1, AUDIENCE_MESSAGE), v.maxLength(MAX_TEXT, AUDIENCE_MESSAGE)),
    jwks_uri: v.optional(issuerUrl),
  },
  fields({
    what: 'an object',
    unknown: 'an issuer has alias, issuer, audience, jwks_uri',
    missing: { alias: 'is required: the name rules use', issuer: 'is required: the exact "iss" of its tokens', audience: AUDIENCE_MESSAGE },
  }),
)

export const AUTH_OIDC = jsonSetting(
  v.pipe(
    v.array(issuerEntry, 'must be a JSON array of issuers'),
    eachEntry<v.InferOutput<typeof issuerEntry>>((e, i, list) => [
      ...(list.findIndex((o) => o.alias === e.alias) < i ? [`alias "${e.alias}" is used twice`] : []),
      ...(list.findIndex((o) => o.issuer === e.issuer) < i ? [`issuer ${e.issuer.slice(0, 128)} is listed twice`] : []),
    ]),
    v.transform((list): Issuers => {
      const issuers: Issuers = { byAlias: new Map(), byIssuer: new Map() }
      for (const e of list) {
        const parsed = { alias: e.alias, issuer: e.issuer, audience: e.audience, jwksUri: e.jwks_uri ?? null }
        issuers.byAlias.set(e.alias, parsed)
        issuers.byIssuer.set(e.issuer, parsed)
      }
      return issuers
    }),
  ),
  { expect: '[', description: 'OIDC issuers whose identity tokens CI jobs sign in with (user "oidc")' },
)

// ---------------------------------------------------------------- AUTH_USERS, AUTH_TOKEN_SECRET

/**
 * Password hashes: `pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>` (scripts/hash-password.mjs
 * makes them; auth/passwords.ts checks passwords against them). Workers cap PBKDF2 at 100,000 iterations.
 */
export const PBKDF2_MAX_ITERATIONS = 100_000
const HASH_PREFIX = 'pbkdf2-sha256'
const HASH_BYTES = 32
const MIN_SALT_BYTES = 8

export interface PasswordHash {
  iterations: number
  salt: Uint8Array
  hash: Uint8Array
}

export interface User {
  hash: PasswordHash
  /** Changes whenever the password is re-hashed (its salt): refresh tokens carry it. */
  proof: string
}

/** A stored hash, or null when `s` is not one we can check. */
export function parsePasswordHash(s: string): PasswordHash | null {
  const [prefix, count, salt64, hash64, extra] = s.split('$')
  const iterations = Number(count)
  if (prefix !== HASH_PREFIX || extra !== undefined || !salt64 || !hash64) return null
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > PBKDF2_MAX_ITERATIONS) return null
  const salt = fromBase64(salt64)
  const hash = fromBase64(hash64)
  if (!salt || !hash || salt.length < MIN_SALT_BYTES || hash.length !== HASH_BYTES) return null
  return { iterations, salt, hash }
}

function fromBase64(s: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0))
  } catch {
    return null
  }
}

/** What is wrong with a password hash's shape, never a character of it. */
export function hashShape(value: unknown): string {
  if (typeof value !== 'string') return 'it is not a string'
  if (value.includes('\\')) return 'it contains a backslash (write each $ as it is)'
  const count = value.split('$').length
  if (count !== 4) {
    return `it has ${count} $-separated field${count === 1 ? '' : 's'}, not 4 (a $word expanded away? .env files and double-quoted shell strings expand them)`
  }
  return `it is not ${HASH_PREFIX}$<iterations ≤ ${PBKDF2_MAX_ITERATIONS}>$<salt>$<hash>`
}

// Clients that split `robot:<name>:<token>` at the first colon send user "robot" (credentials.ts);
// user "oidc" is how CI jobs present identity tokens (oidc/verify.ts).
const userName = v.pipe(
  v.string(),
  v.check(
    (name) => USER.test(name) && name !== 'robot' && name !== OIDC_USER && !name.startsWith(ROBOT_PREFIX),
    'is not a valid user name (robots live in KV; "oidc" and "robot" are reserved)',
  ),
)
const passwordHash = v.rawTransform<unknown, User>(({ dataset, addIssue, NEVER }) => {
  const value = dataset.value
  const hash = typeof value === 'string' ? parsePasswordHash(value) : null
  if (!hash) {
    addIssue({ message: `not a password hash: ${hashShape(value)}` })
    return NEVER
  }
  return { hash, proof: (value as string).split('$')[2]! }
})

export const AUTH_USERS = jsonSetting(
  v.pipe(
    v.record(userName, v.pipe(v.unknown(), passwordHash), 'must be a JSON object of user name to password hash'),
    v.transform((users) => new Map(Object.entries(users))),
  ),
  { expect: '{', description: 'Secret: {"<user>": "pbkdf2-sha256$…"} (npm run hash-password)' },
)

export const MIN_TOKEN_SECRET_LENGTH = 32
export const AUTH_TOKEN_SECRET = v.pipe(
  v.optional(v.string('must be a string'), ''),
  v.metadata({ description: `Secret: the HS256 key tokens are signed with, at least ${MIN_TOKEN_SECRET_LENGTH} characters (AUTH_MODE "token")` }),
  v.check((s) => s === '' || s.length >= MIN_TOKEN_SECRET_LENGTH, `must be at least ${MIN_TOKEN_SECRET_LENGTH} characters (openssl rand -base64 48)`),
)

// ---------------------------------------------------------------- across settings

type AuthSettings = { AUTH_MODE: 'none' | 'token'; AUTH_RULES: Rules; AUTH_OIDC: Issuers }

/** AUTH_TOKEN_SECRET is required (and why) when tokens are issued. */
export const tokenSecretNeeded = (s: Pick<AuthSettings, 'AUTH_MODE'>): string | null =>
  s.AUTH_MODE === 'token' ? 'AUTH_MODE is "token"' : null

/** Every OIDC rule's issuer is an alias of AUTH_OIDC (a typo must not silently grant nothing, nor something else). */
export const oidcIssuersListed: CrossCheck<Pick<AuthSettings, 'AUTH_RULES' | 'AUTH_OIDC'>> = (s) =>
  s.AUTH_RULES.oidc.flatMap((r) =>
    s.AUTH_OIDC.byAlias.has(r.issuer)
      ? []
      : [{ setting: 'AUTH_RULES', path: `[${r.index}].oidc.issuer`, message: `names "${r.issuer.slice(0, 64)}", which AUTH_OIDC does not list` }],
  )
