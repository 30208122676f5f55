/**
 * The EVENTS consumer: signed deliveries in both formats, backoff per endpoint, the dead-letter
 * queue, and endpoints that never hold each other up. Signatures are checked with the
 * `standardwebhooks` package, as a receiver would.
 */
import { Webhook } from 'standardwebhooks'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { newEvent } from '../../src/events/event'
import type { Delivery } from '../../src/events/messages'
import { deliveries } from '../../src/events/publish'
import { readDeliveryLog } from '../../src/storage/deliveries'
import { consumeBatch, KEY, OTHER_KEY, Receivers, withEndpoints } from './setup'

const QUEUE = 'edge-registry-events'
const A = 'https://a.example.com/hook'
const B = 'https://b.example.com/hook?token=s3cret'
let receivers: Receivers
let n = 0
const name = (base: string) => `${base}-${Date.now().toString(36)}${(n++).toString(36)}`

beforeEach(() => {
  receivers = new Receivers().install()
})
afterEach(() => vi.restoreAllMocks())

const FROM = {
  actor: 'alice',
  request: { id: 'ray-1', addr: '203.0.113.9', host: 'registry.example.com', method: 'PUT', useragent: 'docker/27' },
  origin: 'https://registry.example.com',
}
const pushed = (tag?: string) => newEvent(FROM, 'push', {
  repository: 'team/app', digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 500, length: 500,
  ...(tag ? { tag } : {}),
})

/** The delivery messages publish() would make for `events`, with this env's endpoints. */
const messagesFor = (env: Parameters<typeof deliveries>[0], events = [pushed('v1')]) => deliveries(env, events)

