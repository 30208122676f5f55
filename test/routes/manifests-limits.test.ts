/**
 * PUT/GET/DELETE /v2/<name>/manifests: each ceiling of docs/limits.md with hostile input at and
 * past it (issue 20): JSON depth and size, writes validated before the first one, reference
 * checks that stop early, tag records' size, the tag fan-out of a delete, and what an immutable
 * tag reaches (issue 19). Storage calls are counted with metered bindings.
 */
import { describe, expect, it } from 'vitest'
import { introspectWorkflow } from 'cloudflare:test'
import { Meter, meteredKV, meteredR2 } from '../../bench/cost/meter'
import type { Env } from '../../src/env'
import { MAX_JSON_DEPTH, MAX_JSON_VALUES } from '../../src/json'
import type { Digest, Repo, Tag } from '../../src/names'
import { startUntag, untag, type UntagParams } from '../../src/gc/untag'
import { MAX_PIN_READS, MAX_PINS } from '../../src/gc/immutable'
import { keys } from '../../src/storage/keys'
import { putManifest as storeManifest } from '../../src/storage/manifests'
import { putPins } from '../../src/storage/pins'
import { KV_METADATA_MAX, TAG_MANIFEST_MAX, writeTag } from '../../src/storage/tags'
import { UNTAG_INLINE } from '../../src/routes/manifests'
import { bindings, repoName, sha256 } from '../helpers'
import {
  api, build, EMPTY_JSON, expectError, expectNotStored, getManifest, inBatches, MT, ociImage, push, pushBlobOf, putManifest, tagsOf, type Built,
} from '../manifests/fixtures'

/** A request with R2 and KV counted. */
async function metered(path: string, init?: RequestInit, overrides: Partial<Env> = {}) {
  const meter = new Meter()
  const res = await api(path, init, { ...overrides, BLOBS: meteredR2(meter, bindings.BLOBS), LINKS: meteredKV(meter, bindings.LINKS) })
  return { res, calls: meter.counts }
}

async function reason(res: Response): Promise<string> {
  const body = (await res.clone().json()) as { errors: { detail: { reason: string } }[] }
  return body.errors[0]!.detail.reason
}

