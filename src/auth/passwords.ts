/**
 * Password hashes for AUTH_USERS: PBKDF2-SHA256 through crypto.subtle, written
 * `pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>` (scripts/hash-password.mjs
 * makes them). Workers cap PBKDF2 at 100,000 iterations; at that count one check
 * costs tens of milliseconds of CPU, so verified credentials are cached (credentials.ts).
 */
import { PBKDF2_MAX_ITERATIONS, type PasswordHash } from '../settings/auth'

/** The stored form's grammar is a setting's (AUTH_USERS), so it lives with the schema. */
export { parsePasswordHash, PBKDF2_MAX_ITERATIONS, type PasswordHash } from '../settings/auth'

const PREFIX = 'pbkdf2-sha256'
const HASH_BYTES = 32

/** The stored form of a password (tests and tools; the worker only verifies). */
export async function hashPassword(password: string, iterations = PBKDF2_MAX_ITERATIONS): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16))
  const hash = await pbkdf2(password, salt, iterations)
  return `${PREFIX}$${iterations}$${toBase64(salt)}$${toBase64(hash)}`
}

/** Whether `password` matches; the comparison takes the same time wherever the bytes differ. */
export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  return timingSafeEqual(await pbkdf2(password, stored.salt, stored.iterations), stored.hash)
}

async function pbkdf2(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveBits'])
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, HASH_BYTES * 8)
  return new Uint8Array(bits)
}

/** Constant-time equality of two byte strings (their lengths are not secret). */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b)
}

/** SHA-256 of a string, as bytes. */
export async function sha256(s: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s)))
}

const toBase64 = (bytes: Uint8Array): string => btoa(String.fromCharCode(...bytes))
