/**
 * The collection cut into shards (tiny ones: a few keys each) against the unsharded plan, with
 * pushes racing it across shard boundaries.
 */
import { describe, expect, it } from 'vitest'
import { bindings, listObjects, repoName } from '../helpers'
import { abridge, plan, reportPart, type Scan } from '../../src/gc/plan'
import { retentionRules } from '../../src/gc/retention'
import { gcConfig } from '../../src/gc/config'
import { BLOB_ALGORITHMS, listBlobIndexPage, listKvPage, listRepoObjectsPage, listUploadsPage, type Page } from '../../src/storage/gc-scan'
import { readRefs } from '../../src/gc/sweep'
import { bucketOf, hex12, hexRanges, inRange, packSet, rangeOf, slicePacked, unpack, uploadShards } from '../../src/gc/shards'
import { keys } from '../../src/storage/keys'
import type { Digest, Repo, Tag } from '../../src/names'
import type { Env } from '../../src/env'
import type { RunParams } from '../../src/gc/params'
import { driver, gc, gcEnv, MANIFEST, params, pulls, pushImage, pushManifest, putBlob, putChunkedBlob, TINY, via, violations, type Image } from './setup'

const env = gcEnv()

/** Every page of a listing, in order. */
async function everyPage<T>(list: (c: string | null) => Promise<Page<T>>): Promise<T[]> {
  const out: T[] = []
  let cursor: string | null = null
  do {
    const page: Page<T> = await list(cursor)
    out.push(page.items)
    cursor = page.cursor
  } while (cursor)
  return out
}

/** The unsharded plan: one scan of everything, one `plan()`: the keys it would delete. */
async function unshardedPlan(e: Env, p: Partial<RunParams>): Promise<Set<string>> {
  const scan: Scan = { now: Date.now(), tags: [], links: [], manifests: [], refs: {}, referrers: [], blobs: [], uploads: [] }
  for (const page of await everyPage((c) => listKvPage(e, c))) {
    scan.tags.push(...page.tags)
    scan.links.push(...page.links)
  }
  for (const page of await everyPage((c) => listRepoObjectsPage(e, c))) {
    scan.manifests.push(...page.manifests)
    scan.referrers.push(...page.referrers)
  }
  scan.refs = await readRefs(e, scan.manifests.map((m) => m.key))
  for (const alg of BLOB_ALGORITHMS) scan.blobs.push(...(await everyPage((c) => listBlobIndexPage(e, c, alg))).flat())
  scan.uploads = (await everyPage((c) => listUploadsPage(e, c))).flat()
  const graceMs = gcConfig(e).graceMs
  const out = await plan(scan, { params: params(p), graceMs, rules: retentionRules(e), isImmutable: () => false })
  return new Set([
    ...out.tags.map((t) => `kv:${keys.tag(t.repo as Repo, t.tag as Tag)}`),
    ...out.manifests.map((m) => `r2:${m.key}`),
    ...out.referrers.map((r) => `r2:${r.key}`),
    ...out.links.map((l) => `kv:${keys.blobLink(l.repo as Repo, l.digest as Digest)}`),
    ...out.blobs.flatMap((b) => (b.at === b.key ? [`r2:${b.key}`] : [`r2:${b.key}`, `r2:${b.at}`])),
    ...out.uploads.map((u) => `r2:${u.key}`),
  ])
}

/** What exists: R2 keys (a blob index entry only while live, not as a tombstone) and KV keys. */
async function existing(): Promise<Set<string>> {
  const out = new Set<string>()
  for (const o of await listObjects()) {
    if (o.key.startsWith('_registry/')) continue
    if (o.key.startsWith('blobs/') && o.customMetadata?.gone !== undefined) continue
    out.add(`r2:${o.key}`)
  }
  let cursor: string | undefined
  do {
    const page = await bindings.LINKS.list({ prefix: 'repos/', cursor })
    for (const k of page.keys) out.add(`kv:${k.name}`)
    cursor = page.list_complete ? undefined : page.cursor
  } while (cursor)
  return out
}

/** A blob's index key and, for a pointer entry, the key of its bytes. */
async function blobKeys(d: string): Promise<string[]> {
  const at = (await bindings.BLOBS.head(keys.blob(d as Digest)))?.customMetadata?.at
  return at ? [`r2:${keys.blob(d as Digest)}`, `r2:${at}`] : [`r2:${keys.blob(d as Digest)}`]
}

const minus = (a: Set<string>, b: Set<string>) => new Set([...a].filter((x) => !b.has(x)))

/**
 * Repositories whose names sort apart (so tiny shards split them), sharing blobs across them:
 * a layer used by a tagged image in `z` and linked, unused, in `a`; garbage in each.
 */
