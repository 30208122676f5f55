/**
 * The key that signs upload state. An operator may set UPLOAD_SECRET; otherwise a
 * random one is made on first use and kept in R2, so no deployment ever runs with
 * a guessable key. Read once per isolate: 1 R2 get on a cold isolate, else none.
 */
import type { Env } from '../env'
import { toHex } from './streams'
import { keys } from './keys'

let generated: Promise<string> | null = null

export function uploadSecret(env: Env, configured: string | null): Promise<string> {
  if (configured) return Promise.resolve(configured)
  generated ??= loadOrCreate(env).catch((err) => {
    generated = null
    throw err
  })
  return generated
}

async function loadOrCreate(env: Env): Promise<string> {
  const key = keys.uploadSecret()
  const existing = await env.BLOBS.get(key)
  if (existing) return existing.text()
  const fresh = toHex(crypto.getRandomValues(new Uint8Array(32)))
  // Two isolates racing here: the first write wins and both use it.
  const put = await env.BLOBS.put(key, fresh, { onlyIf: { etagDoesNotMatch: '*' } })
  return put ? fresh : ((await env.BLOBS.get(key))?.text() ?? fresh)
}
