/** GET /v2/<name>/referrers/<digest> (spec "Listing Referrers") and PUT's OCI-Subject. */
import { describe, expect, it } from 'vitest'
import { bindings, randomBlob, repoName } from '../helpers'
import { DESCRIPTOR_MAX, LEGACY_READS_PER_PAGE, putReferrer, referrerEntry, REFERRERS_PAGE } from '../../src/storage/referrers'
import { keys } from '../../src/storage/keys'
import type { Digest, Repo } from '../../src/names'
import { Meter, meteredKV, meteredR2 } from '../../bench/cost/meter'
import {
  api,
  build,
  dockerImage,
  expectError,
  expectNotStored,
  getManifest,
  inBatches,
  MT,
  ociArtifact,
  ociImage,
  push,
  pushBlobOf,
  putManifest,
  type Built,
  type Descriptor,
} from '../manifests/fixtures'

const SIG = 'application/vnd.example.signature.v1'
const SBOM = 'application/vnd.example.sbom.v1'

interface Index {
  schemaVersion: number
  mediaType: string
  manifests: Descriptor[]
}

const referrers = (repo: string, subject: string, query = '') => api(`/v2/${repo}/referrers/${subject}${query}`)

/** A 200 referrers reply: exactly the index media type, no parameters; its descriptors sorted by digest. */
async function listed(res: Response): Promise<Descriptor[]> {
  expect(res.status, await res.clone().text()).toBe(200)
  expect(res.headers.get('content-type')).toBe(MT.ociIndex)
  const body = (await res.json()) as Index
  expect(body.schemaVersion).toBe(2)
  expect(body.mediaType).toBe(MT.ociIndex)
  return [...body.manifests].sort((a, b) => a.digest.localeCompare(b.digest))
}

const byDigest = (ds: Descriptor[]) => [...ds].sort((a, b) => a.digest.localeCompare(b.digest))

/** The descriptor the referrers API must give for `m`. */
function descriptorOf(m: Built, artifactType?: string, annotations?: Record<string, string>): Descriptor {
  return { mediaType: m.mediaType, digest: m.digest, size: m.size, ...(artifactType ? { artifactType } : {}), ...(annotations ? { annotations } : {}) }
}