async function registry() {
  const a = repoName('a-shard')
  const m = repoName('m-shard')
  const z = repoName('z-shard')
  const keep = await pushImage(z, 'v1')
  expect((await via(`/v2/${a}/blobs/uploads/?mount=${keep.layer}&from=${z}`, { method: 'POST' })).status).toBe(201)
  const untagged = await pushImage(a, 'gone')
  await via(`/v2/${a}/manifests/gone`, { method: 'DELETE' })
  const unusedA = await putChunkedBlob(a, crypto.getRandomValues(new Uint8Array(70)))
  const unusedM = await putBlob(m, crypto.getRandomValues(new Uint8Array(71)))
  const tagged = await pushImage(m, 'v1')
  const unusedZ = await putChunkedBlob(z, crypto.getRandomValues(new Uint8Array(72)))
  await bindings.BLOBS.put(`data/${'e'.repeat(31)}1/0000000000000000`, new Uint8Array(4), { customMetadata: { started: String(Date.now() - 8 * 86_400_000) } })
  return { a, m, z, keep, untagged, unusedA, unusedM, unusedZ, tagged }
}

describe('a collection split into shards', () => {
  it('deletes exactly what the unsharded plan deletes (untagged and default mode), its dry run reporting the same', async () => {
    for (const untagged of [true, false]) {
      const r = await registry()
      const planned = await unshardedPlan(env, { untagged })
      expect(planned.size).toBeGreaterThan(5)
      const dryOne = await gc(env, { untagged, dryRun: true })
      const dryTiny = await gc(env, { untagged, dryRun: true }, driver(), undefined, TINY)
      expect(dryTiny).toMatchObject({ totals: dryOne.totals, kept: dryOne.kept, repositories: dryOne.repositories })
      const before = await existing()
      const d = driver()
      const real = await gc(env, { untagged }, d, undefined, TINY)
      const deleted = minus(before, await existing())
      expect([...deleted].sort()).toEqual([...planned].sort())
      expect(real).toMatchObject({ totals: dryOne.totals, kept: dryOne.kept, repositories: dryOne.repositories })
      // Tiny shards: several of each kind.
      for (const kind of ["r", "b", "u", "sr", "sb"]) expect(d.steps.filter((s) => new RegExp(`^await ${kind}\\d+$`).test(s)).length, kind).toBeGreaterThan(1)
      expect(await pulls(r.keep)).toBe(true)
      expect(await pulls(r.tagged)).toBe(true)
      expect(await violations(env)).toEqual([])
    }
  })

  it('with pushes racing it across shard boundaries, deletes the unsharded plan less what the pushes used, and every pushed image pulls', async () => {
    const r = await registry()
    const planned = await unshardedPlan(env, { untagged: true })
    const before = await existing()
    const bytesOf = Object.fromEntries(await Promise.all([r.unusedA, r.unusedM, r.untagged.config, r.untagged.layer].map(async (d) => [d, await blobKeys(d)] as const)))
    const expireLink = (repo: string, d: string) => caches.default.delete(keys.cachedLink('http://registry.test', repo as Repo, d as Digest))
    const pushed: Image[] = []
    const saved: string[] = []
    const newcomer = repoName('n-shard') // a repository that did not exist when its range was scanned
    const imageOver = async (repo: string, layer: string, tag: string) => {
      const config = await putBlob(repo, crypto.getRandomValues(new Uint8Array(40)))
      const doc = JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 40 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: 70 }] })
      return { repo, digest: await pushManifest(repo, tag, doc, MANIFEST), config, layer, bytes: doc }
    }
    await gc(env, { untagged: true }, driver({
      onSleep: async () => {
        // 1. From the first shard's candidate link into the last shard: the mount reads A's marked link.
        await expireLink(r.a, r.unusedA)
        expect((await via(`/v2/${r.z}/blobs/uploads/?mount=${r.unusedA}&from=${r.a}`, { method: 'POST' })).status).toBe(201)
        pushed.push(await imageOver(r.z, r.unusedA, 'mounted'))
        saved.push(`kv:${keys.blobLink(r.a as Repo, r.unusedA as Digest)}`, ...bytesOf[r.unusedA]!)
        // 2. A new repository between two shards mounts, without `from`, a blob the run is collecting
        //    (its only link is a candidate in another shard): the mount meets the blob's mark.
        await expireLink(r.m, r.unusedM)
        expect((await via(`/v2/${newcomer}/blobs/uploads/?mount=${r.unusedM}`, { method: 'POST' })).status).toBe(201)
        pushed.push(await imageOver(newcomer, r.unusedM, 'v1'))
        saved.push(...bytesOf[r.unusedM]!)
        // 3. The untagged image, re-tagged in its own shard: its manifest and blobs stay (second look).
        await pushManifest(r.a, 'back', r.untagged.bytes, MANIFEST)
        pushed.push({ ...r.untagged })
        saved.push(
          `r2:${keys.manifest(r.a as Repo, r.untagged.digest as Digest)}`,
          ...[r.untagged.config, r.untagged.layer].flatMap((d) => [`kv:${keys.blobLink(r.a as Repo, d as Digest)}`, ...bytesOf[d]!]),
        )
      },
    }), undefined, TINY)
    const deleted = minus(before, await existing())
    for (const k of deleted) expect(planned.has(k), `${k} deleted but not planned`).toBe(true)
    const left = minus(planned, deleted)
    expect([...left].filter((k) => !saved.includes(k))).toEqual([])
    for (const img of pushed) expect(await pulls(img)).toBe(true)
    expect(await pulls(r.keep)).toBe(true)
    expect(await violations(env)).toEqual([])
  })

  it('GC_MAX_KV_WRITES: collects whole repositories in name order, across shards, while their KV writes fit; the next run takes the rest', async () => {
    const e = gcEnv({ GC_MAX_KV_WRITES: '4' })
    await gc(env, { untagged: true }) // what earlier tests left, out of the way
    const r = await registry()
    // a: 4 candidate links (the mounted layer, the untagged image's two, one unused); m and z: 1 each.
    const dry = await gc(e, { untagged: true, dryRun: true }, driver(), undefined, TINY)
    const first = await gc(e, { untagged: true }, driver(), undefined, TINY)
    expect(first).toMatchObject({ totals: dry.totals, repositories: dry.repositories, deferred: dry.deferred })
    expect(first.repositories[r.a]?.links.count).toBe(4)
    expect(first.repositories[r.m]).toBeUndefined()
    expect(first.repositories[r.z]).toBeUndefined()
    expect(first.deferred).toBeGreaterThanOrEqual(2)
    expect(await bindings.LINKS.get(keys.blobLink(r.m as Repo, r.unusedM as Digest))).not.toBeNull()
    expect(await violations(e)).toEqual([])
    const second = await gc(e, { untagged: true }, driver(), undefined, TINY)
    expect(second.repositories[r.m]?.links.count).toBe(1)
    expect(second.repositories[r.z]?.links.count).toBe(1)
    expect(second.deferred).toBe(0)
    expect(await pulls(r.keep)).toBe(true)
    expect(await pulls(r.tagged)).toBe(true)
    expect(await violations(e)).toEqual([])
  })
})