describe('manifest JSON is bounded before it is parsed', () => {
  it('refuses a 4 MiB body of nested arrays: 400 MANIFEST_INVALID naming the depth limit', async () => {
    const half = 2 * 1024 * 1024
    const res = await putManifest(repoName('deep'), 'v1', '['.repeat(half) + ']'.repeat(half), MT.ociManifest)
    await expectError(res.clone(), 400, 'MANIFEST_INVALID')
    expect(await reason(res)).toBe(`JSON nested deeper than ${MAX_JSON_DEPTH} levels (the limit)`)
  })

  it(`accepts a manifest nesting ${MAX_JSON_DEPTH} levels deep and refuses one nesting ${MAX_JSON_DEPTH + 1}`, async () => {
    const repo = repoName('deep')
    const image = await ociImage(repo)
    // The manifest object is level 1; an unknown field nests arrays under it.
    const at = await build({ ...image.doc, 'x-extra': JSON.parse('['.repeat(MAX_JSON_DEPTH - 1) + ']'.repeat(MAX_JSON_DEPTH - 1)) })
    const past = await build({ ...image.doc, 'x-extra': JSON.parse('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH)) })
    await push(repo, 'at', at)
    const refused = await putManifest(repo, 'past', past.bytes, past.mediaType)
    expect(await reason(refused)).toMatch(/nested deeper than 32 levels/)
    await expectNotStored(repo, past.digest, { tag: 'past' })
  })

  it(`accepts about ${MAX_JSON_VALUES} values and refuses more`, async () => {
    const repo = repoName('wide')
    const image = await ociImage(repo)
    const used = JSON.stringify(image.doc).split(',').length + 8 // the manifest's own commas and containers
    const at = await build({ ...image.doc, 'x-extra': Array.from({ length: MAX_JSON_VALUES - used }, () => 0) })
    const past = await build({ ...image.doc, 'x-extra': Array.from({ length: MAX_JSON_VALUES + 1 }, () => 0) })
    await push(repo, 'at', at)
    expect(await reason(await putManifest(repo, 'past', past.bytes, past.mediaType))).toBe(`more than ${MAX_JSON_VALUES} JSON values (the limit)`)
    await expectNotStored(repo, past.digest, { tag: 'past' })
  })
})

describe('a push is checked whole before its first write (no 500, nothing half-written)', () => {
  it('refuses a 20 KB manifest with a subject and annotations nested 10,000 deep: 400, no manifest, tag or referrer', async () => {
    const repo = repoName('halfwrite')
    const subject = await ociImage(repo)
    await push(repo, 'base', subject)
    const image = await ociImage(repo)
    let nested = '"x"'
    for (let i = 0; i < 10_000; i++) nested = `{"a":${nested}}`
    const text = JSON.stringify({ ...image.doc, subject: subject.descriptor, annotations: { k: '__N__' } }).replace('"__N__"', nested)
    const digest = await sha256(text)
    const res = await putManifest(repo, 'deep', text, MT.ociManifest)
    await expectError(res, 400, 'MANIFEST_INVALID')
    await expectNotStored(repo, digest, { tag: 'deep', subject: subject.digest })
  })

  it('stores an index whose platform names hold control characters or lone surrogates whole, tag included (201)', async () => {
    const repo = repoName('halfwrite')
    const child = await ociImage(repo)
    await push(repo, child.digest, child)
    for (const os of ['\u0001'.repeat(250), '\ud800'.repeat(250), 'ü'.repeat(100), 'x'.repeat(100_000)]) {
      const index = await build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ ...child.descriptor, platform: { os, architecture: 'amd64' } }] })
      await push(repo, 'platforms', index)
      const byTag = await getManifest(repo, 'platforms', { headers: { Accept: MT.ociIndex } })
      expect(byTag.status).toBe(200)
      expect(new Uint8Array(await byTag.arrayBuffer())).toEqual(index.bytes)
      const { metadata } = await bindings.LINKS.getWithMetadata(keys.tag(repo as Repo, 'platforms' as Tag))
      expect(new TextEncoder().encode(JSON.stringify(metadata)).byteLength).toBeLessThanOrEqual(KV_METADATA_MAX)
    }
  })
})

describe('reference checks stop at the first batch with a missing reference', () => {
  const missing = () => ({ mediaType: MT.ociLayer, digest: `sha256:${[...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, '0')).join('')}`, size: 1 })

  it('refuses an image whose config and 499 layers are missing after 16 reads, not 500', async () => {
    const repo = repoName('refusal')
    const doc = { schemaVersion: 2, mediaType: MT.ociManifest, config: { ...missing(), mediaType: MT.ociConfig }, layers: Array.from({ length: 499 }, missing) }
    const { res, calls } = await metered(`/v2/${repo}/manifests/v1`, { method: 'PUT', body: JSON.stringify(doc), headers: { 'Content-Type': MT.ociManifest } })
    await expectError(res, 400, 'MANIFEST_BLOB_UNKNOWN')
    expect(calls['kv.get']).toBeLessThanOrEqual(16)
    expect(calls['r2.head']).toBeLessThanOrEqual(16)
    expect(calls['r2.put'] ?? 0).toBe(0)
  })

  it('refuses an index of 500 missing children after 16 heads', async () => {
    const repo = repoName('refusal')
    const doc = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: Array.from({ length: 500 }, () => ({ ...missing(), mediaType: MT.ociManifest })) }
    const { res, calls } = await metered(`/v2/${repo}/manifests/v1`, { method: 'PUT', body: JSON.stringify(doc), headers: { 'Content-Type': MT.ociIndex } })
    await expectError(res, 400, 'MANIFEST_BLOB_UNKNOWN')
    expect(calls['r2.head']).toBe(16)
  })

  it('accepts an image of 40 present layers (three batches) and names the one missing layer of another', async () => {
    const repo = repoName('refusal')
    const image = await ociImage(repo, { layers: 40 })
    await push(repo, 'v1', image)
    const doc = image.doc as { layers: object[] }
    const gone = missing()
    const broken = await build({ ...image.doc, layers: [...doc.layers.slice(0, 39), gone] })
    const res = await putManifest(repo, 'v2', broken.bytes, broken.mediaType)
    expect(((await res.clone().json()) as { errors: { detail: { digest: string } }[] }).errors[0]!.detail.digest).toBe(gone.digest)
    await expectError(res, 400, 'MANIFEST_BLOB_UNKNOWN')
  })
})

