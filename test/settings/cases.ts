/**
 * Every setting, broken in every way its schema knows, with the problem it must be reported as
 * (`SETTING<path>: message`). Shared by the schema tests in workerd (settings.test.ts) and the
 * check-config tests in Node (check-config.node.test.ts): both must name the same problems.
 * `others`: settings that must be set beside it for the problem to exist (checks across settings).
 * A secret's case carries SECRET_MARK in its value: no report may ever contain it.
 */

export const SECRET_MARK = 'hunter2'

/** A valid password hash (1,000 iterations; its salt and hash are the marks no report may show). */
export const HASH = 'pbkdf2-sha256$1000$aHVudGVyMmh1bnRlcjI=$aHVudGVyMmh1bnRlcjJodW50ZXIyaHVudGVyMmh1bnQ='

export interface BrokenCase {
  setting: string
  how: string
  value: unknown
  /** The whole report line after the source, as a regex. */
  problem: RegExp
  others?: Record<string, unknown>
}

const rule = (r: Record<string, unknown>) => JSON.stringify([r])
const up = (...list: Record<string, unknown>[]) => JSON.stringify(list)
const ok = { repos: 'acme/*', oidc: { issuer: 'github', claims: { repository_owner: 'acme' } }, actions: ['push'] }
const gh = { alias: 'github', issuer: 'https://token.actions.githubusercontent.com', audience: 'https://registry.example.com' }

