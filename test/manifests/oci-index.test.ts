/** OCI image index: the handler contract over a two-platform index, artifactType, subject, empty index. */
import { describe, expect, it } from 'vitest'
import { ociIndex } from '../../src/manifests/oci-index'
import { repoName } from '../helpers'
import { manifestHandlerContract } from './contract'
import {
  api,
  build,
  expectServes,
  getManifest,
  index,
  MT,
  ociImage,
  push,
} from './fixtures'

const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' }

async function twoPlatforms(repo: string) {
  const [a, b] = await Promise.all([ociImage(repo, { platform: amd64 }), ociImage(repo, { platform: arm64 })])
  await push(repo, a.digest, a)
  await push(repo, b.digest, b)
  return { a, b, idx: await index(MT.ociIndex, [{ built: a, platform: amd64 }, { built: b, platform: arm64 }]) }
}

manifestHandlerContract({
  handler: ociIndex,
  mediaType: MT.ociIndex,
  kind: 'index',
  required: ['manifests'],
  subject: true,
  async example(repo) {
    const { a, b, idx } = await twoPlatforms(repo)
    return { manifest: idx, blobs: [], manifests: [a.digest, b.digest] }
  },
})

describe('OCI image index', () => {
  it('accepts an empty index (manifests may be empty)', async () => {
    const repo = repoName('oci-index')
    const m = await build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] })
    await push(repo, 'empty', m)
    await expectServes(await getManifest(repo, 'empty'), m)
  })

  it('an index artifact with artifactType and a subject is listed as a referrer with that artifactType and its annotations', async () => {
    const repo = repoName('oci-index')
    const { a, b, idx } = await twoPlatforms(repo)
    await push(repo, 'multi', idx)
    const bundle = await build({
      ...(await index(MT.ociIndex, [{ built: a, platform: amd64 }, { built: b, platform: arm64 }])).doc,
      artifactType: 'application/vnd.example.bundle',
      subject: idx.descriptor,
      annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
    })
    const parsed = await ociIndex.parse(bundle.doc, bundle.bytes, { repo, tag: null })
    expect(parsed.artifactType).toBe('application/vnd.example.bundle')
    const put = await push(repo, bundle.digest, bundle)
    expect(put.headers.get('oci-subject')).toBe(idx.digest)
    const res = await api(`/v2/${repo}/referrers/${idx.digest}`)
    expect(await res.json()).toEqual({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [
        {
          mediaType: MT.ociIndex,
          digest: bundle.digest,
          size: bundle.size,
          artifactType: 'application/vnd.example.bundle',
          annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
        },
      ],
    })
  })

  it('an index without artifactType is listed as a referrer without one (an index has no config to fall back on)', async () => {
    const repo = repoName('oci-index')
    const { a } = await twoPlatforms(repo)
    const referrer = await index(MT.ociIndex, [{ built: a, platform: amd64 }], { subject: a.descriptor })
    await push(repo, referrer.digest, referrer)
    const listed = (await (await api(`/v2/${repo}/referrers/${a.digest}`)).json()) as { manifests: Record<string, unknown>[] }
    expect(listed.manifests).toEqual([{ mediaType: MT.ociIndex, digest: referrer.digest, size: referrer.size }])
  })
})
