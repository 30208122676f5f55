/**
 * The collector and upload sessions that raced (issue 19): what a link names is what the blob
 * index names, so the collector, which keeps whatever a live index entry names, never deletes
 * a linked session's bytes at the upload expiry.
 */
import { describe, expect, it } from 'vitest'
import type { Digest, Repo } from '../../src/names'
import { keys } from '../../src/storage/keys'
import { uploadSecret } from '../../src/storage/secrets'
import { MAX_SESSION_AGE_MS, newUploadState, uploadLocation } from '../../src/upload/state'
import { bindings, bytesOf, call, callWith, errorCode, randomBlob, repoName, sha256, sha512, slowBody, withDigest } from '../helpers'
import { driver, gc, gcEnv, MANIFEST, pulls, pushManifest, putBlob, via, violations, type Image } from './setup'

const env = gcEnv()
const WEEK = 7 * 86_400_000
/** A run as it would start a week from now: every session of this test is past the upload expiry. */
const aWeekLater = () => driver({ memo: new Map<string, unknown>([['start', { now: Date.now() + WEEK, started: new Date().toISOString() }]]) })

/** An image in `repo` whose only layer is `layer` (already pushed there), tagged v1. */
async function imageOf(repo: string, layer: string, size: number): Promise<Image> {
  const config = await putBlob(repo, crypto.getRandomValues(new Uint8Array(40)))
  const bytes = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 40 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size }],
  })
  return { repo, digest: await pushManifest(repo, 'v1', bytes, MANIFEST), config, layer, bytes }
}

