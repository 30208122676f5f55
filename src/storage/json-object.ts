/**
 * A small JSON object in R2 changed by read-modify-write: the put is conditional on the etag
 * read (or on absence), so two writers never lose each other's change; the loser reads again.
 * R2 takes about one write per second per key, so a retry waits a second.
 */
import type { Env } from '../env'
import { logEvent } from '../log'

const TRIES = 5

/**
 * Applies `change` to the object at `key` (`empty` when absent) and writes it back. 1 R2 get +
 * 1 R2 put per try; throws after TRIES conflicts (the caller retries later).
 */
export async function updateJson<T>(env: Env, key: string, empty: () => T, change: (value: T) => T): Promise<T> {
  for (let i = 0; i < TRIES; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1000 + Math.random() * 500))
    const current = await env.BLOBS.get(key)                                       // R2 get
    let value = empty()
    if (current) {
      try {
        value = (await current.json()) as T
      } catch {
        // An unreadable object is replaced (it holds statistics, nothing a registry needs).
      }
    }
    const next = change(value)
    const onlyIf: R2Conditional = current ? { etagMatches: current.etag } : { etagDoesNotMatch: '*' }
    const put = await env.BLOBS.put(key, JSON.stringify(next), {                 // R2 put
      httpMetadata: { contentType: 'application/json' },
      onlyIf,
    }).catch((err: unknown) => {
      // A 429 for writing one key too often is a conflict like any other.
      logEvent('warn', { event: 'storage.write-conflict', key, error: String(err) }) // retried
      return null
    })
    if (put) return next
  }
  throw new Error(`${key}: ${TRIES} conflicting writes in a row`)
}

/** The object at `key`, or null. 1 R2 get. */
export async function readJson<T>(env: Env, key: string): Promise<T | null> {
  const object = await env.BLOBS.get(key)
  if (!object) return null
  try {
    return (await object.json()) as T
  } catch {
    return null
  }
}
