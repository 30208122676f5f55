/**
 * Where a filtered listing stopped reading, sealed for its `Link`. A listing filtered by what the
 * caller may see (the catalog without the catalog right, the web UI's Repositories page) reads
 * a bounded number of pages a request; when they run out it must send the caller on from the
 * last name it read, which may be one the caller may not see. So that name travels encrypted
 * (AES-GCM, keyed from the upload secret): opaque to the client, and refused if altered.
 */
import type { Env } from '../env'
import { uploadSecret } from '../storage/secrets'

const keyCache = new Map<string, Promise<CryptoKey>>()

function keyOf(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret)
  if (!key) {
    key = crypto.subtle
      .digest('SHA-256', new TextEncoder().encode(`listing-resume:${secret}`))
      .then((raw) => crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']))
    keyCache.set(secret, key)
  }
  return key
}

const b64url = (bytes: Uint8Array): string => btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')

/** `name` sealed (free: no storage call once the isolate has its secret). */
export async function sealResume(env: Env, configured: string | null, name: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12))
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, await keyOf(await uploadSecret(env, configured)), new TextEncoder().encode(name)))
  const out = new Uint8Array(iv.length + sealed.length)
  out.set(iv)
  out.set(sealed, iv.length)
  return b64url(out)
}

/** The name a token sealed, or null for anything else (altered, foreign, malformed). */
export async function openResume(env: Env, configured: string | null, token: string | null): Promise<string | null> {
  if (!token || token.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(token)) return null
  try {
    const bytes = Uint8Array.from(atob(token.replaceAll('-', '+').replaceAll('_', '/')), (c) => c.charCodeAt(0))
    const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: bytes.subarray(0, 12) }, await keyOf(await uploadSecret(env, configured)), bytes.subarray(12))
    return new TextDecoder().decode(plain)
  } catch {
    return null
  }
}
