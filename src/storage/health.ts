/**
 * /_health's storage probes: 1 R2 head and 1 KV get of a key never written (keys.healthProbe),
 * at most once per location every PROBE_TTL_MS. The result is kept in isolate memory (a probe
 * under way is shared) and in the location's Cache API (free), so a monitor, or anyone, calling
 * /_health in a loop cannot run up the bill. Memory holds one result per bucket binding, whatever
 * host name asked (so varying the Host on a wildcard route probes nothing more); the Cache API
 * keys on the origin, as every edge cache key here does. A probe that takes longer than
 * PROBE_TIMEOUT_MS fails.
 */
import type { Env } from '../env'
import { logEvent } from '../log'
import { keys } from './keys'

export type Status = 'ok' | 'failed'

export interface StorageHealth {
  r2: Status
  kv: Status
}

export const PROBE_TTL_MS = 10_000
const PROBE_TIMEOUT_MS = 5_000

/** The probe's result (a promise while it runs) and until when it stands, per bucket binding (one per isolate). */
const memory = new WeakMap<R2Bucket, { until: number; result: Promise<StorageHealth> }>()

/** R2 and KV as last probed at this location: memory, else 1 Cache API match, else 1 R2 head + 1 KV get (+1 Cache API put). */
export function storageHealth(env: Env, origin: string): Promise<StorageHealth> {
  const now = Date.now()
  const known = memory.get(env.BLOBS)
  if (known && known.until > now) return known.result
  // While the probe runs, callers share it; then its result stands until PROBE_TTL_MS after it was made.
  const entry = { until: Number.POSITIVE_INFINITY, result: Promise.resolve<StorageHealth>({ r2: 'failed', kv: 'failed' }) }
  entry.result = cachedOrProbed(env, origin, now).then(
    ({ health, at }) => {
      entry.until = at + PROBE_TTL_MS
      return health
    },
    (err) => {
      // The Cache API itself failed: say so, and let the next call try again.
      entry.until = 0
      logEvent('error', { event: 'health.failed', check: 'cache', message: `${err instanceof Error ? err.message : String(err)}` })
      return { r2: 'failed', kv: 'failed' }
    },
  )
  memory.set(env.BLOBS, entry)
  return entry.result
}

async function cachedOrProbed(env: Env, origin: string, now: number): Promise<{ health: StorageHealth; at: number }> {
  const key = keys.cachedHealth(origin)
  const cached = await caches.default.match(key)                                    // Cache API (free)
  if (cached) {
    const at = Number(cached.headers.get('X-Probed-At'))
    const health = (await cached.json()) as StorageHealth
    if (Number.isSafeInteger(at) && at <= now && at + PROBE_TTL_MS > now) return { health, at }
  }
  // Independent: one binding each.
  const [r2, kv] = await Promise.all([
    probe('r2', () => env.BLOBS.head(keys.healthProbe())),                            // R2 head
    probe('kv', () => env.LINKS.get(keys.healthProbe())),                             // KV get
  ])
  const health = { r2, kv }
  await caches.default.put(key, Response.json(health, {
    headers: { 'X-Probed-At': String(now), 'Cache-Control': `max-age=${PROBE_TTL_MS / 1000}` },
  }))
  return { health, at: now }
}

async function probe(check: 'r2' | 'kv', call: () => Promise<unknown>): Promise<Status> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS)
  })
  try {
    await Promise.race([call(), timeout])
    return 'ok'
  } catch (err) {
    logEvent('error', { event: 'health.failed', check, message: err instanceof Error ? err.message : String(err) })
    return 'failed'
  } finally {
    clearTimeout(timer)
  }
}
