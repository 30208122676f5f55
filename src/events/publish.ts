/**
 * The producer: events become queue messages, one per (change, endpoint) that wants them
 * (filter.ts), so each endpoint's deliveries succeed, back off and dead-letter on their own, and
 * nothing is enqueued for events no endpoint wants (no NOTIFICATIONS: no queue call at all).
 * Counted pulls (PULL_STATS) go to their own queue.
 */
import type { Env } from '../env'
import { notificationSettings } from '../settings'
import type { RegistryEvent } from './event'
import { wants } from './filter'
import type { Delivery, Pull } from './messages'

/** Queues take at most 100 messages and 256 KB per sendBatch; a message at most 128 KB. */
const BATCH_MESSAGES = 100
const BATCH_BYTES = 200_000
const MESSAGE_BYTES = 100_000

/** The messages that deliver `events`: one per endpoint (one per event for CloudEvents, which sends one per request). CPU only. */
export function deliveries(env: Env, events: RegistryEvent[]): Delivery[] {
  const out: Delivery[] = []
  for (const e of notificationSettings(env).endpoints) {
    const wanted = events.filter((ev) => wants(e, ev))
    if (e.format === 'cloudevents') for (const ev of wanted) out.push({ endpoint: e.name, id: ev.id, events: [ev] })
    else for (const part of bySize(wanted)) out.push({ endpoint: e.name, id: part.length === 1 ? part[0]!.id : crypto.randomUUID(), events: part })
  }
  return out
}

/** Enqueues the deliveries of `events` (a change already stored). 1 Queue write per message; none when no endpoint wants them. */
export async function publish(env: Env, events: RegistryEvent[]): Promise<void> {
  const messages = deliveries(env, events)
  if (messages.length) await sendAll(env.EVENTS!, messages)
}

/** Enqueues a counted pull. 1 Queue write. */
export async function countPull(env: Env, pull: Pull): Promise<void> {
  await env.PULLS!.send(pull, { contentType: 'json' })
}

/** sendBatch in pieces Queues accept. */
export async function sendAll<T>(queue: Queue<T>, bodies: T[]): Promise<void> {
  let batch: MessageSendRequest<T>[] = []
  let bytes = 0
  for (const body of bodies) {
    const size = JSON.stringify(body).length
    if (batch.length === BATCH_MESSAGES || (batch.length > 0 && bytes + size > BATCH_BYTES)) {
      await queue.sendBatch(batch)
      batch = []
      bytes = 0
    }
    batch.push({ body, contentType: 'json' })
    bytes += size
  }
  if (batch.length) await queue.sendBatch(batch)
}

/** Events split so that each message stays under MESSAGE_BYTES (a change rarely needs more than one). */
function bySize(events: RegistryEvent[]): RegistryEvent[][] {
  const parts: RegistryEvent[][] = []
  let part: RegistryEvent[] = []
  let bytes = 0
  for (const ev of events) {
    const size = JSON.stringify(ev).length
    if (part.length > 0 && bytes + size > MESSAGE_BYTES) {
      parts.push(part)
      part = []
      bytes = 0
    }
    part.push(ev)
    bytes += size
  }
  if (part.length) parts.push(part)
  return parts
}
