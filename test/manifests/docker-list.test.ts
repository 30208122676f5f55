/** Docker manifest list: the handler contract over a two-platform list whose children were pushed by digest. */
import { describe, expect, it } from 'vitest'
import { dockerManifestList } from '../../src/manifests/docker-list'
import { repoName } from '../helpers'
import { manifestHandlerContract } from './contract'
import { dockerImage, expectServes, getManifest, index, MT, push } from './fixtures'

const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' }

async function twoPlatforms(repo: string) {
  const [a, b] = await Promise.all([dockerImage(repo, { platform: amd64 }), dockerImage(repo, { platform: arm64 })])
  await push(repo, a.digest, a)
  await push(repo, b.digest, b)
  return { a, b, list: await index(MT.dockerList, [{ built: a, platform: amd64 }, { built: b, platform: arm64 }]) }
}

manifestHandlerContract({
  handler: dockerManifestList,
  mediaType: MT.dockerList,
  kind: 'index',
  required: ['manifests'],
  subject: false,
  async example(repo) {
    const { a, b, list } = await twoPlatforms(repo)
    return { manifest: list, blobs: [], manifests: [a.digest, b.digest] }
  },
})

describe('docker manifest list', () => {
  it('keeps each entry with its platform', async () => {
    const repo = repoName('docker-list')
    const { a, b, list } = await twoPlatforms(repo)
    const parsed = await dockerManifestList.parse(list.doc, list.bytes, { repo, tag: null })
    expect(parsed.manifests).toEqual([
      { ...a.descriptor, platform: amd64 },
      { ...b.descriptor, platform: arm64 },
    ])
    await push(repo, 'multi', list)
    await expectServes(await getManifest(repo, 'multi'), list)
  })
})
