/** Bindings and settings (wrangler.toml `[vars]`, secrets). */
export interface Env {
  BLOBS: R2Bucket
  LINKS: KVNamespace
  DELETE_ENABLED?: string
  SCHEMA1_ENABLED?: string
  MANIFEST_MAX_BYTES?: string
  /** Largest request body an upload takes (a chunk); README "Settings". */
  MAX_CHUNK_BYTES?: string
  LINK_CACHE_SECONDS?: string
  UPLOAD_SECRET?: string
  /** "none" (open registry, the default) or "token" (src/auth/; README "Authentication"). */
  AUTH_MODE?: string
  /** The token service name; unset = the request's host. */
  AUTH_SERVICE?: string
  /** JSON rules: who may pull, push, delete where (src/auth/rules.ts). */
  AUTH_RULES?: string
  /** Secret: JSON `{"user": "pbkdf2-sha256$…"}` (scripts/hash-password.mjs). */
  AUTH_USERS?: string
  /** Secret: HS256 key for tokens, at least 32 characters. */
  AUTH_TOKEN_SECRET?: string
}

/** Parsed settings, with the defaults the README documents. */
export interface Settings {
  deleteEnabled: boolean
  schema1Enabled: boolean
  manifestMaxBytes: number
  /** Largest body of one upload request (POST, PATCH, PUT); advertised as OCI-Chunk-Max-Length. */
  maxChunkBytes: number
  linkCacheSeconds: number
  /** Signs upload session state; when unset, a random one is made once and kept in R2. */
  uploadSecret: string | null
}

export function settings(env: Env): Settings {
  return {
    deleteEnabled: env.DELETE_ENABLED !== 'false',
    schema1Enabled: env.SCHEMA1_ENABLED === 'true',
    manifestMaxBytes: positiveInt(env.MANIFEST_MAX_BYTES, 4 * 1024 * 1024),
    maxChunkBytes: chunkLimit(env.MAX_CHUNK_BYTES),
    linkCacheSeconds: positiveInt(env.LINK_CACHE_SECONDS, 60),
    uploadSecret: env.UPLOAD_SECRET || null,
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