describe('referrers', () => {
  it('lists every referrer of a subject with mediaType, size, digest, artifactType and annotations', async () => {
    const repo = repoName('referrers')
    const image = await ociImage(repo)
    await push(repo, 'v1', image)
    const sig = await ociArtifact(repo, SIG, image.descriptor, { annotations: { 'org.example.signer': 'ci' } })
    const sbom = await ociArtifact(repo, SBOM, image.descriptor)
    // No artifactType: the config's media type stands in for it.
    const config = await pushBlobOf(repo, 'application/vnd.example.attestation.config.v1+json', '{"k":1}')
    const attestation = await build({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [], subject: image.descriptor })
    for (const m of [sig, sbom]) {
      const res = await push(repo, `${m === sig ? 'sig' : 'sbom'}`, m)
      expect(res.headers.get('oci-subject')).toBe(image.digest)
    }
    expect((await push(repo, attestation.digest, attestation)).headers.get('oci-subject')).toBe(image.digest)

    const res = await referrers(repo, image.digest)
    expect(res.headers.get('oci-filters-applied')).toBeNull()
    expect(await listed(res)).toEqual(
      byDigest([
        descriptorOf(sig, SIG, { 'org.example.signer': 'ci' }),
        descriptorOf(sbom, SBOM),
        descriptorOf(attestation, 'application/vnd.example.attestation.config.v1+json'),
      ]),
    )
  })

  it('filters by ?artifactType= and says so with OCI-Filters-Applied: artifactType', async () => {
    const repo = repoName('referrers')
    const image = await ociImage(repo)
    await push(repo, 'v1', image)
    const sigs = [await ociArtifact(repo, SIG, image.descriptor), await ociArtifact(repo, SIG, image.descriptor)]
    const sbom = await ociArtifact(repo, SBOM, image.descriptor)
    for (const m of [...sigs, sbom]) await push(repo, m.digest, m)

    let res = await referrers(repo, image.digest, `?artifactType=${encodeURIComponent(SIG)}`)
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType')
    expect(await listed(res)).toEqual(byDigest(sigs.map((m) => descriptorOf(m, SIG))))

    res = await referrers(repo, image.digest, `?artifactType=${encodeURIComponent(SBOM)}`)
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType')
    expect(await listed(res)).toEqual([descriptorOf(sbom, SBOM)])

    res = await referrers(repo, image.digest, '?artifactType=application/vnd.example.none')
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType')
    expect(await listed(res)).toEqual([])

    res = await referrers(repo, image.digest)
    expect(res.headers.get('oci-filters-applied')).toBeNull()
    expect(await listed(res)).toHaveLength(3)
  })

  it('lists a referrer pushed before its subject, before and after the subject arrives', async () => {
    const repo = repoName('referrers')
    const image = await ociImage(repo) // blobs pushed, manifest not yet
    const sig = await ociArtifact(repo, SIG, image.descriptor)
    const put = await push(repo, 'sig', sig)
    expect(put.headers.get('oci-subject')).toBe(image.digest)
    expect((await getManifest(repo, image.digest)).status).toBe(404)
    expect(await listed(await referrers(repo, image.digest))).toEqual([descriptorOf(sig, SIG)])
    await push(repo, 'v1', image)
    expect(await listed(await referrers(repo, image.digest))).toEqual([descriptorOf(sig, SIG)])
  })

  it('lists a referrer whose subject is never pushed', async () => {
    const repo = repoName('referrers')
    const ghost = { mediaType: MT.ociManifest, digest: 'sha256:' + '1'.repeat(64), size: 999 }
    const sig = await ociArtifact(repo, SIG, ghost)
    await push(repo, sig.digest, sig)
    expect(await listed(await referrers(repo, ghost.digest))).toEqual([descriptorOf(sig, SIG)])
  })

  it('answers 200 with an empty index for an unknown subject, also in an unknown repository', async () => {
    const repo = repoName('referrers')
    await push(repo, 'v1', await ociImage(repo))
    const unknown = 'sha256:' + '2'.repeat(64)
    expect(await listed(await referrers(repo, unknown))).toEqual([])
    expect(await listed(await referrers(repoName('referrers-none'), unknown))).toEqual([])
  })

  it.each(['sha256:abc', 'sha256:' + 'G'.repeat(64), 'notadigest', 'md5:' + 'a'.repeat(32), 'sha256:' + 'A'.repeat(64)])(
    'answers 400 DIGEST_INVALID for the malformed digest %s',
    async (digest) => {
      await expectError(await referrers(repoName('referrers'), digest), 400, 'DIGEST_INVALID')
    },
  )

  it('lists referrers per repository: a referrer in another repository is not listed', async () => {
    const [a, b] = [repoName('referrers'), repoName('referrers')]
    const image = await ociImage(a)
    await push(a, 'v1', image)
    const sig = await ociArtifact(b, SIG, image.descriptor)
    await push(b, 'sig', sig)
    expect(await listed(await referrers(a, image.digest))).toEqual([])
    expect(await listed(await referrers(b, image.digest))).toEqual([descriptorOf(sig, SIG)])
  })

  it('lists a referrer\'s annotations whole while its descriptor fits 1,800 bytes, and those that fit (whole, in key order) past it', async () => {
    const repo = repoName('referrers')
    const image = await ociImage(repo)
    await push(repo, 'v1', image)
    const fits = { 'org.example.a': 'x'.repeat(1200), 'org.example.b': 'y' }
    const over = { 'org.example.a': 'y', 'org.example.big': 'x'.repeat(4000), 'org.example.c': 'z'.repeat(800), 'org.example.d': 'w'.repeat(800) }
    const whole = await ociArtifact(repo, SIG, image.descriptor, { annotations: fits })
    const cut = await ociArtifact(repo, SBOM, image.descriptor, { annotations: over })
    await push(repo, whole.digest, whole)
    await push(repo, cut.digest, cut)
    const res = await referrers(repo, image.digest)
    const listedDescriptors = await listed(res)
    expect(listedDescriptors).toEqual(byDigest([
      descriptorOf(whole, SIG, fits),
      // "big" cannot fit; "c" can, "d" then cannot: whole entries only, in key order.
      descriptorOf(cut, SBOM, { 'org.example.a': 'y', 'org.example.c': 'z'.repeat(800) }),
    ]))
    for (const d of listedDescriptors) expect(JSON.stringify(d).length).toBeLessThanOrEqual(DESCRIPTOR_MAX)
    // The manifest itself keeps every annotation.
    expect(JSON.parse(await (await getManifest(repo, cut.digest)).text()).annotations).toEqual(over)
  })

  it('keeps non-ASCII and lone-surrogate annotations exactly (escaped in storage, counted as stored)', async () => {
    const repo = repoName('referrers')
    const image = await ociImage(repo)
    await push(repo, 'v1', image)
    const annotations = { 'org.example.text': 'grüße 🎉 \ud800 \u0001 "q"', 'org.example.many': 'ü'.repeat(200) }
    const sig = await ociArtifact(repo, SIG, image.descriptor, { annotations })
    await push(repo, sig.digest, sig)
    expect(await listed(await referrers(repo, image.digest))).toEqual([descriptorOf(sig, SIG, annotations)])
  })

  it('refuses an artifactType or media type longer than RFC 6838 allows (255), storing nothing', async () => {
    const repo = repoName('referrers')
    const image = await ociImage(repo)
    await push(repo, 'v1', image)
    const long = await ociArtifact(repo, `application/${'x'.repeat(244)}`, image.descriptor)
    await expectError(await putManifest(repo, long.digest, long.bytes, long.mediaType), 400, 'MANIFEST_INVALID')
    await expectNotStored(repo, long.digest, { subject: image.digest })
    const atLimit = await ociArtifact(repo, `application/${'x'.repeat(243)}`, image.descriptor)
    await push(repo, atLimit.digest, atLimit)
  })

  it('refuses annotations that are not strings (400, nothing stored)', async () => {
    const repo = repoName('referrers')
    const image = await ociImage(repo)
    await push(repo, 'v1', image)
    for (const annotations of [{ 'org.example.n': 1 }, { 'org.example.o': { a: 'b' } }, ['x']]) {
      const bad = await ociArtifact(repo, SIG, image.descriptor, { annotations })
      await expectError(await putManifest(repo, bad.digest, bad.bytes, bad.mediaType), 400, 'MANIFEST_INVALID')
      await expectNotStored(repo, bad.digest, { subject: image.digest })
    }
  })

  it('records an index referrer with its own artifactType', async () => {
    const repo = repoName('referrers')
    const image = await ociImage(repo)
    await push(repo, 'v1', image)
    const sig = await ociArtifact(repo, SIG, image.descriptor)
    await push(repo, sig.digest, sig)
    const bundle = await build({ schemaVersion: 2, mediaType: MT.ociIndex, artifactType: 'application/vnd.example.bundle', manifests: [sig.descriptor], subject: image.descriptor })
    expect((await push(repo, bundle.digest, bundle)).headers.get('oci-subject')).toBe(image.digest)
    expect(await listed(await referrers(repo, image.digest, '?artifactType=application/vnd.example.bundle'))).toEqual([
      descriptorOf(bundle, 'application/vnd.example.bundle'),
    ])
  })

  it('replies no OCI-Subject for a manifest without a subject', async () => {
    const repo = repoName('referrers')
    const res = await push(repo, 'v1', await dockerImage(repo))
    expect(res.headers.get('oci-subject')).toBeNull()
    const res2 = await push(repo, 'v2', await ociArtifact(repo, SIG))
    expect(res2.headers.get('oci-subject')).toBeNull()
  })

  it('does not list a referrer that was refused (its layer is not in the repository)', async () => {
    const repo = repoName('referrers')
    const image = await ociImage(repo)
    await push(repo, 'v1', image)
    const ghost = { mediaType: 'application/vnd.example.signature', digest: 'sha256:' + 'b'.repeat(64), size: 64 }
    const sig = await ociArtifact(repo, SIG, image.descriptor, { layers: [ghost] })
    await expectError(await putManifest(repo, 'sig', sig.bytes, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN')
    await expectNotStored(repo, sig.digest, { tag: 'sig', subject: image.digest })
    expect(await listed(await referrers(repo, image.digest))).toEqual([])
  })

  it('re-pushing a referrer lists it once', async () => {
    const repo = repoName('referrers')
    const image = await ociImage(repo)
    const sig = await ociArtifact(repo, SIG, image.descriptor, { layers: [await pushBlobOf(repo, 'application/octet-stream', randomBlob(10))] })
    await push(repo, 'sig', sig)
    await push(repo, 'sig', sig)
    await push(repo, sig.digest, sig)
    expect(await listed(await referrers(repo, image.digest))).toEqual([descriptorOf(sig, SIG)])
  })
})

describe('referrers pages (each a bounded number of entries, bytes and calls)', () => {
  const entry = (i: number) => ({
    mediaType: MT.ociManifest,
    digest: `sha256:${i.toString(16).padStart(64, '0')}`,
    size: 100 + i,
    artifactType: SIG,
    annotations: { 'org.example.n': String(i), 'org.example.pad': 'p'.repeat(1500) },
  })

  /** Follows every Link from the first page: each page's descriptors, Link and R2 calls. */
  async function pages(repo: string, subject: string, most = 10) {
    const out: { digests: string[]; bytes: number; calls: Record<string, number> }[] = []
    let next: string | null = `/v2/${repo}/referrers/${subject}`
    while (next && out.length < most) {
      const meter = new Meter()
      const res = await api(next, undefined, { BLOBS: meteredR2(meter, bindings.BLOBS), LINKS: meteredKV(meter, bindings.LINKS) })
      const text = await res.text()
      expect(res.status, text).toBe(200)
      out.push({ digests: (JSON.parse(text) as Index).manifests.map((d) => d.digest), bytes: text.length, calls: meter.counts })
      const link = res.headers.get('link')
      next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null
    }
    return out
  }

  it(`pages ${REFERRERS_PAGE + 5} referrers in pages of at most ${REFERRERS_PAGE}, each one R2 list and at most ~1.8 MB`, async () => {
    const repo = repoName('referrers-pages') as Repo
    const subject = `sha256:${'e'.repeat(64)}` as Digest
    await inBatches(Array.from({ length: REFERRERS_PAGE + 5 }, (_, i) => i), 50, (i) => putReferrer(bindings, repo, subject, referrerEntry(entry(i) as never)))
    const got = await pages(repo, subject, 20)
    // R2 may give fewer than asked when it includes metadata (the local one gives 100): never more.
    expect(got.length).toBeGreaterThan(1)
    for (const p of got) expect(p.digests.length).toBeLessThanOrEqual(REFERRERS_PAGE)
    expect(got.flatMap((p) => p.digests)).toEqual(Array.from({ length: REFERRERS_PAGE + 5 }, (_, i) => entry(i).digest))
    for (const p of got) {
      expect(p.calls).toEqual({ 'r2.list': 1 })
      expect(p.bytes).toBeLessThanOrEqual(REFERRERS_PAGE * DESCRIPTOR_MAX + 200)
    }
  })

  it(`reads at most ${LEGACY_READS_PER_PAGE} old uncapped entries (their descriptor in the body) a page, capped like new ones`, async () => {
    const repo = repoName('referrers-legacy') as Repo
    const subject = `sha256:${'f'.repeat(64)}` as Digest
    // As written before descriptors were capped: over 1,800 bytes went in the object's body.
    await inBatches(Array.from({ length: 20 }, (_, i) => i), 10, (i) => {
      const d = { ...entry(i), annotations: { 'org.example.n': String(i), 'org.example.huge': 'h'.repeat(64 * 1024) } }
      return bindings.BLOBS.put(keys.referrer(repo, subject, d.digest as Digest), JSON.stringify(d))
    })
    const got = await pages(repo, subject)
    expect(got.map((p) => p.digests.length)).toEqual([8, 8, 4])
    for (const p of got) {
      expect(p.calls['r2.list']).toBe(1)
      expect(p.calls['r2.get']).toBeLessThanOrEqual(LEGACY_READS_PER_PAGE)
      expect(p.bytes).toBeLessThanOrEqual(LEGACY_READS_PER_PAGE * DESCRIPTOR_MAX + 200)
    }
    expect(got.flatMap((p) => p.digests)).toEqual(Array.from({ length: 20 }, (_, i) => entry(i).digest))
  })

  it('pages the web UI\'s referrers page 50 at a time', async () => {
    const repo = repoName('referrers-ui') as Repo
    const subject = `sha256:${'d'.repeat(64)}` as Digest
    await inBatches(Array.from({ length: 60 }, (_, i) => i), 30, (i) => putReferrer(bindings, repo, subject, referrerEntry(entry(i) as never)))
    const first = await (await api(`/r/${repo}/-/referrers/${subject}`)).text()
    expect(first.match(/<tr><td><a href=/g)).toHaveLength(50)
    const next = /<a href="([^"]+)" rel="next">/.exec(first)![1]!.replaceAll('&amp;', '&')
    const second = await (await api(next)).text()
    expect(second.match(/<tr><td><a href=/g)).toHaveLength(10)
    expect(second).not.toContain('rel="next"')
  })
})
