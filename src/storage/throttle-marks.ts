/**
 * Marks on client addresses and user names past a sign-in limit (src/auth/throttle.ts), until a
 * time: in isolate memory and in the location's Cache API (free), the same scope as a Rate
 * Limiting binding's counters (per Cloudflare location). A mark is what lets the next attempt be
 * refused before any password check: the binding itself can only count, not be asked.
 */
import { keys } from './keys'

export type MarkKind = 'address' | 'user'

const MEMORY_ENTRIES = 10_000
/** Marks this isolate knows: key → until (ms). */
const memory = new Map<string, number>()

/** Until when (ms) a mark holds, or null. Memory, else 1 Cache API match (free). */
export async function readMark(origin: string, kind: MarkKind, id: string, now = Date.now()): Promise<number | null> {
  const key = keys.throttleMark(origin, kind, id)
  const known = memory.get(key)
  if (known !== undefined) {
    if (known > now) return known
    memory.delete(key)
  }
  const cached = await caches.default.match(key)
  const until = Number(cached?.headers.get('X-Until'))
  await cached?.body?.cancel()
  if (!Number.isSafeInteger(until) || until <= now) return null
  remember(key, until)
  return until
}

/** Marks an address or user name until `until` (ms): memory and 1 Cache API put (free). */
export async function writeMark(origin: string, kind: MarkKind, id: string, until: number, now = Date.now()): Promise<void> {
  const key = keys.throttleMark(origin, kind, id)
  remember(key, until)
  const seconds = Math.max(1, Math.ceil((until - now) / 1000))
  await caches.default.put(key, new Response('', {
    headers: { 'X-Until': String(until), 'Cache-Control': `max-age=${seconds}`, 'Content-Type': 'text/plain' },
  }))
}

function remember(key: string, until: number): void {
  memory.delete(key)
  memory.set(key, until)
  // Maps iterate in insertion order: the first key is the oldest.
  if (memory.size > MEMORY_ENTRIES) memory.delete(memory.keys().next().value!)
}
