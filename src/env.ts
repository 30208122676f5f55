/** `"true"`/`"false"`, or a TOML boolean. */
type Flag = string | boolean
/** Digits, or a TOML integer. */
type WholeNumber = string | number
/** JSON text, or (in `[vars]`) a TOML array. */
type JsonList = string | readonly unknown[]

/**
 * Bindings and the raw settings (wrangler.toml `[vars]`, secrets), as the runtime hands them over.
 * Code reads settings parsed, through `settings(env)` (src/settings/): a `[vars]` value may also
 * be a TOML number, boolean, array or table, which the worker receives as such.
 */
export interface Env {
  BLOBS: R2Bucket
  LINKS: KVNamespace
  DELETE_ENABLED?: Flag
  SCHEMA1_ENABLED?: Flag
  MANIFEST_MAX_BYTES?: WholeNumber
  /** Largest request body an upload takes (a chunk); docs/settings.md. */
  MAX_CHUNK_BYTES?: WholeNumber
  LINK_CACHE_SECONDS?: WholeNumber
  UPLOAD_SECRET?: string
  /** "none" (open registry, the default) or "token" (src/auth/; docs/authentication.md). */
  AUTH_MODE?: string
  /** The token service name; unset = the request's host. */
  AUTH_SERVICE?: string
  /** JSON rules: who may pull, push, delete where (src/auth/rules.ts). */
  AUTH_RULES?: JsonList
  /** JSON list of trusted OIDC issuers: CI jobs sign in with identity tokens (src/auth/oidc/). */
  AUTH_OIDC?: JsonList
  /** Secret: JSON `{"user": "pbkdf2-sha256$…"}` (scripts/hash-password.mjs). */
  AUTH_USERS?: string
  /** Secret: HS256 key for tokens, at least 32 characters. */
  AUTH_TOKEN_SECRET?: string
  /** The garbage collector (src/gc/workflow.ts). */
  GC_WORKFLOW?: Workflow<import('./gc/params').GcPayload>
  /** Removes the tags of a manifest deleted by digest when there are too many for one request (src/gc/untag.ts). */
  UNTAG_WORKFLOW?: Workflow<import('./gc/untag').UntagParams>
  /** Nothing younger than this many seconds is collected (default 86400; ≥ 3600 unless GC_TEST_SHORT_GRACE). */
  GC_GRACE_SECONDS?: WholeNumber
  /** Seconds between a run's mark and its sweep (default 300: KV propagation + link cache + a request). */
  GC_SETTLE_SECONDS?: WholeNumber
  /** "true" allows GC_GRACE_SECONDS / GC_SETTLE_SECONDS below their floors (tests, local trials). */
  GC_TEST_SHORT_GRACE?: Flag
  /** KV writes (and KV deletes) one collection may make; unset: no limit ("900" on the Free plan). src/settings/gc.ts */
  GC_MAX_KV_WRITES?: string | number
  /** "true": every write answers 405 UNSUPPORTED (maintenance). */
  READ_ONLY?: Flag
  /** JSON retention rules per repository pattern (src/gc/retention.ts). */
  RETENTION?: JsonList
  /** JSON list of tag patterns that may not move or be deleted once set (src/gc/immutable.ts). */
  IMMUTABLE_TAGS?: JsonList
  /** JSON list of upstream registries mirrored as pull-through caches (src/proxy/config.ts). */
  UPSTREAMS?: JsonList
  /** Secret: JSON `{"<prefix or host>": "user:password" | "token"}` for the upstreams. */
  UPSTREAM_CREDENTIALS?: string
  /** Seconds an address or user name past a sign-in limit is refused; every 429's Retry-After (src/settings/throttle.ts). */
  THROTTLE_RETRY_SECONDS?: WholeNumber
  /** "true": anonymous manifest GETs are limited per client address (ANONYMOUS_PULLS_BY_ADDRESS). */
  THROTTLE_ANONYMOUS_PULLS?: Flag
  /** Rate Limiting bindings (wrangler.toml [[ratelimits]]; src/auth/throttle.ts): failed sign-ins per address. */
  SIGNIN_FAILURES_BY_ADDRESS?: RateLimit
  /** Failed sign-ins per user name (AUTH_USERS names, and names that are not). */
  SIGNIN_FAILURES_BY_USER?: RateLimit
  /** Password checks (and robot lookups) per address, right or wrong: bounds a burst of parallel guesses. */
  SIGNIN_CHECKS_BY_ADDRESS?: RateLimit
  /** Anonymous manifest GETs per address, when THROTTLE_ANONYMOUS_PULLS is "true". */
  ANONYMOUS_PULLS_BY_ADDRESS?: RateLimit
  /** JSON list of webhook endpoints told about pushes, pulls, mounts and deletes (src/settings/events.ts). */
  NOTIFICATIONS?: JsonList
  /** Secret: JSON `{"<endpoint name>": "whsec_<base64 key>"}`: each endpoint's Standard Webhooks key. */
  NOTIFICATION_SECRETS?: string
  /** "true": manifest GETs are counted per manifest (pulls, last pull); default "false". */
  PULL_STATS?: Flag
  /** Events to deliver, one message per (change, endpoint) (src/events/; docs/events.md). */
  EVENTS?: Queue<import('./events/messages').Delivery>
  /** Deliveries that used up their endpoint's maxRetries. */
  EVENTS_DLQ?: Queue<import('./events/messages').Delivery>
  /** Counted pulls (PULL_STATS), aggregated by the consumer into per-repository statistics. */
  PULLS?: Queue<import('./events/messages').Pull>
}