describe('a monolithic POST racing a session close of the same blob, then a collection past the upload expiry', () => {
  it('both images pull: the session’s bytes stay while the index entry names them', async () => {
    const mono = repoName('mono')
    const sess = repoName('sess')
    const layer = randomBlob(2 * 1024 * 1024)
    const digest = await sha256(layer)
    const slow = slowBody(layer, 1024 * 1024)
    const posting = via(`/v2/${mono}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: slow.stream, headers: { 'Content-Length': String(layer.length) } })
    await slow.reading
    const post = await via(`/v2/${sess}/blobs/uploads/`, { method: 'POST' })
    expect((await via(withDigest(post.headers.get('Location')!, digest), { method: 'PUT', body: layer })).status).toBe(201)
    slow.open()
    expect((await posting).status).toBe(201)
    const at = (await bindings.BLOBS.head(keys.blob(digest as Digest)))!.customMetadata!.at!
    expect(at).toMatch(/^data\//)
    const images = [await imageOf(sess, digest, layer.length), await imageOf(mono, digest, layer.length)]
    const report = await gc(env, {}, aWeekLater())
    expect(report.totals.blobs).toBe(0)
    expect(await bindings.BLOBS.head(at)).not.toBeNull()
    for (const img of images) expect(await pulls(img), img.repo).toBe(true)
    expect(await violations(env)).toEqual([])
  })

  it('sessions that raced each other (claims, pieces, joined bytes): past the expiry, only what no index entry names goes', async () => {
    const repo = repoName('sess')
    const first = randomBlob(300_000)
    const big = randomBlob(2 * 1024 * 1024)
    const small = randomBlob(1000)
    const post = await via(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    const l1 = (await via(post.headers.get('Location')!, { method: 'PATCH', body: first, headers: { 'Content-Length': String(first.length) } })).headers.get('Location')!
    // a chunk of unknown length over the probe claims its offset (a fold); a small one at the
    // same offset lands as a piece: whichever holds the offset first, the other is refused
    const [a, b] = await Promise.all([
      via(l1, { method: 'PATCH', body: new Blob([big]).stream() }),
      via(l1, { method: 'PATCH', body: small, headers: { 'Content-Length': String(small.length), 'Content-Range': `${first.length}-${first.length + small.length - 1}` } }),
    ])
    expect([a.status, b.status].sort()).toEqual([202, 416])
    const more = a.status === 202 ? big : small
    const whole = new Uint8Array(first.length + more.length)
    whole.set(first)
    whole.set(more, first.length)
    const l2 = (a.status === 202 ? a : b).headers.get('Location')!
    const digest = await sha256(whole)
    expect((await via(withDigest(l2, digest), { method: 'PUT' })).status).toBe(201)
    const img = await imageOf(repo, digest, whole.length)
    const at = (await bindings.BLOBS.head(keys.blob(digest as Digest)))!.customMetadata!.at!
    const report = await gc(env, {}, aWeekLater())
    expect(report.totals.uploads).toBeGreaterThanOrEqual(1) // the first write, the end mark, any claim
    expect(await bindings.BLOBS.head(at)).not.toBeNull()
    expect(await pulls(img)).toBe(true)
    expect(await violations(env)).toEqual([])
  })

  it('a write closed at once under both algorithms: collecting one blob leaves the other its bytes', async () => {
    const repo = repoName('sess')
    const layer = randomBlob(200_000)
    const d256 = await sha256(layer)
    const d512 = await sha512(layer)
    const post = await via(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    const l1 = (await via(post.headers.get('Location')!, { method: 'PATCH', body: layer, headers: { 'Content-Length': String(layer.length) } })).headers.get('Location')!
    const closes = await Promise.all([d256, d512].map((d) => via(withDigest(l1, d), { method: 'PUT' })))
    // concurrent: usually both closes run before either ends the session (else one answers 404)
    expect(closes.map((r) => r.status).sort()).toContain(201)
    const at256 = (await bindings.BLOBS.head(keys.blob(d256 as Digest)))?.customMetadata?.at
    const at512 = (await bindings.BLOBS.head(keys.blob(d512 as Digest)))?.customMetadata?.at
    expect(at512 === undefined || at512 !== at256, 'one object, one index entry').toBe(true)
    // the sha512 blob unlinked and collected; the sha256 one tagged
    if (closes[1]!.status === 201) expect((await via(`/v2/${repo}/blobs/${d512}`, { method: 'DELETE' })).status).toBe(202)
    const img = closes[0]!.status === 201 ? await imageOf(repo, d256, layer.length) : null
    await gc(env, {}, aWeekLater())
    if (img) expect(await pulls(img)).toBe(true)
    expect(await violations(env)).toEqual([])
  })
})


/** R2 whose puts are each followed by `after` (the collector's mark or tombstone, say), as the test lines a race up. */
function afterPuts(after: (key: string, options: R2PutOptions | undefined) => Promise<void>): R2Bucket {
  const target = bindings.BLOBS
  return new Proxy(target, {
    get(t, name, receiver) {
      const value = Reflect.get(t, name, receiver)
      if (name !== 'put') return typeof value === 'function' ? value.bind(t) : value
      return async (...args: Parameters<R2Bucket['put']>) => {
        const out = await t.put(...args)
        await after(args[0], args[2])
        return out
      }
    },
  }) as R2Bucket
}

describe('a closing PUT replayed while the collector sweeps the blob it made', () => {
  it.each([
    ['the blob’s mark is swept', (digest: string, key: string, o?: R2PutOptions) => key === keys.gcBlobMark(digest as Digest) && o?.customMetadata?.state === 'swept'],
    ['the index is a tombstone', (digest: string, key: string, o?: R2PutOptions) => key === keys.blob(digest as Digest) && o?.customMetadata?.gone !== undefined],
  ] as const)('once %s: 404, and the digest stays pushable and pullable by anyone', async (_when, hit) => {
    const repo = repoName('sweep')
    const bytes = randomBlob(50_000)
    const digest = await sha256(bytes)
    const post = await via(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    const l1 = (await via(post.headers.get('Location')!, { method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length) } })).headers.get('Location')!
    expect((await via(withDigest(l1, digest), { method: 'PUT' })).status).toBe(201)
    expect((await via(`/v2/${repo}/blobs/${digest}`, { method: 'DELETE' })).status).toBe(202)
    // The replay lands between the sweep's first write and its delete of the session's bytes.
    let replay: Response | null = null
    const racing = { ...env, BLOBS: afterPuts(async (key, o) => {
      if (!replay && hit(digest, key, o)) replay = await via(withDigest(l1, digest), { method: 'PUT' })
    }) }
    expect((await gc(racing, {})).totals.blobs).toBeGreaterThanOrEqual(1)
    expect(replay, 'the replay ran').not.toBeNull()
    expect(replay!.status).toBe(404)
    expect(await violations(env)).toEqual([])
    // Another tenant pushing the same bytes (within the default grace: a fresh entry is live) gets them served.
    const other = repoName('victim')
    const push = await call(`/v2/${other}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes, headers: { 'Content-Length': String(bytes.length) } })
    expect(push.status).toBe(201)
    const got = await call(`/v2/${other}/blobs/${digest}`)
    expect(got.status).toBe(200)
    expect(await sha256(await bytesOf(got))).toBe(digest)
  })
})