describe('a delivery', () => {
  it('POSTs the distribution envelope, signed so that standardwebhooks verifies it, with the static headers', async () => {
    const ep = name('dist')
    const r = withEndpoints([{ name: ep, url: A, headers: { Authorization: 'Bearer static-token', 'X-Team': 'ops' } }])
    const events = [pushed('v1'), pushed('v2')]
    const [message] = messagesFor(r.env, events)
    const { result } = await consumeBatch(r.env, QUEUE, [{ body: message! }])
    expect(result.explicitAcks).toHaveLength(1)
    const [got] = receivers.to(A)
    expect(got!.headers['content-type']).toBe('application/vnd.docker.distribution.events.v2+json')
    expect(got!.headers.authorization).toBe('Bearer static-token')
    expect(got!.headers['x-team']).toBe('ops')
    expect(got!.headers['user-agent']).toMatch(/^edge-registry/)
    expect(got!.headers['webhook-id']).toBe(message!.id)
    expect(got!.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/)
    const verified = new Webhook(KEY).verify(got!.body, got!.headers) as { events: unknown[] }
    expect(verified.events).toEqual(events)
    expect(() => new Webhook(OTHER_KEY).verify(got!.body, got!.headers)).toThrow()
    expect(() => new Webhook(KEY).verify(got!.body.replace('v1', 'v9'), got!.headers)).toThrow()
  })

  it('POSTs CloudEvents 1.0 one event per request, webhook-id = the event id', async () => {
    const ep = name('ce')
    const r = withEndpoints([{ name: ep, url: A, format: 'cloudevents', actions: ['push', 'delete'] }])
    const events = [pushed('v1'), newEvent(FROM, 'delete', { repository: 'team/app', digest: `sha256:${'b'.repeat(64)}`, tags: ['old'] }),
      newEvent(FROM, 'push', { repository: 'team/app', digest: `sha256:${'c'.repeat(64)}`, mediaType: 'application/octet-stream', size: 3 })]
    const messages = messagesFor(r.env, events)
    expect(messages).toHaveLength(3)
    await consumeBatch(r.env, QUEUE, messages.map((body) => ({ body })))
    const got = receivers.to(A)
    expect(got).toHaveLength(3)
    const bodies = got.map((g) => new Webhook(KEY).verify(g.body, g.headers) as Record<string, unknown>)
    for (const [i, g] of got.entries()) {
      expect(g.headers['content-type']).toBe('application/cloudevents+json')
      expect(g.headers['webhook-id']).toBe(bodies[i]!.id)
    }
    const byType = Object.fromEntries(bodies.map((b) => [b.type as string, b]))
    expect(byType['dev.edge-registry.image.pushed']).toMatchObject({
      specversion: '1.0', id: events[0]!.id, subject: 'team/app:v1', source: '//registry.example.com',
      time: events[0]!.timestamp, datacontenttype: 'application/json', data: events[0],
    })
    expect(byType['dev.edge-registry.image.deleted']).toMatchObject({ subject: `team/app@sha256:${'b'.repeat(64)}` })
    expect(byType['dev.edge-registry.blob.pushed']).toMatchObject({ subject: `team/app@sha256:${'c'.repeat(64)}` })
  })

  it('keeps its webhook-id on every retry (a receiver drops duplicates), signing each attempt anew', async () => {
    const ep = name('retry')
    const r = withEndpoints([{ name: ep, url: A }])
    const [message] = messagesFor(r.env)
    receivers.answer = (_url, i) => (i < 2 ? 503 : 200)
    const first = await consumeBatch(r.env, QUEUE, [{ body: message!, attempts: 1 }])
    const second = await consumeBatch(r.env, QUEUE, [{ body: message!, attempts: 2 }])
    const third = await consumeBatch(r.env, QUEUE, [{ body: message!, attempts: 3 }])
    expect([first, second, third].map((x) => x.result.explicitAcks.length)).toEqual([0, 0, 1])
    expect([first, second].map((x) => [...x.retries.values()][0])).toEqual([10, 20])
    const ids = receivers.to(A).map((g) => g.headers['webhook-id'])
    expect(ids).toEqual([message!.id, message!.id, message!.id])
    for (const g of receivers.to(A)) expect(new Webhook(KEY).verify(g.body, g.headers)).toBeTruthy()
    const log = await readDeliveryLog(r.env, ep)
    expect(log.deliveries.map((d) => [d.status, d.attempts, d.outcome])).toEqual([[200, 3, 'delivered'], [503, 2, 'retrying'], [503, 1, 'retrying']])
    expect(log.deliveries[1]).toMatchObject({ id: message!.id, retryIn: 20 })
    expect(log.deadLetters).toBe(0)
  })

  it('backs off 10 s × 2^(attempt-1), at most an hour', async () => {
    const { backoffSeconds } = await import('../../src/events/deliver')
    expect([1, 2, 3, 4, 9, 10, 50].map(backoffSeconds)).toEqual([10, 20, 40, 80, 2560, 3600, 3600])
  })

  it('goes to the dead-letter queue after maxRetries retries, and counts there', async () => {
    const ep = name('dead')
    const r = withEndpoints([{ name: ep, url: A, maxRetries: 2 }])
    const [message] = messagesFor(r.env)
    receivers.answer = () => 500
    const third = await consumeBatch(r.env, QUEUE, [{ body: message!, attempts: 3 }])
    expect(third.result.explicitAcks).toHaveLength(1)
    expect(third.retries.size).toBe(0)
    expect(r.dlq.sent).toEqual([message])
    const log = await readDeliveryLog(r.env, ep)
    expect(log.deadLetters).toBe(1)
    expect(log.deliveries[0]).toMatchObject({ id: message!.id, status: 500, attempts: 3, outcome: 'dead' })
    // With maxRetries 0, the first failure is the last.
    const none = withEndpoints([{ name: name('once'), url: A, maxRetries: 0 }])
    await consumeBatch(none.env, QUEUE, [{ body: messagesFor(none.env)[0]!, attempts: 1 }])
    expect(none.dlq.sent).toHaveLength(1)
  })

  it('treats a timeout, a refused connection and a redirect as failures', async () => {
    const ep = name('fail')
    const r = withEndpoints([{ name: ep, url: A, timeoutSeconds: 1 }])
    for (const answer of ['hang', 'down', 302] as const) {
      receivers.answer = () => answer
      const { retries } = await consumeBatch(r.env, QUEUE, [{ body: messagesFor(r.env)[0]! }])
      expect(retries.size).toBe(1)
    }
    const log = await readDeliveryLog(r.env, ep)
    expect(log.deliveries.map((d) => [d.status, d.error ?? null])).toEqual([
      [302, null],
      [null, expect.stringMatching(/^request failed/)],
      [null, 'no answer within 1 s'],
    ])
  })
})

