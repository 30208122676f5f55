/**
 * The consumer of EVENTS: each message is one delivery to one endpoint (publish.ts).
 *
 * - A 2xx answer acks the message. Anything else (another status, a timeout after the endpoint's
 *   `timeoutSeconds`, a refused connection, a redirect) retries it after a backoff of
 *   10 s × 2^(attempt-1), at most an hour (`msg.retry({delaySeconds})`): the message leaves the
 *   batch and waits in the queue, so a down endpoint holds no memory and no other message.
 * - After `maxRetries` retries the message goes to the dead-letter queue (EVENTS_DLQ) and counts
 *   in the endpoint's dead letters.
 * - Endpoints are served side by side; an endpoint's own messages one at a time, oldest first, and
 *   once one of them gets no answer (timeout, refused connection), the rest of that endpoint's
 *   messages in this batch wait as long, untried (one timeout per down endpoint per batch, never
 *   one per message); only a delivery that was tried is ever dead-lettered.
 * - Every attempt carries the same `webhook-id`, so a receiver drops duplicates (at-least-once).
 * - Per batch and endpoint, what happened is appended to its delivery log (1 R2 get + 1 R2 put).
 */
import type { Env } from '../env'
import { notificationSettings } from '../settings'
import type { Endpoint } from '../settings/events'
import { recordDeliveries, type DeliveryRecord } from '../storage/deliveries'
import { render } from './formats'
import type { Delivery } from './messages'
import { webhookHeaders } from './sign'
import { logEvent } from '../log'

/** Seconds before retry n+1 (n = attempts so far). */
export const backoffSeconds = (attempts: number): number => Math.min(10 * 2 ** Math.max(0, attempts - 1), 3600)

export const USER_AGENT = 'edge-registry-notifications/1'

/** Delivers a batch's deliveries, endpoint by endpoint side by side. */
export async function deliver(messages: Message<Delivery>[], env: Env): Promise<void> {
  const settings = notificationSettings(env)
  const byEndpoint = new Map<string, Message<Delivery>[]>()
  for (const m of messages) (byEndpoint.get(m.body.endpoint) ?? byEndpoint.set(m.body.endpoint, []).get(m.body.endpoint)!).push(m)
  await Promise.all([...byEndpoint].map(([name, messages]) => {
    const endpoint = settings.endpoints.find((e) => e.name === name)
    if (endpoint) return deliverTo(env, endpoint, settings.keys.get(name)!, messages)
    // The endpoint was removed from NOTIFICATIONS since: nobody to deliver to.
    logEvent('warn', { event: 'events.endpoint-gone', endpoint: name, deliveries: messages.length }) // no longer in NOTIFICATIONS: dropped
    for (const m of messages) m.ack()
  }))
}

async function deliverTo(env: Env, endpoint: Endpoint, key: Uint8Array, messages: Message<Delivery>[]): Promise<void> {
  // Oldest change first (Queues do not promise order).
  messages.sort((a, b) => (a.body.events[0]?.timestamp ?? '').localeCompare(b.body.events[0]?.timestamp ?? ''))
  const records: DeliveryRecord[] = []
  const outcomes: { m: Message<Delivery>; outcome: DeliveryRecord['outcome']; delaySeconds?: number }[] = []
  // Once a delivery got no answer (a timeout, a refused connection), the endpoint's other messages
  // wait as long as it does, untried: a hanging endpoint costs one timeout per batch. A prompt
  // error status is no reason to skip the others.
  let wait: number | null = null
  for (const m of messages) {
    if (wait !== null) {
      outcomes.push({ m, outcome: 'retrying', delaySeconds: wait })
      continue
    }
    const attempt = await post(endpoint, key, m.body)                                      // 1 request (1 per event: CloudEvents)
    if (attempt.ok) {
      records.push(record(m, attempt, 'delivered'))
      outcomes.push({ m, outcome: 'delivered' })
      continue
    }
    const delaySeconds = backoffSeconds(m.attempts)
    if (attempt.status === null) wait = delaySeconds
    if (m.attempts <= endpoint.maxRetries) {
      records.push({ ...record(m, attempt, 'retrying'), retryIn: delaySeconds })
      outcomes.push({ m, outcome: 'retrying', delaySeconds })
      continue
    }
    // Only a delivery that was tried (and failed) its last time is a dead letter.
    records.push(record(m, attempt, 'dead'))
    outcomes.push({ m, outcome: 'dead' })
  }
  let logged = true
  try {
    await recordDeliveries(env, endpoint.name, records)                                      // R2 get + R2 put
  } catch (err) {
    logged = false
    logEvent('error', { event: 'events.log-not-written', endpoint: endpoint.name, error: String(err), records })
  }
  for (const { m, outcome, delaySeconds } of outcomes) {
    if (outcome === 'delivered') m.ack()
    else if (outcome === 'retrying') m.retry({ delaySeconds })
    // A dead letter the log does not count yet is tried again later (and counted then).
    else if (!logged) m.retry({ delaySeconds: 60 })
    else await deadLetter(env, m)                                                            // Queue write
  }
}

async function deadLetter(env: Env, m: Message<Delivery>): Promise<void> {
  try {
    if (env.EVENTS_DLQ) {
      await env.EVENTS_DLQ.send(m.body, { contentType: 'json' })                             // Queue write
      logEvent('warn', { event: 'events.dead-letter', endpoint: m.body.endpoint, id: m.body.id, attempts: m.attempts })
    } else logEvent('error', { event: 'events.dead-letter-lost', delivery: m.body }) // no EVENTS_DLQ binding
    m.ack()
  } catch (err) {
    logEvent('error', { event: 'events.dead-letter-retry', id: m.body.id, error: String(err) }) // the dead-letter queue refused
    m.retry({ delaySeconds: 60 })
  }
}

interface Attempt {
  ok?: boolean
  status: number | null
  error?: string
}

function record(m: Message<Delivery>, a: Attempt, outcome: DeliveryRecord['outcome']): DeliveryRecord {
  return {
    time: new Date().toISOString(),
    id: m.body.id,
    events: m.body.events.length,
    status: a.status,
    ...(a.error ? { error: a.error } : {}),
    attempts: m.attempts,
    outcome,
  }
}

/** POSTs a delivery, signed (one request; one per event for CloudEvents). */
async function post(endpoint: Endpoint, key: Uint8Array, d: Delivery): Promise<Attempt> {
  let last: Attempt = { ok: true, status: null }
  for (const r of render(endpoint.format, d)) {
    const headers = {
      ...endpoint.headers,
      'Content-Type': r.contentType,
      'User-Agent': USER_AGENT,
      ...(await webhookHeaders(key, r.id, r.body)),
    }
    try {
      const res = await fetch(endpoint.url, {
        method: 'POST',
        headers,
        body: r.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(endpoint.timeoutSeconds * 1000),
      })
      await res.body?.cancel().catch(() => {})
      last = { ok: res.status >= 200 && res.status < 300, status: res.status }
      if (!last.ok) return last
    } catch (err) {
      const timeout = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
      return { status: null, error: timeout ? `no answer within ${endpoint.timeoutSeconds} s` : `request failed: ${String(err).slice(0, 200)}` }
    }
  }
  return last
}