export const BROKEN: BrokenCase[] = [
  // Flags.
  ...['DELETE_ENABLED', 'SCHEMA1_ENABLED', 'READ_ONLY', 'GC_TEST_SHORT_GRACE'].flatMap((setting): BrokenCase[] => [
    { setting, how: 'yes', value: 'yes', problem: new RegExp(`^${setting}: must be "true" or "false"$`) },
    { setting, how: 'in capitals', value: 'TRUE', problem: new RegExp(`^${setting}: must be "true" or "false"$`) },
    { setting, how: 'a number', value: 1, problem: new RegExp(`^${setting}: must be "true" or "false"$`) },
  ]),
  // Whole numbers.
  ...(
    [
      ['MANIFEST_MAX_BYTES', 'must be a whole number of bytes ≥ 1', ['abc', '-5', '1.5', '0', 2.5]],
      ['MAX_CHUNK_BYTES', 'must be a whole number of bytes, at least 1048576 \\(1 MiB\\)', ['abc', '-5', '1.5', '1000', '99999999999999999999', 1000]],
      ['LINK_CACHE_SECONDS', 'must be a whole number of seconds ≥ 0', ['soon', '-1', '0.5', -1]],
      ['GC_GRACE_SECONDS', 'must be a whole number of seconds', ['soon', '-1']],
      ['GC_SETTLE_SECONDS', 'must be a whole number of seconds', ['later', '1e3']],
    ] as const
  ).flatMap(([setting, message, values]) =>
    values.map((value): BrokenCase => ({ setting, how: JSON.stringify(value), value, problem: new RegExp(`^${setting}: ${message}$`) })),
  ),
  { setting: 'GC_GRACE_SECONDS', how: 'below its floor', value: '60', problem: /^GC_GRACE_SECONDS: must be at least 3600 \(below only with GC_TEST_SHORT_GRACE = "true"\)$/ },
  { setting: 'GC_SETTLE_SECONDS', how: 'below its floor', value: '1', problem: /^GC_SETTLE_SECONDS: must be at least 300 \(below only/ },
  // AUTH_MODE, AUTH_SERVICE.
  { setting: 'AUTH_MODE', how: 'a typo', value: 'tokens', problem: /^AUTH_MODE: must be "none" or "token"$/ },
  { setting: 'AUTH_MODE', how: 'in capitals', value: 'Token', problem: /^AUTH_MODE: must be "none" or "token"$/ },
  { setting: 'AUTH_SERVICE', how: 'a number', value: 5, problem: /^AUTH_SERVICE: must be a string$/ },
  // AUTH_RULES.
  { setting: 'AUTH_RULES', how: 'not JSON', value: 'team-a/*: alice', problem: /^AUTH_RULES: not valid JSON: it does not start with \[$/ },
  { setting: 'AUTH_RULES', how: 'cut short', value: '[{"catalog":["alice"]}', problem: /^AUTH_RULES: not valid JSON: parsing stops at character \d+ of 22$/ },
  { setting: 'AUTH_RULES', how: 'in quotes', value: `'[{"catalog":["alice"]}]'`, problem: /^AUTH_RULES: not valid JSON: it is wrapped in quotes, which became part of the value$/ },
  { setting: 'AUTH_RULES', how: 'in double quotes', value: `"[]"`, problem: /^AUTH_RULES: not valid JSON: it is wrapped in quotes/ },
  { setting: 'AUTH_RULES', how: 'an object', value: '{}', problem: /^AUTH_RULES: must be a JSON array of rules$/ },
  { setting: 'AUTH_RULES', how: 'a rule that is not an object', value: '[1]', problem: /^AUTH_RULES\[0\]: must be an object$/ },
  { setting: 'AUTH_RULES', how: 'an unknown field', value: rule({ repos: 'a/*', user: ['x'], actions: ['pull'] }), problem: /^AUTH_RULES\[0\]\.user: unknown field \(a rule has repos, users, actions, anonymous; or it is a catalog, admin or oidc rule\)$/ },
  { setting: 'AUTH_RULES', how: 'no repos', value: rule({ users: ['x'], actions: ['pull'] }), problem: /^AUTH_RULES\[0\]\.repos: is required: the repositories the rule is about$/ },
  { setting: 'AUTH_RULES', how: 'upper case in repos', value: rule({ repos: 'A/*', users: ['x'], actions: ['pull'] }), problem: /^AUTH_RULES\[0\]\.repos: must be a pattern \(a-z 0-9 \. _ - \/ \*\)$/ },
  { setting: 'AUTH_RULES', how: 'an empty repos list', value: rule({ repos: [], users: ['x'], actions: ['pull'] }), problem: /^AUTH_RULES\[0\]\.repos: must be a pattern or a non-empty list of patterns/ },
  { setting: 'AUTH_RULES', how: 'a bad pattern in a list', value: JSON.stringify([{ catalog: ['x'] }, { repos: ['a', 'b c'], users: ['x'], actions: ['pull'] }]), problem: /^AUTH_RULES\[1\]\.repos\[1\]: must be a pattern/ },
  { setting: 'AUTH_RULES', how: 'users without actions', value: rule({ repos: 'a/*', users: ['x'] }), problem: /^AUTH_RULES\[0\]: "users" and "actions" go together$/ },
  { setting: 'AUTH_RULES', how: 'an unknown action', value: rule({ repos: 'a/*', users: ['x'], actions: ['pull', 'write'] }), problem: /^AUTH_RULES\[0\]\.actions\[1\]: must be one of pull, push, delete$/ },
  { setting: 'AUTH_RULES', how: 'no actions', value: rule({ repos: 'a/*', users: ['x'], actions: [] }), problem: /^AUTH_RULES\[0\]\.actions: must be a non-empty list of pull, push, delete$/ },
  { setting: 'AUTH_RULES', how: 'anonymous push', value: rule({ repos: 'a/*', anonymous: ['push'] }), problem: /^AUTH_RULES\[0\]: anonymous callers may only pull/ },
  { setting: 'AUTH_RULES', how: 'a rule granting nothing', value: rule({ repos: 'a/*' }), problem: /^AUTH_RULES\[0\]: grants nothing/ },
  { setting: 'AUTH_RULES', how: 'a bad user name', value: rule({ repos: 'a/*', users: ['x:y'], actions: ['pull'] }), problem: /^AUTH_RULES\[0\]\.users\[0\]: must be a user name, robot:<name> or "\*"$/ },
  { setting: 'AUTH_RULES', how: 'a bad robot name', value: rule({ repos: 'a/*', users: ['robot:CI'], actions: ['pull'] }), problem: /^AUTH_RULES\[0\]\.users\[0\]: must be a user name/ },
  { setting: 'AUTH_RULES', how: 'a catalog rule with more', value: rule({ catalog: ['x'], repos: 'a' }), problem: /^AUTH_RULES\[0\]\.repos: unknown field \(a catalog rule has only "catalog"\)$/ },
  { setting: 'AUTH_RULES', how: 'an admin rule with more', value: rule({ admin: ['x'], repos: 'a' }), problem: /^AUTH_RULES\[0\]\.repos: unknown field \(an admin rule has only "admin"\)$/ },
  { setting: 'AUTH_RULES', how: 'an admin rule that is not a list', value: rule({ admin: 'x' }), problem: /^AUTH_RULES\[0\]\.admin: must be a list of user names/ },
  { setting: 'AUTH_RULES', how: 'an oidc rule with no claims', value: rule({ ...ok, oidc: { issuer: 'github', claims: {} } }), problem: /^AUTH_RULES\[0\]\.oidc\.claims: must name at least one claim/ },
  { setting: 'AUTH_RULES', how: 'an oidc rule with no issuer', value: rule({ ...ok, oidc: { claims: { a: 'b' } } }), problem: /^AUTH_RULES\[0\]\.oidc\.issuer: is required: an alias of AUTH_OIDC$/ },
  { setting: 'AUTH_RULES', how: 'an oidc rule with users', value: rule({ ...ok, users: ['alice'] }), problem: /^AUTH_RULES\[0\]\.users: unknown field \(an "oidc" rule has repos, oidc, actions\)$/ },
  { setting: 'AUTH_RULES', how: 'an oidc rule with a bad claim name', value: rule({ ...ok, oidc: { issuer: 'github', claims: { 'a b': 'x' } } }), problem: /^AUTH_RULES\[0\]\.oidc\.claims\["a b"\]: is not a claim name/ },
  { setting: 'AUTH_RULES', how: 'an oidc rule with a non-string claim pattern', value: rule({ ...ok, oidc: { issuer: 'github', claims: { ref: true } } }), problem: /^AUTH_RULES\[0\]\.oidc\.claims\.ref: must be a non-empty string pattern/ },
  { setting: 'AUTH_RULES', how: 'an unterminated ${', value: rule({ ...ok, repos: 'gh/${repository' }), problem: /^AUTH_RULES\[0\]\.repos: has a malformed \$\{claim\}/ },
  { setting: 'AUTH_RULES', how: 'an oidc rule naming an issuer AUTH_OIDC does not list', value: rule({ ...ok, oidc: { issuer: 'gitlab', claims: { sub: '*' } } }), problem: /^AUTH_RULES\[0\]\.oidc\.issuer: names "gitlab", which AUTH_OIDC does not list$/, others: { AUTH_OIDC: JSON.stringify([gh]) } },
  // AUTH_OIDC.
  { setting: 'AUTH_OIDC', how: 'not JSON', value: '[{', problem: /^AUTH_OIDC: not valid JSON: parsing stops at character/ },
  { setting: 'AUTH_OIDC', how: 'an object', value: JSON.stringify(gh), problem: /^AUTH_OIDC: must be a JSON array of issuers$/ },
  { setting: 'AUTH_OIDC', how: 'no audience', value: up({ ...gh, audience: undefined }), problem: /^AUTH_OIDC\[0\]\.audience: is required: the "aud" its tokens must carry for this registry$/ },
  { setting: 'AUTH_OIDC', how: 'an empty audience', value: up({ ...gh, audience: ' ' }), problem: /^AUTH_OIDC\[0\]\.audience: is required/ },
  { setting: 'AUTH_OIDC', how: 'an http issuer', value: up({ ...gh, issuer: 'http://issuer.example' }), problem: /^AUTH_OIDC\[0\]\.issuer: must be an https URL \(http only for 127\.0\.0\.1, ::1 or localhost\)$/ },
  { setting: 'AUTH_OIDC', how: 'an http jwks_uri', value: up({ ...gh, jwks_uri: 'http://issuer.example/keys' }), problem: /^AUTH_OIDC\[0\]\.jwks_uri: must be an https URL/ },
  { setting: 'AUTH_OIDC', how: 'a bad alias', value: up({ ...gh, alias: 'Git Hub' }), problem: /^AUTH_OIDC\[0\]\.alias: must be 1-32 of a-z 0-9 _ -/ },
  { setting: 'AUTH_OIDC', how: 'a repeated alias', value: up(gh, { ...gh, issuer: 'https://b.example' }), problem: /^AUTH_OIDC\[1\]: alias "github" is used twice$/ },
  { setting: 'AUTH_OIDC', how: 'a repeated issuer', value: up(gh, { ...gh, alias: 'gh2' }), problem: /^AUTH_OIDC\[1\]: issuer https:\/\/token\.actions\.githubusercontent\.com is listed twice$/ },
  { setting: 'AUTH_OIDC', how: 'an unknown field', value: up({ ...gh, audiences: ['x'] }), problem: /^AUTH_OIDC\[0\]\.audiences: unknown field \(an issuer has alias, issuer, audience, jwks_uri\)$/ },
  // UPSTREAMS.
  { setting: 'UPSTREAMS', how: 'not JSON', value: '[', problem: /^UPSTREAMS: not valid JSON: / },
  { setting: 'UPSTREAMS', how: 'an object', value: '{}', problem: /^UPSTREAMS: must be a JSON array of upstreams$/ },
  { setting: 'UPSTREAMS', how: 'an unknown field', value: up({ prefix: 'a', url: 'https://x.io', ttl: 5 }), problem: /^UPSTREAMS\[0\]\.ttl: unknown field/ },
  { setting: 'UPSTREAMS', how: 'no url', value: up({ prefix: 'a' }), problem: /^UPSTREAMS\[0\]\.url: is required: the upstream registry/ },
  { setting: 'UPSTREAMS', how: 'credentials in the url', value: up({ prefix: 'a', url: `https://u:${SECRET_MARK}@x.io` }), problem: /^UPSTREAMS\[0\]\.url: must be an absolute http\(s\) URL without credentials, query or fragment \(credentials go in UPSTREAM_CREDENTIALS\)$/ },
  { setting: 'UPSTREAMS', how: 'an ftp url', value: up({ prefix: 'a', url: 'ftp://x.io' }), problem: /^UPSTREAMS\[0\]\.url: must be an absolute http\(s\) URL/ },
  { setting: 'UPSTREAMS', how: 'no way to reach it', value: up({ url: 'https://x.io' }), problem: /^UPSTREAMS\[0\]: needs a "prefix", a "host" or an "ns" to be reached by$/ },
  { setting: 'UPSTREAMS', how: 'a host with a port and no prefix', value: up({ host: 'mirror.test:5000', url: 'https://x.io' }), problem: /^UPSTREAMS\[0\]: "mirror\.test:5000" cannot name a local namespace; give a "prefix"$/ },
  { setting: 'UPSTREAMS', how: 'a bad prefix', value: up({ prefix: 'Hub', url: 'https://x.io' }), problem: /^UPSTREAMS\[0\]\.prefix: must be a repository namespace/ },
  { setting: 'UPSTREAMS', how: 'a bad host', value: up({ host: 'Mirror.Example', url: 'https://x.io' }), problem: /^UPSTREAMS\[0\]\.host: must be a lowercase host name/ },
  { setting: 'UPSTREAMS', how: 'a bad ns', value: up({ prefix: 'a', url: 'https://x.io', ns: ['docker io'] }), problem: /^UPSTREAMS\[0\]\.ns\[0\]: must be a lowercase host name/ },
  { setting: 'UPSTREAMS', how: 'dockerHubLibrary as a string', value: up({ prefix: 'a', url: 'https://x.io', dockerHubLibrary: 'true' }), problem: /^UPSTREAMS\[0\]\.dockerHubLibrary: must be true or false$/ },
  { setting: 'UPSTREAMS', how: 'a negative TTL', value: up({ prefix: 'a', url: 'https://x.io', tagTtlSeconds: -1 }), problem: /^UPSTREAMS\[0\]\.tagTtlSeconds: must be a whole number of seconds ≥ 0$/ },
  { setting: 'UPSTREAMS', how: 'zero cacheDays', value: up({ prefix: 'a', url: 'https://x.io', cacheDays: 0 }), problem: /^UPSTREAMS\[0\]\.cacheDays: must be a whole number of days ≥ 1$/ },
  { setting: 'UPSTREAMS', how: 'a fractional timeout', value: up({ prefix: 'a', url: 'https://x.io', timeoutSeconds: 0.5 }), problem: /^UPSTREAMS\[0\]\.timeoutSeconds: must be a whole number of seconds ≥ 1$/ },
  { setting: 'UPSTREAMS', how: 'a bad pattern', value: up({ prefix: 'a', url: 'https://x.io', repositories: ['A B'] }), problem: /^UPSTREAMS\[0\]\.repositories\[0\]: must be a pattern/ },
  { setting: 'UPSTREAMS', how: 'a namespace used twice', value: up({ prefix: 'a', url: 'https://x.io' }, { prefix: 'a', url: 'https://y.io' }), problem: /^UPSTREAMS\[1\]: namespace "a" is already used by UPSTREAMS\[0\]$/ },
  { setting: 'UPSTREAMS', how: 'a host used twice', value: up({ prefix: 'a', host: 'm.test', url: 'https://x.io' }, { prefix: 'b', host: 'm.test', url: 'https://y.io' }), problem: /^UPSTREAMS\[1\]: host "m\.test" is already used by UPSTREAMS\[0\]$/ },
  { setting: 'UPSTREAMS', how: 'an ns used twice', value: up({ prefix: 'a', url: 'https://x.io', ns: 'docker.io' }, { prefix: 'b', url: 'https://y.io', ns: 'docker.io' }), problem: /^UPSTREAMS\[1\]: ns "docker\.io" is already used by UPSTREAMS\[0\]$/ },
  { setting: 'UPSTREAMS', how: 'nested namespaces', value: up({ prefix: 'a', url: 'https://x.io' }, { prefix: 'a/b', url: 'https://y.io' }), problem: /^UPSTREAMS\[0\]: namespace "a" contains another upstream's namespace "a\/b"$/ },
  // RETENTION.
  { setting: 'RETENTION', how: 'not JSON', value: 'ci/*: 20', problem: /^RETENTION: not valid JSON: it does not start with \[$/ },
  { setting: 'RETENTION', how: 'an object', value: '{}', problem: /^RETENTION: must be a JSON array of rules$/ },
  { setting: 'RETENTION', how: 'a rule removing nothing', value: rule({ repos: 'a' }), problem: /^RETENTION\[0\]: removes nothing \(give keepLast, olderThanDays or untaggedDays; pulledWithinDays and keepLastPulled only keep\)$/ },
  { setting: 'RETENTION', how: 'a bad pattern', value: rule({ repos: 'A B', keepLast: 1 }), problem: /^RETENTION\[0\]\.repos: must be a pattern/ },
  { setting: 'RETENTION', how: 'a negative keepLast', value: rule({ repos: 'a', keepLast: -1 }), problem: /^RETENTION\[0\]\.keepLast: must be a whole number of tags ≥ 0$/ },
  { setting: 'RETENTION', how: 'days as a string', value: rule({ repos: 'a', olderThanDays: '30' }), problem: /^RETENTION\[0\]\.olderThanDays: must be a whole number of days ≥ 0$/ },
  { setting: 'RETENTION', how: 'a bad keep pattern', value: rule({ repos: 'a', keepLast: 1, keep: ['v 1'] }), problem: /^RETENTION\[0\]\.keep\[0\]: must be a tag pattern \(/ },
  { setting: 'RETENTION', how: 'an unknown field', value: rule({ repos: 'a', keepLast: 1, color: 1 }), problem: /^RETENTION\[0\]\.color: unknown field \(a rule has repos, keepLast, keep, olderThanDays, untaggedDays, pulledWithinDays, keepLastPulled\)$/ },
  // IMMUTABLE_TAGS.
  { setting: 'IMMUTABLE_TAGS', how: 'not JSON', value: '[v*]', problem: /^IMMUTABLE_TAGS: not valid JSON: / },
  { setting: 'IMMUTABLE_TAGS', how: 'a bad tag pattern', value: '["v 1"]', problem: /^IMMUTABLE_TAGS\[0\]: is not a tag pattern/ },
  { setting: 'IMMUTABLE_TAGS', how: 'a bad pattern in the short form', value: 'v*, re lease', problem: /^IMMUTABLE_TAGS\[1\]: is not a tag pattern/ },
  { setting: 'IMMUTABLE_TAGS', how: 'an entry without repos', value: '[{"tags": "v*"}]', problem: /^IMMUTABLE_TAGS\[0\]\.repos: is required \(a plain tag pattern applies to every repository\)$/ },
  { setting: 'IMMUTABLE_TAGS', how: 'a number', value: '[5]', problem: /^IMMUTABLE_TAGS\[0\]: must be a tag pattern or \{"repos": <patterns>, "tags": <tag patterns>\}$/ },
  // Secrets.
  { setting: 'AUTH_USERS', how: 'each $ written as \\$', value: `{"alice":"${HASH.replaceAll('$', '\\$')}"}`, problem: /^AUTH_USERS: not valid JSON: it contains \\\$ \(a backslash before a \$\)\. In \.dev\.vars write each \$ as it is, the whole value in single quotes/ },
  { setting: 'AUTH_USERS', how: 'its quotes kept', value: `'{"alice":"${HASH}"}'`, problem: /^AUTH_USERS: not valid JSON: it is wrapped in quotes, which became part of the value$/ },
  { setting: 'AUTH_USERS', how: 'not an object', value: `alice=${HASH}`, problem: /^AUTH_USERS: not valid JSON: it does not start with \{$/ },
  { setting: 'AUTH_USERS', how: 'a list', value: `["${HASH}"]`, problem: /^AUTH_USERS: must be a JSON object$/ },
  { setting: 'AUTH_USERS', how: 'cut short', value: `{"alice":"${HASH}"`, problem: /^AUTH_USERS: not valid JSON: parsing stops at character \d+ of \d+$/ },
  { setting: 'AUTH_USERS', how: 'a hash whose $fields were expanded away', value: JSON.stringify({ alice: `pbkdf2-sha2561000${SECRET_MARK}` }), problem: /^AUTH_USERS\.alice: not a password hash: it has 1 \$-separated field, not 4 \(a \$word expanded away\?/ },
  { setting: 'AUTH_USERS', how: 'a plain password', value: JSON.stringify({ alice: SECRET_MARK }), problem: /^AUTH_USERS\.alice: not a password hash: it has 1 \$-separated field/ },
  { setting: 'AUTH_USERS', how: 'too many iterations', value: JSON.stringify({ alice: HASH.replace('$1000$', '$200000$') }), problem: /^AUTH_USERS\.alice: not a password hash: it is not pbkdf2-sha256\$<iterations ≤ 100000>\$<salt>\$<hash>$/ },
  { setting: 'AUTH_USERS', how: 'a bad user name', value: JSON.stringify({ [`${SECRET_MARK} x`]: HASH }), problem: /^AUTH_USERS\[key 1\]: is not a valid user name \(robots live in KV; "oidc" and "robot" are reserved\)$/ },
  { setting: 'AUTH_USERS', how: 'user "oidc"', value: JSON.stringify({ alice: HASH, oidc: HASH }), problem: /^AUTH_USERS\[key 2\]: is not a valid user name/ },
  { setting: 'UPLOAD_SECRET', how: 'too short', value: SECRET_MARK, problem: /^UPLOAD_SECRET: must be at least 32 characters \(openssl rand -base64 48\), or unset$/ },
  { setting: 'AUTH_TOKEN_SECRET', how: 'too short', value: SECRET_MARK, problem: /^AUTH_TOKEN_SECRET: must be at least 32 characters \(openssl rand -base64 48\)$/ },
  { setting: 'UPSTREAM_CREDENTIALS', how: 'not JSON', value: `hub=user:${SECRET_MARK}`, problem: /^UPSTREAM_CREDENTIALS: not valid JSON: it does not start with \{$/ },
  { setting: 'UPSTREAM_CREDENTIALS', how: 'a value that is not a string', value: '{"hub": 7}', problem: /^UPSTREAM_CREDENTIALS\.hub: must be a non-empty string \("user:password" or a token\)$/, others: { UPSTREAMS: up({ prefix: 'hub', url: 'https://x.io' }) } },
  { setting: 'UPSTREAM_CREDENTIALS', how: 'a key that is no prefix or host', value: JSON.stringify({ [`user:${SECRET_MARK}`]: 'hub' }), problem: /^UPSTREAM_CREDENTIALS\[key 1\]: is not an upstream's prefix or host$/ },
  { setting: 'UPSTREAM_CREDENTIALS', how: 'a key naming no upstream', value: JSON.stringify({ hub: 'u:p', [SECRET_MARK]: 'x' }), problem: /^UPSTREAM_CREDENTIALS\[key 2\]: names no upstream of UPSTREAMS/, others: { UPSTREAMS: up({ prefix: 'hub', url: 'https://x.io' }) } },
]

/** Secrets some setting requires: absent, they are a problem of their own. */
export const MISSING: BrokenCase[] = [
  { setting: 'AUTH_TOKEN_SECRET', how: 'absent with AUTH_MODE "token"', value: undefined, problem: /^AUTH_TOKEN_SECRET: must be set: AUTH_MODE is "token"$/, others: { AUTH_MODE: 'token' } },
]

/** Good values in each form a setting takes, with what they parse to. */
export const GOOD: { setting: string; value: unknown; parsed: unknown }[] = [
  { setting: 'READ_ONLY', value: true, parsed: true },
  { setting: 'READ_ONLY', value: '', parsed: false },
  { setting: 'DELETE_ENABLED', value: 'false', parsed: false },
  { setting: 'MAX_CHUNK_BYTES', value: 52428800, parsed: 52428800 },
  { setting: 'MAX_CHUNK_BYTES', value: ' 52428800 ', parsed: 52428800 },
  { setting: 'MAX_CHUNK_BYTES', value: '', parsed: 94371840 },
  { setting: 'LINK_CACHE_SECONDS', value: '0', parsed: 0 },
  { setting: 'AUTH_MODE', value: '', parsed: 'none' },
  { setting: 'AUTH_SERVICE', value: ' registry.example.com ', parsed: 'registry.example.com' },
  { setting: 'AUTH_SERVICE', value: '', parsed: null },
  { setting: 'UPLOAD_SECRET', value: '', parsed: null },
  { setting: 'IMMUTABLE_TAGS', value: 'v*, stable', parsed: [{ name: 'IMMUTABLE_TAGS[0]', repos: null, tags: ['v*'] }, { name: 'IMMUTABLE_TAGS[1]', repos: null, tags: ['stable'] }] },
  { setting: 'IMMUTABLE_TAGS', value: [{ repos: 'prod/*', tags: 'stable' }], parsed: [{ name: 'IMMUTABLE_TAGS[0]', repos: ['prod/*'], tags: ['stable'] }] },
  { setting: 'RETENTION', value: '  ', parsed: [] },
  { setting: 'RETENTION', value: [{ repos: 'ci/*', keepLast: 0 }], parsed: [{ name: 'RETENTION[0]', repos: ['ci/*'], keepLast: 0 }] },
]