describe(`tag records hold manifest bytes up to ${TAG_MANIFEST_MAX} bytes`, () => {
  /** An image manifest padded by an annotation to exactly `size` bytes. */
  async function sized(repo: string, size: number): Promise<Built> {
    const image = await ociImage(repo)
    const base = (await build({ ...image.doc, annotations: { pad: '' } })).size
    const m = await build({ ...image.doc, annotations: { pad: 'p'.repeat(size - base) } })
    expect(m.size).toBe(size)
    return m
  }
  const value = async (repo: string, tag: string) => (await bindings.LINKS.get(keys.tag(repo as Repo, tag as Tag), 'arrayBuffer'))!.byteLength

  it('keeps a manifest of exactly the limit in the record (a pull by tag: 1 KV get) and one byte more in R2 only (+1 R2 get)', async () => {
    const repo = repoName('tagrecord')
    const at = await sized(repo, TAG_MANIFEST_MAX)
    const past = await sized(repo, TAG_MANIFEST_MAX + 1)
    await push(repo, 'at', at)
    await push(repo, 'past', past)
    expect(await value(repo, 'at')).toBe(TAG_MANIFEST_MAX)
    expect(await value(repo, 'past')).toBe(0)
    for (const [tag, m, calls] of [['at', at, { 'kv.getWithMetadata': 1 }], ['past', past, { 'kv.getWithMetadata': 1, 'r2.get': 1, 'bytes.r2.read': TAG_MANIFEST_MAX + 1 }]] as const) {
      const got = await metered(`/v2/${repo}/manifests/${tag}`, { headers: { Accept: MT.ociManifest } })
      expect(got.res.headers.get('docker-content-digest')).toBe(m.digest)
      expect(new Uint8Array(await got.res.arrayBuffer())).toEqual(m.bytes)
      expect(got.calls).toEqual(calls)
    }
  })

  it('writes 20 empty tag values, not 80 MiB, for a 4 MiB manifest put with 20 ?tag=, and serves every tag', async () => {
    const repo = repoName('tagrecord')
    const big = await sized(repo, 4 * 1024 * 1024 - 64)
    const tags = Array.from({ length: 20 }, (_, i) => `r${i}`)
    const res = await putManifest(repo, `${big.digest}?${tags.map((t) => `tag=${t}`).join('&')}`, big.bytes, big.mediaType)
    expect(res.status).toBe(201)
    for (const tag of tags) expect(await value(repo, tag)).toBe(0)
    const byTag = await getManifest(repo, 'r19', { headers: { Accept: MT.ociManifest } })
    expect(byTag.headers.get('docker-content-digest')).toBe(big.digest)
    expect((await byTag.arrayBuffer()).byteLength).toBe(big.size)
  })
})