describe('a close that began before its session’s upload expiry and names its bytes after the collector looked', () => {
  /** A session with `left` ms before its Locations stop verifying, its one write in: the Location to close. */
  async function expiringSession(left: number, bytes: Uint8Array): Promise<string> {
    const repo = repoName('expiry')
    const l0 = await uploadLocation(await uploadSecret(env, null), newUploadState(repo as Repo, Date.now() - MAX_SESSION_AGE_MS + left))
    const res = await via(l0, { method: 'PATCH', body: bytes, headers: { 'Content-Length': String(bytes.length) } })
    expect(res.status).toBe(202)
    return res.headers.get('Location')!
  }

  /** A collection that starts now and, before its upload shard lists data/, runs `meanwhile`. */
  function collectingAround(meanwhile: () => Promise<void>): Promise<unknown> {
    const base = driver()
    let done = false
    return gc(env, {}, {
      sleep: base.sleep,
      async do(name, fn) {
        if (!done && /^u\d+\/uploads:0$/.test(name)) {
          done = true
          await meanwhile()
        }
        return base.do(name, fn)
      },
    })
  }

  const gate = () => {
    let open!: () => void
    let reached!: () => void
    return { opened: new Promise<void>((r) => (open = r)), open: () => open(), there: new Promise<void>((r) => (reached = r)), reach: () => reached() }
  }

  it('a close whose body arrives after the expiry: 404, nothing named', async () => {
    const bytes = randomBlob(40_000)
    const digest = await sha256(bytes)
    const l1 = await expiringSession(1000, bytes)
    // An empty chunked body that the client holds open past the expiry, then ends.
    const g = gate()
    const body = new ReadableStream<Uint8Array>({ async pull(c) { g.reach(); await g.opened; c.close() } })
    const closing = via(withDigest(l1, digest), { method: 'PUT', body, duplex: 'half' } as RequestInit)
    await g.there
    await new Promise((r) => setTimeout(r, 1500))
    let answer: Response | null = null
    await collectingAround(async () => {
      g.open()
      answer = await closing
    })
    expect(answer!.status).toBe(404)
    expect(await errorCode(answer!)).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await bindings.BLOBS.head(keys.blob(digest as Digest))).toBeNull()
    expect(await violations(env)).toEqual([])
  })

  it('a close checked just before the expiry whose index write lands after the collector’s blob scan: the bytes stay', async () => {
    const bytes = randomBlob(40_000)
    const digest = await sha256(bytes)
    const l1 = await expiringSession(1000, bytes)
    const g = gate()
    const late = new Proxy(bindings.BLOBS, {
      get(t, name, receiver) {
        const value = Reflect.get(t, name, receiver)
        if (name !== 'put') return typeof value === 'function' ? value.bind(t) : value
        return async (...args: Parameters<R2Bucket['put']>) => {
          if (args[0] === keys.blob(digest as Digest)) {
            g.reach()
            await g.opened
          }
          return t.put(...args)
        }
      },
    })
    const closing = callWith({ ...env, BLOBS: late }, withDigest(l1, digest), { method: 'PUT' })
    await g.there
    await new Promise((r) => setTimeout(r, 1500))
    let answer: Response | null = null
    await collectingAround(async () => {
      g.open()
      answer = await closing
    })
    expect(answer!.status).toBe(201)
    expect(await violations(env)).toEqual([])
    const got = await via(`/v2/${(answer!.headers.get('Location') ?? '').split('/blobs/')[0]!.slice(4)}/blobs/${digest}`)
    expect(got.status).toBe(200)
    expect(await sha256(await bytesOf(got))).toBe(digest)
  })
})
