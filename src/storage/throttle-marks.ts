/**
 * Marks on client addresses and user names past a sign-in limit (src/auth/throttle.ts), until a
 * time: in isolate memory and in the location's Cache API (free), the same scope as a Rate
 * Limiting binding's counters (per Cloudflare location). A mark is what lets the next attempt be
 * refused before any password check: the binding itself can only count, not be asked.
 *
 * Like the binding's counters, a mark does not depend on the host the attempt names: memory
 * holds it for the whole isolate, and the edge cache under the request's host name alone (no
 * scheme, no port). Keyed by the request's origin, a guesser past the limit had a password
 * checked again by each new Host header (any reaches `npm start` on a LAN), `http://` or port
 * (Cloudflare serves a zone on several), and a right one let in.
 */
import { keys } from './keys'

export type MarkKind = 'address' | 'user'

const MEMORY_ENTRIES = 10_000
/** Marks this isolate knows: `<kind>/<id>` → until (ms). */
const memory = new Map<string, number>()

/** Until when (ms) a mark holds, or null. Memory, else 1 Cache API match (free). */
export async function readMark(origin: string, kind: MarkKind, id: string, now = Date.now()): Promise<number | null> {
  const held = `${kind}/${id}`
  const known = memory.get(held)
  if (known !== undefined) {
    if (known > now) return known
    memory.delete(held)
  }
  const cached = await caches.default.match(keys.throttleMark(hostOnly(origin), kind, id))
  const until = Number(cached?.headers.get('X-Until'))
  await cached?.body?.cancel()
  if (!Number.isSafeInteger(until) || until <= now) return null
  remember(held, until)
  return until
}

/** Marks an address or user name until `until` (ms): memory and 1 Cache API put (free). */
export async function writeMark(origin: string, kind: MarkKind, id: string, until: number, now = Date.now()): Promise<void> {
  remember(`${kind}/${id}`, until)
  const seconds = Math.max(1, Math.ceil((until - now) / 1000))
  await caches.default.put(keys.throttleMark(hostOnly(origin), kind, id), new Response('', {
    headers: { 'X-Until': String(until), 'Cache-Control': `max-age=${seconds}`, 'Content-Type': 'text/plain' },
  }))
}

/** `https://<host name>` of an origin: one edge cache key whatever scheme, port or trailing dot the request named. */
const hostOnly = (origin: string): string => `https://${new URL(origin).hostname.replace(/\.$/, '')}`

function remember(key: string, until: number): void {
  memory.delete(key)
  memory.set(key, until)
  // Maps iterate in insertion order: the first key is the oldest.
  if (memory.size > MEMORY_ENTRIES) memory.delete(memory.keys().next().value!)
}
