/** Docker image manifest v2 schema 2: the handler contract, and foreign layers. */
import { describe, expect, it } from 'vitest'
import { dockerManifest } from '../../src/manifests/docker-v2'
import { repoName } from '../helpers'
import { manifestHandlerContract } from './contract'
import { build, dockerImage, expectError, expectNotStored, expectServes, getManifest, MT, push, putManifest, type Descriptor } from './fixtures'

manifestHandlerContract({
  handler: dockerManifest,
  mediaType: MT.dockerV2,
  kind: 'image',
  required: ['config', 'layers'],
  subject: false,
  async example(repo) {
    const manifest = await dockerImage(repo)
    const { config, layers } = manifest.doc as { config: Descriptor; layers: Descriptor[] }
    return { manifest, blobs: [config.digest, ...layers.map((l) => l.digest)], manifests: [] }
  },
})

const foreignLayer = (digest: string): Descriptor => ({
  mediaType: MT.dockerForeignLayer,
  digest,
  size: 1234567,
  urls: ['https://mcr.microsoft.com/v2/windows/servercore/blobs/' + digest],
})

describe('docker v2 foreign layers', () => {
  it('accepts a foreign layer with urls whose blob was never pushed, and does not list it as a reference', async () => {
    const repo = repoName('docker-v2')
    const base = await dockerImage(repo, { layers: 1 })
    const foreign = foreignLayer('sha256:' + 'f'.repeat(64))
    const doc = { ...base.doc, layers: [foreign, ...(base.doc.layers as Descriptor[])] }
    const m = await build(doc)
    const parsed = await dockerManifest.parse(structuredClone(doc), m.bytes, { repo, tag: 'win' })
    expect(parsed.blobs).not.toContain(foreign.digest)
    expect(parsed.blobs).toHaveLength(2)
    await push(repo, 'win', m)
    await expectServes(await getManifest(repo, 'win'), m)
  })

  it('refuses a layer without urls whose blob was never pushed (MANIFEST_BLOB_UNKNOWN), storing nothing', async () => {
    const repo = repoName('docker-v2')
    const base = await dockerImage(repo, { layers: 1 })
    const { urls: _, ...missing } = foreignLayer('sha256:' + 'e'.repeat(64))
    const m = await build({ ...base.doc, layers: [missing, ...(base.doc.layers as Descriptor[])] })
    await expectError(await putManifest(repo, 'win', m.bytes, MT.dockerV2), 400, 'MANIFEST_BLOB_UNKNOWN')
    await expectNotStored(repo, m.digest, { tag: 'win' })
  })

  it('lists a layer repeated in the manifest once', async () => {
    const repo = repoName('docker-v2')
    const base = await dockerImage(repo, { layers: 1 })
    const [layer] = base.doc.layers as Descriptor[]
    const doc = { ...base.doc, layers: [layer, layer] }
    const parsed = await dockerManifest.parse(doc, new Uint8Array(), { repo, tag: null })
    expect(parsed.blobs).toEqual([(base.doc.config as Descriptor).digest, layer!.digest])
    await push(repo, 'twice', await build(doc))
  })
})
