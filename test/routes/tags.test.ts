/** GET /v2/<name>/tags/list: lexical order, n/last pagination with Link, the cap on n. */
import { beforeAll, describe, expect, it } from 'vitest'
import { MAX_PAGE } from '../../src/http/pagination'
import { repoName } from '../helpers'
import {
  api,
  build,
  expectError,
  inBatches,
  MT,
  push,
  putManifest,
  type Built,
} from '../manifests/fixtures'

interface TagList {
  name: string
  tags: string[]
}

/** An index with no children: a valid manifest that needs no blobs. */
const emptyIndex = (note = 'x'): Promise<Built> =>
  build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [], annotations: { note } })

/** Tags that exercise byte order: upper before lower case, digits, ".", "-", "_", prefixes. */
function tagNames(count: number): string[] {
  const shapes = [(i: number) => `v${i}`, (i: number) => `V${i}`, (i: number) => `${i}`, (i: number) => `_${i}`, (i: number) => `a.${i}`, (i: number) => `a-${i}`, (i: number) => `a_${i}`, (i: number) => `rc${i}.x`]
  return Array.from({ length: count }, (_, i) => shapes[i % shapes.length]!(i))
}

/** Tags every `tags` on `m` through the API, 25 PUTs at a time, in shuffled order. */
async function tagAll(repo: string, m: Built, tags: string[]): Promise<void> {
  const shuffled = [...tags].sort(() => Math.random() - 0.5)
  await inBatches(shuffled, 25, async (tag) => {
    const res = await putManifest(repo, tag, m.bytes, m.mediaType)
    if (res.status !== 201) throw new Error(`PUT ${tag}: ${res.status} ${await res.text()}`)
  })
}

const list = (repo: string, query = '') => api(`/v2/${repo}/tags/list${query}`)

describe('tags list pagination over 250 tags', () => {
  const repo = repoName('tags')
  const all = tagNames(250)
  const sorted = [...all].sort()

  beforeAll(async () => {
    await tagAll(repo, await emptyIndex(), all)
  })

  it('lists every tag in lexical (byte) order without n, with no Link', async () => {
    const res = await list(repo)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(res.headers.get('link')).toBeNull()
    expect(await res.json()).toEqual({ name: repo, tags: sorted })
  })

  it('pages 100/100/50 with n=100, following the Link headers exactly', async () => {
    const pages: string[][] = []
    const links: (string | null)[] = []
    let next: string | null = `/v2/${repo}/tags/list?n=100`
    while (next) {
      const res = await api(next)
      expect(res.status).toBe(200)
      const body = (await res.json()) as TagList
      expect(body.name).toBe(repo)
      pages.push(body.tags)
      const link = res.headers.get('link')
      links.push(link)
      next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null
      expect(pages.length).toBeLessThanOrEqual(3)
    }
    expect(pages.map((p) => p.length)).toEqual([100, 100, 50])
    expect(pages.flat()).toEqual(sorted)
    expect(links).toEqual([
      `</v2/${repo}/tags/list?n=100&last=${encodeURIComponent(sorted[99]!)}>; rel="next"`,
      `</v2/${repo}/tags/list?n=100&last=${encodeURIComponent(sorted[199]!)}>; rel="next"`,
      null,
    ])
  })

  it('treats last as exclusive, also when last is not a tag', async () => {
    let body = (await (await list(repo, `?n=5&last=${encodeURIComponent(sorted[9]!)}`)).json()) as TagList
    expect(body.tags).toEqual(sorted.slice(10, 15))
    // "v1" sorts after "v0"-prefixed tags and is not itself a tag: the page starts after it.
    expect(all).not.toContain('v')
    body = (await (await list(repo, '?n=3&last=v')).json()) as TagList
    expect(body.tags).toEqual(sorted.filter((t) => t > 'v').slice(0, 3))
  })

  it('gives the last page without Link when exactly n remain', async () => {
    const res = await list(repo, `?n=10&last=${encodeURIComponent(sorted[239]!)}`)
    expect(((await res.json()) as TagList).tags).toEqual(sorted.slice(240))
    expect(res.headers.get('link')).toBeNull()
  })

  it('answers an empty list (200, no Link) after the last tag', async () => {
    const res = await list(repo, `?n=10&last=${encodeURIComponent(sorted[249]!)}`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ name: repo, tags: [] })
    expect(res.headers.get('link')).toBeNull()
  })

  it('answers n=0 with an empty list and no Link', async () => {
    const res = await list(repo, '?n=0')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ name: repo, tags: [] })
    expect(res.headers.get('link')).toBeNull()
  })

  it(`clamps n above the cap (${MAX_PAGE}) instead of refusing it`, async () => {
    const res = await list(repo, `?n=${MAX_PAGE * 5}`)
    expect(res.status).toBe(200)
    expect(((await res.json()) as TagList).tags).toEqual(sorted)
    expect(res.headers.get('link')).toBeNull()
  })

  it.each(['-1', 'abc', '1.5', '1e2', '0x10', ' 5', '99999999999999999999'])('refuses n=%s with 400 PAGINATION_NUMBER_INVALID', async (n) => {
    await expectError(await list(repo, `?n=${encodeURIComponent(n)}`), 400, 'PAGINATION_NUMBER_INVALID')
  })
})

describe('tags list', () => {
  it(`clamps n to ${MAX_PAGE} when more tags than that exist, with a Link to the rest`, async () => {
    const repo = repoName('tags-cap')
    const m = await emptyIndex()
    const tags = Array.from({ length: MAX_PAGE + 1 }, (_, i) => `t${String(i).padStart(4, '0')}`)
    await tagAll(repo, m, tags)
    const res = await list(repo, `?n=${MAX_PAGE + 500}`)
    const body = (await res.json()) as TagList
    expect(body.tags).toEqual(tags.slice(0, MAX_PAGE))
    // The Link also carries where KV resumes reading (cursor=, opaque): the next page costs one list.
    expect(res.headers.get('link')).toMatch(new RegExp(`^</v2/${repo}/tags/list\\?n=${MAX_PAGE}&last=${tags[MAX_PAGE - 1]}&cursor=[^>]+>; rel="next"$`))
    const rest = (await (await api(/^<([^>]+)>/.exec(res.headers.get('link')!)![1]!)).json()) as TagList
    expect(rest.tags).toEqual([tags[MAX_PAGE]])
  })

  it('answers 404 NAME_UNKNOWN for a repository that was never pushed', async () => {
    await expectError(await list(repoName('tags-none')), 404, 'NAME_UNKNOWN')
  })

  it('lists a moved tag once, and a repository whose tags were all deleted as an empty list', async () => {
    const repo = repoName('tags')
    const [a, b] = await Promise.all([emptyIndex('a'), emptyIndex('b')])
    await push(repo, 'latest', a)
    await push(repo, 'latest', b)
    expect(await (await list(repo)).json()).toEqual({ name: repo, tags: ['latest'] })
    expect((await api(`/v2/${repo}/manifests/latest`, { method: 'DELETE' })).status).toBe(202)
    const res = await list(repo)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ name: repo, tags: [] })
  })
})
