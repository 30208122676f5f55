/** OCI image manifest, artifacts included: the handler contract, artifactType, empty config, foreign layers. */
import { describe, expect, it } from 'vitest'
import { ociManifest } from '../../src/manifests/oci-manifest'
import { randomBlob, repoName, sha512 } from '../helpers'
import { manifestHandlerContract } from './contract'
import {
  api,
  build,
  EMPTY_DIGEST,
  EMPTY_JSON,
  expectServes,
  getManifest,
  MT,
  ociArtifact,
  ociImage,
  push,
  pushBlobOf,
  putManifest,
  type Descriptor,
} from './fixtures'

manifestHandlerContract({
  handler: ociManifest,
  mediaType: MT.ociManifest,
  kind: 'image',
  required: ['config'],
  subject: true,
  async example(repo) {
    const manifest = await ociImage(repo)
    const { config, layers } = manifest.doc as { config: Descriptor; layers: Descriptor[] }
    return { manifest, blobs: [config.digest, ...layers.map((l) => l.digest)], manifests: [] }
  },
})

describe('OCI image manifest artifacts', () => {
  it('accepts an artifact (artifactType, the empty config, any layer media type) and serves it back byte-for-byte', async () => {
    const repo = repoName('oci-manifest')
    const m = await ociArtifact(repo, 'application/vnd.example.sbom.v1')
    expect((m.doc.config as Descriptor).digest).toBe(EMPTY_DIGEST)
    await push(repo, 'sbom', m)
    await expectServes(await getManifest(repo, 'sbom'), m)
    await expectServes(await getManifest(repo, m.digest), m)
  })

  it('reports artifactType from the artifactType field, else from the config media type', async () => {
    const repo = repoName('oci-manifest')
    const withField = await ociArtifact(repo, 'application/vnd.example.sig')
    expect((await ociManifest.parse(withField.doc, withField.bytes, { repo, tag: null })).artifactType).toBe('application/vnd.example.sig')
    const { artifactType: _, ...doc } = withField.doc
    const config = { ...(doc.config as Descriptor), mediaType: 'application/vnd.example.config.v1+json' }
    expect((await ociManifest.parse({ ...doc, config }, withField.bytes, { repo, tag: null })).artifactType).toBe(
      'application/vnd.example.config.v1+json',
    )
  })

  it('accepts an artifact whose only blob is the empty descriptor, as config and as layer', async () => {
    const repo = repoName('oci-manifest')
    const empty = await pushBlobOf(repo, MT.empty, EMPTY_JSON)
    const m = await build({ schemaVersion: 2, mediaType: MT.ociManifest, artifactType: 'application/x.only-annotations', config: empty, layers: [empty], annotations: { 'org.example.note': 'hi' } })
    const parsed = await ociManifest.parse(m.doc, m.bytes, { repo, tag: null })
    expect(parsed.blobs).toEqual([EMPTY_DIGEST])
    await push(repo, 'note', m)
    await expectServes(await getManifest(repo, 'note'), m)
  })

  it('accepts a non-distributable layer with urls whose blob was never pushed', async () => {
    const repo = repoName('oci-manifest')
    const base = await ociImage(repo, { layers: 1 })
    const foreign = { mediaType: MT.ociNondistributableLayer, digest: 'sha256:' + '9'.repeat(64), size: 10, urls: ['https://example.com/layer.tgz'] }
    const m = await build({ ...base.doc, layers: [foreign, ...(base.doc.layers as Descriptor[])] })
    expect((await ociManifest.parse(m.doc, m.bytes, { repo, tag: null })).blobs).not.toContain(foreign.digest)
    await push(repo, 'foreign', m)
    await expectServes(await getManifest(repo, 'foreign'), m)
  })

  it('takes a sha512 digest reference: the digest is computed with sha512 and served under it', async () => {
    const repo = repoName('oci-manifest')
    const m = await ociImage(repo, { layers: 1 })
    const digest = await sha512(m.bytes)
    const res = await putManifest(repo, digest, m.bytes, MT.ociManifest)
    expect(res.status, await res.clone().text()).toBe(201)
    expect(res.headers.get('docker-content-digest')).toBe(digest)
    expect(res.headers.get('location')).toBe(`/v2/${repo}/manifests/${digest}`)
    await expectServes(await getManifest(repo, digest), { ...m, digest })
  })

  it('accepts a layer of any media type when its blob is linked', async () => {
    const repo = repoName('oci-manifest')
    const base = await ociImage(repo, { layers: 0 })
    const helm = await pushBlobOf(repo, 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', randomBlob(300))
    const m = await build({ ...base.doc, layers: [helm] })
    await push(repo, 'chart', m)
    const res = await api(`/v2/${repo}/manifests/chart`)
    await expectServes(res, m)
  })
})
