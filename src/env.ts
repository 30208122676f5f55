/** Bindings and settings (wrangler.toml `[vars]`, secrets). */
export interface Env {
  BLOBS: R2Bucket
  LINKS: KVNamespace
  DELETE_ENABLED?: string
  SCHEMA1_ENABLED?: string
  MANIFEST_MAX_BYTES?: string
  /** Largest request body an upload takes (a chunk); docs/settings.md. */
  MAX_CHUNK_BYTES?: string
  LINK_CACHE_SECONDS?: string
  UPLOAD_SECRET?: string
  /** "none" (open registry, the default) or "token" (src/auth/; docs/authentication.md). */
  AUTH_MODE?: string
  /** The token service name; unset = the request's host. */
  AUTH_SERVICE?: string
  /** JSON rules: who may pull, push, delete where (src/auth/rules.ts). */
  AUTH_RULES?: string
  /** JSON list of trusted OIDC issuers: CI jobs sign in with identity tokens (src/auth/oidc/). */
  AUTH_OIDC?: string
  /** Secret: JSON `{"user": "pbkdf2-sha256$…"}` (scripts/hash-password.mjs). */
  AUTH_USERS?: string
  /** Secret: HS256 key for tokens, at least 32 characters. */
  AUTH_TOKEN_SECRET?: string
  /** The garbage collector (src/gc/workflow.ts). */
  GC_WORKFLOW?: Workflow<import('./gc/params').GcPayload>
  /** Nothing younger than this many seconds is collected (default 86400; ≥ 3600 unless GC_TEST_SHORT_GRACE). */
  GC_GRACE_SECONDS?: string
  /** Seconds between a run's mark and its sweep (default 300: KV propagation + link cache + a request). */
  GC_SETTLE_SECONDS?: string
  /** "true" allows GC_GRACE_SECONDS / GC_SETTLE_SECONDS below their floors (tests, local trials). */
  GC_TEST_SHORT_GRACE?: string
  /** KV writes (and KV deletes) one collection may make; unset: no limit ("900" on the Free plan). src/settings/gc-scale.ts */
  GC_MAX_KV_WRITES?: string
  /** "true": every write answers 405 UNSUPPORTED (maintenance). */
  READ_ONLY?: string
  /** JSON retention rules per repository pattern (src/gc/retention.ts). */
  RETENTION?: string
  /** JSON list of tag patterns that may not move or be deleted once set (src/gc/immutable.ts). */
  IMMUTABLE_TAGS?: string
  /** JSON list of upstream registries mirrored as pull-through caches (src/proxy/config.ts). */
  UPSTREAMS?: string
  /** Secret: JSON `{"<prefix or host>": "user:password" | "token"}` for the upstreams. */
  UPSTREAM_CREDENTIALS?: string
}

/** Parsed settings, with the defaults docs/settings.md documents. */
export interface Settings {
  deleteEnabled: boolean
  schema1Enabled: boolean
  manifestMaxBytes: number
  /** Largest body of one upload request (POST, PATCH, PUT); advertised as OCI-Chunk-Max-Length. */
  maxChunkBytes: number
  linkCacheSeconds: number
  /** Signs upload session state; when unset, a random one is made once and kept in R2. */
  uploadSecret: string | null
  /** READ_ONLY: every write answers 405 UNSUPPORTED. */
  readOnly: boolean
}

export function settings(env: Env): Settings {
  return {
    deleteEnabled: env.DELETE_ENABLED !== 'false',
    schema1Enabled: env.SCHEMA1_ENABLED === 'true',
    manifestMaxBytes: positiveInt(env.MANIFEST_MAX_BYTES, 4 * 1024 * 1024),
    maxChunkBytes: chunkLimit(env.MAX_CHUNK_BYTES),
    linkCacheSeconds: positiveInt(env.LINK_CACHE_SECONDS, 60),
    uploadSecret: env.UPLOAD_SECRET || null,
    readOnly: env.READ_ONLY === 'true',
  }
}

/**
 * Cloudflare refuses request bodies over 100 MB on Free and Pro (200 MB Business, 500 MB
 * Enterprise) before the worker runs. 90 MiB (94,371,840 bytes) stays 5.6% under 100 MB read
 * as 10^8 bytes, and is a whole number of multipart parts (PART_SIZE, 10 MiB): a client sending
 * chunks of exactly this size never leaves a remainder that the next chunk must re-read.
 */
export const DEFAULT_MAX_CHUNK_BYTES = 90 * 1024 * 1024

/** MAX_CHUNK_BYTES: a whole number of bytes, at least 1 MiB; anything else fails closed. */
function chunkLimit(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return DEFAULT_MAX_CHUNK_BYTES
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 1024 * 1024) {
    throw new Error('MAX_CHUNK_BYTES must be a whole number of bytes, at least 1048576 (1 MiB)')
  }
  return n
}

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value)
  return Number.isSafeInteger(n) && n >= 0 ? n : fallback
}