describe('shard ranges and the sets shards hand each other', () => {
  it('splits the hex space into ranges that cover every key once, first from the start, last to the end', () => {
    for (const n of [1, 2, 3, 16, 81, 5000]) {
      const ranges = hexRanges(n)
      expect(ranges.length).toBe(Math.min(n, 4096))
      expect(ranges[0]!.lo).toBe('')
      expect(ranges.at(-1)!.hi).toBeNull()
      for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.lo).toBe(ranges[i - 1]!.hi)
      for (const key of ['000', '0ff', '7a3c', 'fff', 'ffff', 'abandoned1', 'zz']) {
        const i = rangeOf(ranges, key)
        expect(ranges.filter((r) => key >= r.lo && (r.hi === null || key < r.hi))).toEqual([ranges[i]])
      }
    }
  })

  it('packs digests as sorted 12-hex prefixes; a range\'s slice holds exactly its own', () => {
    const digests = ['sha256:0123456789abcdef', 'sha256:ffff000011112222', 'sha512:8000aaaabbbbcccc', 'sha256:0123456789abcdef']
    const packed = packSet(digests.map(hex12))
    expect(packed).toBe('0123456789ab8000aaaabbbbffff00001111')
    expect([...unpack(slicePacked(packed, '8', 'f'))]).toEqual(['8000aaaabbbb'])
    expect([...unpack(slicePacked(packed, '', null))]).toEqual(['0123456789ab', '8000aaaabbbb', 'ffff00001111'])
    expect(slicePacked(packed, 'fffff', null)).toBe('')
  })

  it('abridges a report part to its size, keeping the repositories freeing most, counting the rest, totals untouched', () => {
    const links = Array.from({ length: 2000 }, (_, i) => ({ repo: `team/r${String(i).padStart(4, '0')}`, digest: `sha256:${i}`, size: i }))
    const part = reportPart({ links })
    const small = abridge(part, 10_000)
    expect(small.totals).toEqual(part.totals)
    const named = Object.keys(small.repositories)
    expect(named.length).toBeGreaterThan(10)
    expect(JSON.stringify(small.repositories).length).toBeLessThanOrEqual(10_000)
    expect(small.repositoriesOmitted).toBe(2000 - named.length)
    expect(named).toContain('team/r1999')
    expect(named).not.toContain('team/r0000')
    expect(abridge(part, 10_000_000)).toBe(part)
  })

  it('cuts upload shards from id buckets, each under its bound, contiguous from the start to the end', () => {
    const h = (n: number) => String(n).padStart(12, '0')
    const protect = new Map<number, string[]>([
      [bucketOf('000a'), [h(1) + h(2)]],
      [bucketOf('7ff0'), [h(3), h(4) + h(5)]],
      [bucketOf('abandoned1'), [h(6)]],
      [bucketOf('fff9'), [h(7) + h(8)]],
    ])
    const shards = uploadShards(protect, 3)
    expect(shards.map((s) => unpack(s.protect).size)).toEqual([2, 3, 3])
    expect(shards[0]!.range.lo).toBe('')
    expect(shards.at(-1)!.range.hi).toBeNull()
    for (let i = 1; i < shards.length; i++) expect(shards[i]!.range.lo).toBe(shards[i - 1]!.range.hi)
    expect(shards.findIndex((s) => inRange(s.range, 'abandoned1'))).toBe(2)
    expect(uploadShards(new Map(), 3)).toEqual([{ range: { lo: '', hi: null }, protect: '' }])
  })
})