describe('DELETE by digest removes the tags naming the manifest in bounded requests, and never leaves one naming a deleted manifest', () => {
  const emptyIndex = (note: string) => build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [], annotations: { note } })
  /** `count` tags on `m`, written straight to KV (as pushes would, faster). */
  const tagMany = (repo: string, m: Built, count: number, prefix = 't') =>
    inBatches(Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`), 100, (tag) =>
      writeTag(bindings, repo as Repo, tag as Tag, { digest: m.digest as Digest, mediaType: m.mediaType }, m.bytes))

  it(`removes up to ${UNTAG_INLINE} tags itself: 1 KV list, a delete each, the manifest last`, async () => {
    const repo = repoName('fanout')
    const m = await emptyIndex('inline')
    const other = await emptyIndex('other')
    await push(repo, m.digest, m)
    await push(repo, 'keep', other)
    await tagMany(repo, m, UNTAG_INLINE)
    const { res, calls } = await metered(`/v2/${repo}/manifests/${m.digest}`, { method: 'DELETE' })
    expect(res.status).toBe(202)
    expect(calls).toEqual({ 'r2.head': 1, 'kv.list': 1, 'kv.delete': UNTAG_INLINE, 'r2.delete': 1 })
    expect(await tagsOf(repo)).toEqual(['keep'])
    expect((await getManifest(repo, m.digest)).status).toBe(404)
  })

  it(`hands ${UNTAG_INLINE + 1} tags to the untag Workflow (202 at once), which removes them and then the manifest`, async () => {
    const repo = repoName('fanout')
    const m = await emptyIndex('workflow')
    await push(repo, m.digest, m)
    await tagMany(repo, m, UNTAG_INLINE + 1)
    const workflows = await introspectWorkflow((bindings as Env).UNTAG_WORKFLOW!)
    try {
      const { res, calls } = await metered(`/v2/${repo}/manifests/${m.digest}`, { method: 'DELETE' })
      expect(res.status).toBe(202)
      expect(calls).toEqual({ 'r2.head': 1, 'kv.list': 1 })
      const [instance] = workflows.get()
      await instance!.waitForStatus('complete')
    } finally {
      await workflows.dispose()
    }
    expect(await tagsOf(repo)).toEqual([])
    expect((await getManifest(repo, m.digest)).status).toBe(404)
  })

  it('starts one untag run for a manifest however often the DELETE is repeated meanwhile (each run would list and delete every tag again)', async () => {
    const repo = repoName('fanout')
    const m = await emptyIndex('repeated')
    await push(repo, m.digest, m)
    await tagMany(repo, m, UNTAG_INLINE + 1)
    const workflows = await introspectWorkflow((bindings as Env).UNTAG_WORKFLOW!)
    const real = (bindings as Env).UNTAG_WORKFLOW!
    const created: string[] = []
    const counting = {
      get: (id: string) => real.get(id),
      create: (options?: WorkflowInstanceCreateOptions<UntagParams>) => {
        created.push(options?.id ?? crypto.randomUUID())
        return real.create(options)
      },
      createBatch: real.createBatch.bind(real),
    } as unknown as Workflow
    try {
      const deletes = await Promise.all(Array.from({ length: 5 }, () => metered(`/v2/${repo}/manifests/${m.digest}`, { method: 'DELETE' }, { UNTAG_WORKFLOW: counting })))
      expect(deletes.map((d) => d.res.status)).toEqual([202, 202, 202, 202, 202])
      expect(new Set(created).size).toBe(1)
      for (const instance of workflows.get()) await instance.waitForStatus('complete')
    } finally {
      await workflows.dispose()
    }
    expect(await tagsOf(repo)).toEqual([])
    expect((await getManifest(repo, m.digest)).status).toBe(404)
  })

  it('restarts the run of the same stored manifest when it ended without deleting it, leaves one under way alone, and starts a new one for a manifest pushed again', async () => {
    const runs = new Map<string, { status: string; restarts: number }>()
    const fake = {
      get: async (id: string) => {
        const run = runs.get(id)
        if (!run) throw new Error('instance.not_found')
        return { id, status: async () => ({ status: run.status }), restart: async () => void run.restarts++ }
      },
      create: async (options: { id: string }) => {
        runs.set(options.id, { status: 'running', restarts: 0 })
        return { id: options.id }
      },
    } as unknown as Workflow
    const e = { ...bindings, UNTAG_WORKFLOW: fake } as Env
    const repo = 'fanout/x' as Repo
    const digest = await sha256('m') as Digest
    const id = await startUntag(e, repo, digest, 'v1')
    expect([...runs.keys()]).toEqual([id])
    for (const status of ['running', 'queued', 'waiting', 'paused']) {
      runs.get(id)!.status = status
      expect(await startUntag(e, repo, digest, 'v1')).toBe(id)
    }
    expect(runs.get(id)!.restarts).toBe(0)
    for (const status of ['complete', 'errored', 'terminated']) {
      runs.get(id)!.status = status
      await startUntag(e, repo, digest, 'v1')
    }
    expect(runs.get(id)!.restarts).toBe(3)
    expect(runs.size).toBe(1)
    expect(await startUntag(e, repo, digest, 'v2')).not.toBe(id)
    expect(runs.size).toBe(2)
  })

  it('keeps the manifest while any tag naming it remains: a run stopped after its first step leaves both', async () => {
    const repo = repoName('fanout')
    const m = await emptyIndex('stopped')
    await push(repo, m.digest, m)
    await tagMany(repo, m, 700)
    let steps = 0
    const stopAfterOne = {
      do: async <T>(_name: string, fn: () => Promise<T>) => {
        if (steps++ === 1) throw new Error('the Workflow stopped here')
        return fn()
      },
      sleep: async () => {},
    }
    await expect(untag(bindings, { repo, digest: m.digest }, stopAfterOne)).rejects.toThrow('stopped here')
    expect((await tagsOf(repo)).length).toBe(200)
    expect((await getManifest(repo, m.digest)).status).toBe(200)
    // Resumed (a new run), it finishes: no tag, then no manifest.
    const report = await untag(bindings, { repo, digest: m.digest }, { do: (_n, fn) => fn(), sleep: async () => {} })
    expect(report).toEqual({ untagged: 200, deleted: true })
    expect(await tagsOf(repo)).toEqual([])
    expect((await getManifest(repo, m.digest)).status).toBe(404)
  })
})

describe('the untag Workflow racing pushes of the manifest it is deleting', () => {
  const tagMany = (repo: string, m: Built, count: number) =>
    inBatches(Array.from({ length: count }, (_, i) => `t${String(i).padStart(5, '0')}`), 100, (tag) =>
      writeTag(bindings, repo as Repo, tag as Tag, { digest: m.digest as Digest, mediaType: m.mediaType }, m.bytes))
  const immutable: Partial<Env> = { IMMUTABLE_TAGS: '["v*"]' }

  /** DELETE by digest of a manifest 101 tags name: the Workflow's params, as the DELETE handed them over. */
  async function handedOver(repo: string, m: Built): Promise<UntagParams> {
    await push(repo, m.digest, m)
    await tagMany(repo, m, UNTAG_INLINE + 1)
    const created: UntagParams[] = []
    const workflow = {
      get: async () => { throw new Error('instance not found') },
      create: async (o: { params: UntagParams }) => (created.push(o.params), { id: 'spied' }),
    }
    expect((await api(`/v2/${repo}/manifests/${m.digest}`, { method: 'DELETE' }, { UNTAG_WORKFLOW: workflow } as unknown as Partial<Env>)).status).toBe(202)
    return created[0]!
  }

  /** The Workflow's steps in this process, `meanwhile` run before its last step (the manifest's delete). */
  const beforeLastStep = (meanwhile: () => Promise<void>) => ({
    do: async <T>(name: string, fn: () => Promise<T>) => {
      if (name === 'manifest') await meanwhile()
      return fn()
    },
    sleep: async () => {},
  })

  it('a push of an index naming the manifest to an immutable tag, between its steps: the manifest stays and the tag pulls', async () => {
    const repo = repoName('untagrace')
    const child = await ociImage(repo)
    const params = await handedOver(repo, child)
    const index = await build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ ...child.descriptor, platform: { os: 'linux', architecture: 'amd64' } }] })
    const report = await untag({ ...bindings, ...immutable } as Env, params, beforeLastStep(async () => {
      expect((await api(`/v2/${repo}/manifests/v1`, { method: 'PUT', body: index.bytes, headers: { 'Content-Type': MT.ociIndex } }, immutable)).status).toBe(201)
    }))
    expect(report.deleted).toBe(false)
    expect((await getManifest(repo, child.digest)).status).toBe(200)
  })

  it('a push of the manifest to a new tag, between its steps: the tag never names a deleted manifest', async () => {
    const repo = repoName('untagrace')
    const m = await ociImage(repo)
    const params = await handedOver(repo, m)
    const report = await untag(bindings, params, beforeLastStep(async () => {
      expect((await push(repo, 'latest', m)).status).toBe(201)
    }))
    expect(report.deleted).toBe(false)
    expect(await tagsOf(repo)).toEqual(['latest'])
    expect((await getManifest(repo, 'latest')).status).toBe(200)
    expect((await getManifest(repo, m.digest)).status).toBe(200)
  })
})

describe('IMMUTABLE_TAGS protects what an immutable tag reaches (issue 19)', () => {
  const env = { IMMUTABLE_TAGS: '["v*"]' }
  const del = (path: string, overrides: Partial<Env> = env) => metered(path, { method: 'DELETE' }, overrides)

  async function release(repo: string) {
    const child = await ociImage(repo)
    await push(repo, child.digest, child)
    const index = await build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ ...child.descriptor, platform: { os: 'linux', architecture: 'amd64' } }] })
    const res = await api(`/v2/${repo}/manifests/v1`, { method: 'PUT', body: index.bytes, headers: { 'Content-Type': MT.ociIndex } }, env)
    expect(res.status).toBe(201)
    const doc = child.doc as { config: { digest: string }; layers: { digest: string }[] }
    return { child, index, config: doc.config.digest, layer: doc.layers[0]!.digest }
  }

  it('refuses (403 DENIED, naming the rule) deletes of the index, its child, the child\'s config and layers, at 1 R2 list + 1 KV get each', async () => {
    const repo = repoName('reach')
    const r = await release(repo)
    for (const path of [`manifests/${r.index.digest}`, `manifests/${r.child.digest}`, `blobs/${r.config}`, `blobs/${r.layer}`]) {
      const { res, calls } = await del(`/v2/${repo}/${path}`)
      const body = (await res.clone().json()) as { errors: { code: string; message: string }[] }
      expect(res.status, path).toBe(403)
      expect(body.errors[0]!.code).toBe('DENIED')
      expect(body.errors[0]!.message).toContain(`${repo}:v1`)
      expect(body.errors[0]!.message).toContain('IMMUTABLE_TAGS[0] "v*"')
      expect(calls['r2.list']).toBe(1)
      expect(calls['kv.getWithMetadata']).toBe(1)
      expect(calls['kv.delete'] ?? 0).toBe(0)
    }
    // Everything is still there and pullable.
    expect((await getManifest(repo, r.child.digest)).status).toBe(200)
    expect((await api(`/v2/${repo}/blobs/${r.layer}`)).status).toBe(200)
  })

  it('lets deletes through once no rule covers the tag, and ignores pins whose tag never named their root', async () => {
    const repo = repoName('reach')
    const r = await release(repo)
    // A pin left by a push that failed after writing it: its tag names nothing.
    const stray = await ociImage(repo)
    await push(repo, stray.digest, stray)
    await putPins(bindings, repo as Repo, [stray.digest as Digest], { root: stray.digest as Digest, tag: 'v9' as Tag })
    expect((await del(`/v2/${repo}/manifests/${stray.digest}`)).res.status).toBe(202)
    expect((await del(`/v2/${repo}/blobs/${r.layer}`, {})).res.status).toBe(202)
    expect((await del(`/v2/${repo}/manifests/${r.child.digest}`, { IMMUTABLE_TAGS: '["stable"]' })).res.status).toBe(202)
  })

  it('refuses a delete, to be safe, when more than 10 pins are found and none of the first 10 holds', async () => {
    const repo = repoName('reach')
    const image = await ociImage(repo)
    await push(repo, image.digest, image)
    const roots = Array.from({ length: 11 }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}` as Digest)
    for (const root of roots) await putPins(bindings, repo as Repo, [image.digest as Digest], { root, tag: 'v1' as Tag })
    const { res, calls } = await del(`/v2/${repo}/manifests/${image.digest}`)
    expect(res.status).toBe(403)
    expect(calls['kv.getWithMetadata']).toBe(10)
    // Ten stale pins are checked and ignored.
    await bindings.BLOBS.delete(keys.pin(repo as Repo, image.digest as Digest, roots[10]!))
    expect((await del(`/v2/${repo}/manifests/${image.digest}`)).res.status).toBe(202)
  })

  it('costs nothing where no rule covers the repository', async () => {
    const repo = repoName('reach')
    const image = await ociImage(repo)
    await push(repo, image.digest, image)
    const layer = (image.doc as { layers: { digest: string }[] }).layers[0]!.digest
    const { res, calls } = await del(`/v2/${repo}/blobs/${layer}`, { IMMUTABLE_TAGS: '[{"repos": "prod/*", "tags": "v*"}]' })
    expect(res.status).toBe(202)
    expect(calls['r2.list'] ?? 0).toBe(0)
  })

  it(`refuses a push to an immutable tag reaching more than ${MAX_PINS} manifests and blobs, before writing anything`, async () => {
    const repo = repoName('reach')
    const config = await pushBlobOf(repo, MT.empty, EMPTY_JSON)
    // 500 children (stored directly: they need not be pushable) of 4 distinct layers each: 2,501 digests.
    const children = await inBatches(Array.from({ length: 500 }, (_, i) => i), 50, async (i) => {
      const layers = Array.from({ length: 4 }, (_, j) => ({ mediaType: MT.ociLayer, digest: `sha256:${(i * 4 + j).toString(16).padStart(64, '0')}`, size: 1 }))
      const m = await build({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers })
      await storeManifest(bindings, repo as Repo, m.digest as Digest, m.bytes, m.mediaType, null)
      return m.descriptor
    })
    const index = await build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: children })
    const res = await api(`/v2/${repo}/manifests/v1`, { method: 'PUT', body: index.bytes, headers: { 'Content-Type': MT.ociIndex } }, env)
    await expectError(res.clone(), 400, 'MANIFEST_INVALID')
    expect(await reason(res)).toContain(`at most ${MAX_PINS} manifests and blobs`)
    await expectNotStored(repo, index.digest, { tag: 'v1' })
    expect((await bindings.BLOBS.list({ prefix: `repos/${repo}+pins/` })).objects).toHaveLength(0)
    // Under the limit (100 children: 502 digests with their 400 layers, the config and the index) it is pinned.
    const smaller = await build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: children.slice(0, 100) })
    const ok = await api(`/v2/${repo}/manifests/v2`, { method: 'PUT', body: smaller.bytes, headers: { 'Content-Type': MT.ociIndex } }, env)
    expect(ok.status).toBe(201)
    expect((await bindings.BLOBS.list({ prefix: `repos/${repo}+pins/` })).objects.length).toBe(502)
  })

  it(`refuses a push to an immutable tag needing more than ${MAX_PIN_READS} child manifest reads (a nested index)`, async () => {
    const repo = repoName('reach')
    const config = await pushBlobOf(repo, MT.empty, EMPTY_JSON)
    const store = async (doc: Record<string, unknown>) => {
      const m = await build(doc)
      await storeManifest(bindings, repo as Repo, m.digest as Digest, m.bytes, m.mediaType, null)
      return m.descriptor
    }
    const image = (i: number) => store({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [{ mediaType: MT.ociLayer, digest: `sha256:${i.toString(16).padStart(64, '0')}`, size: 1 }] })
    const leaves = await inBatches(Array.from({ length: MAX_PIN_READS + 1 }, (_, i) => i), 50, image)
    // 499 images and an index of two more: 501 reads.
    const nested = await store({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: leaves.slice(MAX_PIN_READS - 1) })
    const index = await build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [...leaves.slice(0, MAX_PIN_READS - 1), nested] })
    const res = await api(`/v2/${repo}/manifests/v1`, { method: 'PUT', body: index.bytes, headers: { 'Content-Type': MT.ociIndex } }, env)
    expect(await reason(res.clone())).toContain(`reading at most ${MAX_PIN_READS} child manifests`)
    await expectError(res, 400, 'MANIFEST_INVALID')
    await expectNotStored(repo, index.digest, { tag: 'v1' })
  })
})
