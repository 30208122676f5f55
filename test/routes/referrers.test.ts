/** GET /v2/<name>/referrers/<digest> (spec "Listing Referrers") and PUT's OCI-Subject. */
import { describe, expect, it } from 'vitest'
import { randomBlob, repoName } from '../helpers'
import {
  api,
  build,
  dockerImage,
  expectError,
  expectNotStored,
  getManifest,
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

  it('keeps a referrer with annotations too large for object metadata whole', async () => {
    const repo = repoName('referrers')
    const image = await ociImage(repo)
    await push(repo, 'v1', image)
    const annotations = { 'org.example.big': 'x'.repeat(4000), 'org.example.small': 'y' }
    const sig = await ociArtifact(repo, SIG, image.descriptor, { annotations })
    await push(repo, sig.digest, sig)
    expect(await listed(await referrers(repo, image.digest))).toEqual([descriptorOf(sig, SIG, annotations)])
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
