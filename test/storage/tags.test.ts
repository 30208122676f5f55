/** Tag records: push time and size ride in KV metadata, so listing tags tells their age and size. */
import { describe, expect, it } from 'vitest'
import { allTags } from '../../src/storage/tags'
import { bindings, repoName } from '../helpers'
import { ociImage, push } from '../manifests/fixtures'
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
})
