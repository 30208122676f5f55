/**
 * The collector and events: retention by pulls (pulledWithinDays, keepLastPulled) and the
 * collector's deletes reported as `delete` events by actor `gc`.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { applyRetention, parseRetention, retentionRules } from '../../src/gc/retention'
import type { Repo, Tag } from '../../src/names'
import { keys } from '../../src/storage/keys'
import { addPulls } from '../../src/storage/pull-stats'
import { bindings, repoName } from '../helpers'
import { eventsOf, withEndpoints } from '../events/setup'
import { driver, gc, pushImage, SHORT } from './setup'

const DAY = 86_400_000
const now = Date.parse('2026-06-01T12:00:00Z')

afterEach(() => vi.restoreAllMocks())

async function age(repo: string, tag: string, days: number) {
  const key = keys.tag(repo as Repo, tag as Tag)
  const { value, metadata } = await bindings.LINKS.getWithMetadata<Record<string, unknown>>(key, 'arrayBuffer')
  await bindings.LINKS.put(key, value!, { metadata: { ...metadata, pushed: Date.now() - days * DAY } })
}

describe('retention by pulls', () => {
  const rule = (json: object) => parseRetention(JSON.stringify([{ repos: '*', ...json }]))[0]!

  it('pulledWithinDays keeps a tag the other clauses drop when its manifest was pulled within N days', () => {
    const tags = [
      { tag: 'old-pulled', pushed: now - 90 * DAY, lastPulled: now - 3 * DAY },
      { tag: 'old-stale', pushed: now - 90 * DAY, lastPulled: now - 40 * DAY },
      { tag: 'old-never', pushed: now - 90 * DAY },
      { tag: 'new', pushed: now - DAY },
    ]
    const out = applyRetention(rule({ olderThanDays: 30, pulledWithinDays: 7 }), tags, now, () => false)
    expect(out.drop.map((d) => d.tag)).toEqual(['old-stale', 'old-never'])
    expect(out.keptByPulls).toEqual([{ tag: 'old-pulled', rule: 'RETENTION[0].pulledWithinDays=7 (last pulled 2026-05-29T12:00:00.000Z)' }])
  })

  it('keepLastPulled keeps the N most recently pulled tags among those dropped', () => {
    const tags = [
      { tag: 'a', pushed: now - 10 * DAY, lastPulled: now - 5 * DAY },
      { tag: 'b', pushed: now - 9 * DAY, lastPulled: now - DAY },
      { tag: 'c', pushed: now - 8 * DAY },
      { tag: 'd', pushed: now - 7 * DAY, lastPulled: now - 2 * DAY },
      { tag: 'newest', pushed: now },
    ]
    const out = applyRetention(rule({ keepLast: 1, keepLastPulled: 2 }), tags, now, () => false)
    expect(out.drop.map((d) => d.tag).sort()).toEqual(['a', 'c'])
    expect(out.keptByPulls.map((k) => k.tag).sort()).toEqual(['b', 'd'])
    expect(out.keptByPulls.find((k) => k.tag === 'b')!.rule).toMatch(/^RETENTION\[0\]\.keepLastPulled=2 \(last pulled /)
  })

  it('a rule of pull clauses alone removes nothing, and they need PULL_STATS', () => {
    expect(() => parseRetention('[{"repos": "*", "pulledWithinDays": 30}]')).toThrow(/RETENTION\[0\]: removes nothing/)
    expect(() => parseRetention('[{"repos": "*", "olderThanDays": 1, "keepLastPulled": -1}]')).toThrow(/RETENTION\[0\]\.keepLastPulled/)
    const json = '[{"repos": "*", "olderThanDays": 30, "pulledWithinDays": 7}]'
    expect(() => retentionRules({ ...bindings, RETENTION: json })).toThrow('RETENTION[0].pulledWithinDays: needs PULL_STATS = "true"')
    expect(retentionRules({ ...bindings, RETENTION: json, PULL_STATS: 'true' })[0]!.pulledWithinDays).toBe(7)
  })

  it('the collector reads the statistics: the dry run names the tags a pull clause kept, the real run keeps them', async () => {
    const repo = repoName('pret')
    const [pulled, stale] = [await pushImage(repo, 'pulled'), await pushImage(repo, 'stale')]
    await age(repo, 'pulled', 60)
    await age(repo, 'stale', 60)
    await addPulls(bindings, repo as Repo, new Map([[pulled.digest, { pulls: 4, last: Date.now() - DAY }], [stale.digest, { pulls: 1, last: Date.now() - 50 * DAY }]]))
    const env = { ...bindings, ...SHORT, PULL_STATS: 'true', RETENTION: JSON.stringify([{ repos: 'pret/*', olderThanDays: 30, pulledWithinDays: 7 }]) }
    const dry = await gc(env, { dryRun: true, repo })
    expect(dry.repositories[repo]!.tags).toEqual([{ tag: 'stale', rule: 'RETENTION[0].olderThanDays=30' }])
    expect(dry.repositories[repo]!.retained).toEqual([{ tag: 'pulled', rule: expect.stringMatching(/^RETENTION\[0\]\.pulledWithinDays=7 \(last pulled /) }])
    await gc(env, { repo })
    expect(await bindings.LINKS.get(keys.tag(repo as Repo, 'pulled' as Tag))).not.toBeNull()
    expect(await bindings.LINKS.get(keys.tag(repo as Repo, 'stale' as Tag))).toBeNull()
  })
})

describe('the collector\'s delete events', () => {
  it('reports retention\'s tags, then untagged manifests and unused blobs, as deletes by gc', async () => {
    const repo = repoName('gcev')
    const kept = await pushImage(repo, 'kept')
    const dropped = await pushImage(repo, 'old')
    await age(repo, 'old', 40)
    const r = withEndpoints([{ name: 'gc-hook', url: 'https://hooks.example.com/gc', actions: ['delete'] }])
    const env = { ...r.env, ...SHORT, RETENTION: JSON.stringify([{ repos: 'gcev/*', olderThanDays: 30, untaggedDays: 0 }]) }
    const dry = await gc(env, { dryRun: true, repo })
    expect(r.events.calls).toBe(0) // a dry run reports nothing
    await gc(env, { repo })
    const events = eventsOf(r.events)
    expect(events.every((e) => e.actor.name === 'gc' && e.action === 'delete' && e.request === undefined)).toBe(true)
    const tag = events.find((e) => e.target.tag === 'old')!
    expect(tag.target).toMatchObject({ repository: repo, digest: dropped.digest })
    const manifest = events.find((e) => e.target.digest === dropped.digest && e.target.tag === undefined)!
    expect(manifest.target).toMatchObject({ repository: repo, tags: ['old'] })
    const blobs = events.filter((e) => e.target.mediaType === 'application/octet-stream').map((e) => e.target.digest).sort()
    expect(blobs).toEqual([dropped.config, dropped.layer].sort())
    expect(events.some((e) => e.target.digest === kept.digest)).toBe(false)
    expect(dry.repositories[repo]!.links.count).toBe(2)
  })

  it('fails the step when the queue refuses (the step is retried: nothing lost)', async () => {
    const repo = repoName('gcev')
    await pushImage(repo, 'old')
    await age(repo, 'old', 40)
    const r = withEndpoints([{ name: 'gc-hook', url: 'https://hooks.example.com/gc', actions: ['delete'] }])
    r.events.refuse = 1
    const env = { ...r.env, ...SHORT, RETENTION: JSON.stringify([{ repos: 'gcev/*', olderThanDays: 30 }]) }
    const memo = new Map<string, unknown>()
    await expect(gc(env, { repo }, driver({ memo }), 'gc-events-retry')).rejects.toThrow(/simulated outage/)
    // The Workflow retries the step (the run resumes with its stored steps): the tag, deleted
    // by the failed attempt, is reported now.
    await gc(env, { repo }, driver({ memo }), 'gc-events-retry')
    expect(eventsOf(r.events).map((e) => [e.target.tag, e.actor.name])).toEqual([['old', 'gc']])
  })
})
