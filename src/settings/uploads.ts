/** Upload limits and the key that signs upload sessions (docs/settings.md, docs/big-layers.md). */
import * as v from 'valibot'
import { wholeNumber } from './values'

/**
 * Cloudflare refuses request bodies over 100 MB on Free and Pro (200 MB Business, 500 MB
 * Enterprise) before the worker runs. 90 MiB (94,371,840 bytes) stays 5.6% under 100 MB read
 * as 10^8 bytes, and is a whole number of multipart parts (PART_SIZE, 10 MiB): a client sending
 * chunks of exactly this size never leaves a remainder that the next chunk must re-read.
 */
export const DEFAULT_MAX_CHUNK_BYTES = 90 * 1024 * 1024

/** Largest body of one upload request (POST, PATCH, PUT), advertised as OCI-Chunk-Max-Length. */
export const MAX_CHUNK_BYTES = wholeNumber({
  fallback: DEFAULT_MAX_CHUNK_BYTES,
  min: 1024 * 1024,
  description: 'Largest body of one upload request, in bytes (advertised as OCI-Chunk-Max-Length); larger answer 413',
  message: 'must be a whole number of bytes, at least 1048576 (1 MiB)',
})

/** An HMAC key a person sets: at least this long (AUTH_TOKEN_SECRET's floor too). */
const MIN_UPLOAD_SECRET_LENGTH = 32

/**
 * Secret: signs upload session state (and the catalog's sealed `resume` points); unset, a random
 * one is made once and kept in R2 (null). A short one could be guessed, and with it any session's
 * state forged: at least 32 characters.
 */
export const UPLOAD_SECRET = v.pipe(
  v.optional(v.string('must be a string'), ''),
  v.metadata({ description: `Secret: signs upload session state, at least ${MIN_UPLOAD_SECRET_LENGTH} characters; unset, one is generated once and kept in R2` }),
  v.check((s) => s === '' || s.length >= MIN_UPLOAD_SECRET_LENGTH, `must be at least ${MIN_UPLOAD_SECRET_LENGTH} characters (openssl rand -base64 48), or unset`),
  v.transform((s): string | null => s || null),
)