describe('endpoints apart', () => {
  it('delivers to an endpoint that is up while another hangs, and tries a down endpoint once per batch', async () => {
    const [a, b] = [name('down'), name('up')]
    const r = withEndpoints([{ name: a, url: A, timeoutSeconds: 1 }, { name: b, url: B }])
    const messages = [...messagesFor(r.env, [pushed('1')]), ...messagesFor(r.env, [pushed('2')]), ...messagesFor(r.env, [pushed('3')])]
    expect(messages.map((m) => m.endpoint).sort()).toEqual([a, a, a, b, b, b].sort())
    receivers.answer = (url) => (url === A ? 'hang' : 200)
    const started = Date.now()
    const { result, retries, batch } = await consumeBatch(r.env, QUEUE, messages.map((body) => ({ body })))
    expect(Date.now() - started).toBeLessThan(5000)
    expect(receivers.to(B)).toHaveLength(3)
    expect(receivers.to(A)).toHaveLength(1)
    const acked = new Set(result.explicitAcks)
    for (const m of batch.messages) {
      const body = m.body as Delivery
      if (body.endpoint === b) expect(acked.has(m.id)).toBe(true)
      else expect(retries.get(m.id)).toBe(10)
    }
  })

  it('drops the deliveries of an endpoint no longer in NOTIFICATIONS', async () => {
    const r = withEndpoints([{ name: name('kept'), url: A }])
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const stale: Delivery = { endpoint: 'removed', id: 'x', events: [pushed()] }
    const { result } = await consumeBatch(r.env, QUEUE, [{ body: stale }])
    expect(result.explicitAcks).toHaveLength(1)
    expect(receivers.received).toEqual([])
    expect(warn).toHaveBeenCalled()
  })

  it('keeps the last 100 attempts per endpoint, newest first', async () => {
    const ep = name('log')
    const r = withEndpoints([{ name: ep, url: A }])
    const messages = Array.from({ length: 60 }, (_, i) => messagesFor(r.env, [pushed(`t${i}`)])[0]!)
    await consumeBatch(r.env, QUEUE, messages.slice(0, 30).map((body) => ({ body })))
    await consumeBatch(r.env, QUEUE, messages.slice(30).map((body) => ({ body })))
    await consumeBatch(r.env, QUEUE, messages.slice(0, 50).map((body) => ({ body })))
    const log = await readDeliveryLog(r.env, ep)
    expect(log.deliveries).toHaveLength(100)
    expect(log.deliveries[0]!.id).toBe(messages[49]!.id)
  })
})

describe('an endpoint that answers, but with an error', () => {
  it('is still tried for each delivery of the batch (only a hang or a refused connection holds the rest back)', async () => {
    const ep = name('err')
    const r = withEndpoints([{ name: ep, url: A, maxRetries: 0 }])
    receivers.answer = () => 503
    const messages = [...messagesFor(r.env, [pushed('1')]), ...messagesFor(r.env, [pushed('2')])]
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    await consumeBatch(r.env, QUEUE, messages.map((body) => ({ body })))
    expect(receivers.to(A)).toHaveLength(2)
    expect(r.dlq.sent.map((d) => d.id).sort()).toEqual(messages.map((m) => m.id).sort())
  })

  it('is never dead-lettered untried: a delivery held back behind a hang waits, whatever its attempts', async () => {
    const ep = name('held')
    const r = withEndpoints([{ name: ep, url: A, maxRetries: 0, timeoutSeconds: 1 }])
    receivers.answer = () => 'hang'
    const messages = [...messagesFor(r.env, [pushed('1')]), ...messagesFor(r.env, [pushed('2')])]
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { retries } = await consumeBatch(r.env, QUEUE, messages.map((body) => ({ body, attempts: 5 })))
    expect(receivers.to(A)).toHaveLength(1)
    expect(r.dlq.sent).toHaveLength(1)
    expect(retries.size).toBe(1)
  })

  it('a dead-letter queue consumed by the worker delivers its messages again', async () => {
    const ep = name('replay')
    const r = withEndpoints([{ name: ep, url: A }])
    const [message] = messagesFor(r.env)
    const { result } = await consumeBatch(r.env, 'edge-registry-events-dlq', [{ body: message! }])
    expect(result.explicitAcks).toHaveLength(1)
    expect(receivers.to(A)[0]!.headers['webhook-id']).toBe(message!.id)
  })
})
