/**
 * What events cost (docs/events.md): the reference push with one NOTIFICATIONS endpoint, a warm
 * pull with PULL_STATS, and a delivery retried twice, through the real router and the real queue
 * consumer, Queue operations counted as billed (a message written, each delivery read, acked
 * deleted; per 64 KB). Prints `BENCH_COST` lines like workloads.bench-test.ts.
 */
import { env } from 'cloudflare:workers'
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test'
import { it, vi } from 'vitest'
import type { Env } from '../../src/env'
import { consume } from '../../src/events/queue'
import type { Delivery, Pull } from '../../src/events/messages'
import { MeteredQueue, meteredR2, type Counts } from './meter'
import { freshRepo, makeImage, meter, pushImage, Workload } from './workload'

const bindings = env as unknown as Env
const KEY = 'whsec_' + btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))
const ENDPOINT = { NOTIFICATIONS: JSON.stringify([{ name: 'ci', url: 'https://ci.example.com/hook' }]), NOTIFICATION_SECRETS: JSON.stringify({ ci: KEY }) }

/** The receiver: `answers` in turn (then 204). */
function receiver(answers: number[] = []) {
  vi.restoreAllMocks()
  vi.spyOn(globalThis, 'fetch').mockImplementation(async () => new Response(null, { status: answers.shift() ?? 204 }))
}

/**
 * Consumes `bodies` as one batch (each at `attempts`) with metered R2 and DLQ: the calls, Queue
 * reads and deletes included, divided by `per` (a batch shared by that many workloads).
 */
async function consumed<T>(vars: Partial<Env>, bodies: T[], attempts = 1, per = 1): Promise<Counts> {
  const before = meter.snapshot()
  const dlq = new MeteredQueue<Delivery>(() => meter)
  const e: Env = { ...bindings, ...vars, BLOBS: meteredR2(meter, bindings.BLOBS), EVENTS_DLQ: dlq.binding }
  const batch = createMessageBatch<T>('bench', bodies.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts, body })))
  const ctx = createExecutionContext()
  await consume(batch as MessageBatch<unknown>, e)
  const result = await getQueueResult(batch, ctx)
  meter.add('queue.read', bodies.length)
  meter.add('queue.delete', result.ackAll ? bodies.length : result.explicitAcks.length)
  return Object.fromEntries(Object.entries(meter.since(before)).map(([k, v]) => [k, v / per]))
}

const step = (w: Workload, name: string, calls: Counts) => w.steps.push({ step: name, route: 'queue consumer', status: 0, expected: [0], calls })

it('a push with one endpoint (its deliveries in one batch, and in one batch each)', async () => {
  receiver()
  // Once per isolate the upload routes load their signing key: not part of a push's steady state.
  await new Workload('warmup', 'http://push.registry.test').send('POST upload', 'POST', `/v2/${freshRepo('warmup')}/blobs/uploads/`, [202])
  for (const perMessage of [false, true]) {
    const events = new MeteredQueue<Delivery>(() => meter)
    const vars = { ...ENDPOINT, EVENTS: events.binding }
    const w = new Workload(perMessage ? 'push-1-endpoint-batch-per-message' : 'push-1-endpoint', 'http://push.registry.test', vars)
    await pushImage(w, freshRepo('events'), await makeImage(), 'length', { headManifest: true, headAfter: false })
    if (perMessage) for (const d of events.sent) step(w, 'deliver (a batch of one)', await consumed(vars, [d]))
    else step(w, `deliver (${events.sent.length} in one batch)`, await consumed(vars, events.sent))
    w.print({ deliveries: events.sent.length })
  }
})

it('a warm pull with PULL_STATS (the count in a batch of 100 pulls of the repository, and alone)', async () => {
  receiver()
  const image = await makeImage()
  const repo = freshRepo('stats')
  const pulls = new MeteredQueue<Pull>(() => meter)
  const vars = { PULL_STATS: 'true', PULLS: pulls.binding }
  await pushImage(new Workload('setup', 'http://push.registry.test'), repo, image, 'length', { headManifest: false, headAfter: false })
  await new Workload('setup', 'http://stats.registry.test', vars).pull(repo, 'latest', image)   // the location's caches filled
  for (const per of [100, 1]) {
    pulls.sent.length = 0
    const w = new Workload(per === 1 ? 'pull-warm-stats-alone' : 'pull-warm-stats', 'http://stats.registry.test', vars)
    await w.pull(repo, 'latest', image)
    const counted = pulls.sent[0]!
    step(w, per === 1 ? 'count (a batch of one)' : 'count (1/100 of a batch of 100)', await consumed(vars, Array.from({ length: per }, () => counted), 1, per))
    w.print()
  }
})

it('a delivery retried twice (503, 503, then 204)', async () => {
  receiver([503, 503])
  const events = new MeteredQueue<Delivery>(() => meter)
  const vars = { ...ENDPOINT, EVENTS: events.binding }
  const setup = new Workload('setup', 'http://push.registry.test', vars)
  const image = await makeImage()
  const repo = freshRepo('retry')
  for (const b of [...image.layers, image.config]) await setup.pushBlob(repo, b, 'length')
  events.sent.length = 0
  const w = new Workload('delivery-retried-twice', 'http://push.registry.test', vars)
  await w.send('PUT manifest', 'PUT', `/v2/${repo}/manifests/latest`, [201], {
    body: image.manifest,
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': String(image.manifest.byteLength) },
  })
  const [delivery] = events.sent
  // The push itself is the reference push's cost; this row is the delivery's: its enqueue, three rounds.
  const put = w.steps.pop()!
  step(w, 'enqueue (by the manifest PUT)', { 'queue.write': put.calls['queue.write'] ?? 0 })
  for (const attempt of [1, 2, 3]) step(w, `deliver, attempt ${attempt}`, await consumed(vars, [delivery!], attempt))
  w.print()
})
