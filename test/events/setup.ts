/**
 * The events tests' plumbing: queues that record what is sent, endpoints whose keys the tests
 * know, and receivers reached through `fetch` (vi.spyOn: the worker runs in the tests' isolate).
 */
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from 'cloudflare:test'
import { vi } from 'vitest'
import type { Env } from '../../src/env'
import { consume } from '../../src/events/queue'
import type { Delivery, Pull } from '../../src/events/messages'
import { router } from '../../src/router'
import { bindings, ORIGIN } from '../helpers'

/** A Standard Webhooks key (32 bytes) per endpoint name the tests use. */
export const KEY = 'whsec_' + btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => i * 7 + 1)))
export const OTHER_KEY = 'whsec_' + btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => 255 - i)))

/** A queue binding that keeps what is sent to it (and can refuse, to test a queue outage). */
export class RecordingQueue<T> {
  readonly sent: T[] = []
  calls = 0
  refuse = 0
  async send(body: T): Promise<void> {
    return this.sendBatch([{ body }])
  }
  async sendBatch(messages: Iterable<MessageSendRequest<T>>): Promise<void> {
    this.calls++
    if (this.refuse > 0) {
      this.refuse--
      throw new Error('Queue send failed: simulated outage')
    }
    for (const m of messages) this.sent.push(structuredClone(m.body))
  }
  get binding(): Queue<T> {
    return this as unknown as Queue<T>
  }
}

export interface Recorded {
  events: RecordingQueue<Delivery>
  dlq: RecordingQueue<Delivery>
  pulls: RecordingQueue<Pull>
  env: Env
}

/** Bindings with NOTIFICATIONS (each endpoint keyed with KEY unless `secrets` says) and recording queues. */
export function withEndpoints(endpoints: Record<string, unknown>[], more: Partial<Env> = {}, secrets?: Record<string, string>): Recorded {
  const events = new RecordingQueue<Delivery>()
  const dlq = new RecordingQueue<Delivery>()
  const pulls = new RecordingQueue<Pull>()
  const keys = secrets ?? Object.fromEntries(endpoints.map((e) => [e.name as string, KEY]))
  const env: Env = {
    ...bindings,
    NOTIFICATIONS: JSON.stringify(endpoints),
    NOTIFICATION_SECRETS: JSON.stringify(keys),
    EVENTS: events.binding,
    EVENTS_DLQ: dlq.binding,
    PULLS: pulls.binding,
    ...more,
  }
  return { events, dlq, pulls, env }
}

/**
 * A request straight to the router with `env`, waiting for its background work. A request to
 * localhost comes from this machine, as `npm start`'s front says (CF-Connecting-IP: its peer).
 */
export async function send(env: Env, path: string, init?: RequestInit): Promise<Response> {
  const ctx = createExecutionContext()
  const req = new Request(path.startsWith('http') ? path : ORIGIN + path, init)
  if (new URL(req.url).hostname === 'localhost' && !req.headers.has('cf-connecting-ip')) req.headers.set('CF-Connecting-IP', '127.0.0.1')
  const res = await router.fetch(req, env, ctx)
  await waitOnExecutionContext(ctx)
  return res
}

/** Every event of the deliveries recorded, in order. */
export const eventsOf = (q: RecordingQueue<Delivery>) => q.sent.flatMap((d) => d.events)

/** One request a receiver got. */
export interface Received {
  url: string
  headers: Record<string, string>
  body: string
}

/**
 * Receivers behind `fetch`: each URL answers what `answer` says (a status, 'hang' or 'down'),
 * 200 by default; every request is kept.
 */
export class Receivers {
  readonly received: Received[] = []
  answer: (url: string, n: number) => number | 'hang' | 'down' = () => 200

  install(): this {
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const req = new Request(input as RequestInfo, init)
      const body = await req.text()
      const n = this.received.filter((r) => r.url === req.url).length
      this.received.push({ url: req.url, headers: Object.fromEntries(req.headers), body })
      const a = this.answer(req.url, n)
      if (a === 'down') throw new TypeError('Network connection lost.')
      if (a === 'hang') {
        return new Promise<Response>((_, reject) => {
          req.signal.addEventListener('abort', () => reject(new DOMException('The operation was aborted due to timeout', 'TimeoutError')))
        })
      }
      return new Response(a === 204 ? null : 'ok', { status: a })
    })
    return this
  }

  to(url: string): Received[] {
    return this.received.filter((r) => r.url === url)
  }
}

/** Runs the queue consumer on `bodies` as one batch (attempts as given): the batch's result. */
export async function consumeBatch<T>(env: Env, queue: string, bodies: { body: T; attempts?: number; id?: string }[]) {
  const batch = createMessageBatch<T>(queue, bodies.map((b, i) => ({
    id: b.id ?? `msg-${i}-${crypto.randomUUID()}`, timestamp: new Date(), attempts: b.attempts ?? 1, body: b.body,
  })))
  const retries = new Map<string, number | undefined>()
  for (const m of batch.messages) {
    const retry = m.retry.bind(m)
    m.retry = (options?: QueueRetryOptions) => {
      retries.set(m.id, options?.delaySeconds)
      retry(options)
    }
  }
  const ctx = createExecutionContext()
  await consume(batch as MessageBatch<unknown>, env)
  const result = await getQueueResult(batch, ctx)
  return { result, retries, batch }
}
