/** The producer: messages within the Queues' limits, and nothing for events no endpoint wants. */
import { describe, expect, it } from 'vitest'
import { MAX_TAGS_LISTED, newEvent } from '../../src/events/event'
import { deliveries, sendAll } from '../../src/events/publish'
import { consumeBatch, RecordingQueue, withEndpoints } from './setup'

const FROM = { actor: 'alice', request: null, origin: 'https://registry.example.com' }
const digest = `sha256:${'e'.repeat(64)}`

describe('publishing', () => {
  it('splits a change\'s events over messages of at most 100 KB, and caps a delete\'s tag list', () => {
    const r = withEndpoints([{ name: 'all', url: 'https://x.example.com', actions: ['push', 'delete'] }])
    const many = Array.from({ length: 400 }, (_, i) => newEvent(FROM, 'push', { repository: 'big/repo', digest, tag: `t${i}`.padEnd(120, 'x') }))
    const messages = deliveries(r.env, many)
    expect(messages.length).toBeGreaterThan(1)
    for (const m of messages) expect(JSON.stringify(m).length).toBeLessThan(110_000)
    expect(messages.flatMap((m) => m.events)).toEqual(many)
    expect(new Set(messages.map((m) => m.id)).size).toBe(messages.length)
    const tags = Array.from({ length: 5000 }, (_, i) => `tag-${i}`)
    const del = newEvent(FROM, 'delete', { repository: 'big/repo', digest, tags })
    expect(del.target.tags).toHaveLength(MAX_TAGS_LISTED)
  })

  it('sends in pieces of at most 100 messages', async () => {
    const q = new RecordingQueue<number>()
    await sendAll(q.binding, Array.from({ length: 250 }, (_, i) => i))
    expect(q.calls).toBe(3)
    expect(q.sent).toHaveLength(250)
  })

  it('the pulls consumer drops what is not a counted pull (an invalid name, no digest)', async () => {
    const r = withEndpoints([])
    const { result } = await consumeBatch(r.env, 'edge-registry-pulls', [
      { body: { repo: 'ok/repo', digest, at: Date.now() } },
      { body: { repo: '../Bad', digest, at: Date.now() } },
    ])
    expect(result.explicitAcks).toHaveLength(2)
  })
})
