/** Tag records: push time and size ride in KV metadata, so listing tags tells their age and size. */
import { describe, expect, it } from 'vitest'
import { allTags } from '../../src/storage/tags'
import { bindings, repoName } from '../helpers'
import { build, MT, ociImage, push } from '../manifests/fixtures'
import type { Repo } from '../../src/names'

describe('tag records', () => {
  it('keep when the tag was pushed and the compressed size of the image it names', async () => {
    const repo = repoName('tag-record')
    const image = await ociImage(repo)
    const before = Date.now()
    expect((await push(repo, 'v1', image)).status).toBe(201)
    const doc = image.doc as { config: { size: number }; layers: { size: number }[] }
    const size = image.bytes.byteLength + doc.config.size + doc.layers.reduce((n, l) => n + l.size, 0)
    const tags = []
    for await (const t of allTags(bindings, repo as Repo)) tags.push(t)
    expect(tags).toHaveLength(1)
    expect(tags[0]!.record).toMatchObject({ digest: image.digest, mediaType: image.mediaType, size })
    expect(tags[0]!.record!.pushed).toBeGreaterThanOrEqual(before)
    expect(tags[0]!.record!.pushed).toBeLessThanOrEqual(Date.now())
  })

  it('keep an index\'s platforms for the web UI, cut to fit KV metadata', async () => {
    const repo = repoName('tag-record')
    const child = await ociImage(repo)
    await push(repo, child.digest, child)
    const entry = (platform: Record<string, string>) => ({ ...child.descriptor, platform })
    const small = await build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [
      entry({ os: 'linux', architecture: 'amd64' }), entry({ os: 'linux', architecture: 'arm', variant: 'v7' }), entry({ os: 'linux', architecture: 'amd64' }),
    ] })
    const many = await build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: Array.from({ length: 60 }, (_, i) =>
      entry({ os: 'linux', architecture: `arch${i}`, variant: 'ü'.repeat(20) })) })
    await push(repo, 'small', small)
    await push(repo, 'many', many)
    const records = new Map<string, string | undefined>()
    for await (const t of allTags(bindings, repo as Repo)) records.set(t.tag, t.record?.platforms)
    expect(records.get('small')).toBe('linux/amd64, linux/arm/v7')
    expect(records.get('many')).toMatch(/^linux\/arch0\/ü+, .*…$/)
    expect(records.get('many')!.length).toBeLessThanOrEqual(250)
    expect(records.get(child.digest)).toBeUndefined()
  })
})
