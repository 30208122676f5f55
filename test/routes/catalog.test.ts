/**
 * GET /v2/_catalog: repositories that hold manifests, in lexical order, paginated
 * like tags. Other tests' repositories share the catalog, so each test uses a
 * name prefix of its own and looks at its own subset (starting with last=<prefix>).
 */
import { describe, expect, it } from 'vitest'
import { api, build, expectError, inBatches, MT, push } from '../manifests/fixtures'

interface Catalog {
  repositories: string[]
}

let unique = 0
/** A top-level name no other test uses. */
const prefix = () => `catalog${Date.now().toString(36)}x${(unique++).toString(36)}`

/** Gives `repo` content: one manifest that needs no blobs. */
async function populate(repo: string): Promise<string> {
  const m = await build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [], annotations: { repo } })
  await push(repo, 'latest', m)
  return m.digest
}

const nextOf = (link: string | null): string | null => (link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null)

describe('catalog', () => {
  it('pages across boundaries following Link exactly, starting after last (exclusive), in lexical order', async () => {
    const p = prefix()
    const names = Array.from({ length: 7 }, (_, i) => `${p}/${String.fromCharCode(97 + i)}`) // p/a … p/g
    await inBatches([...names].reverse(), 4, populate)

    // `last=p` sorts before every p/… name.
    const pages: string[][] = []
    const links: (string | null)[] = []
    let next: string | null = `/v2/_catalog?n=3&last=${p}`
    while (next && pages.length < 3) {
      const res = await api(next)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      pages.push(((await res.json()) as Catalog).repositories)
      links.push(res.headers.get('link'))
      next = nextOf(res.headers.get('link'))
    }
    expect(pages[0]).toEqual(names.slice(0, 3))
    expect(pages[1]).toEqual(names.slice(3, 6))
    expect(pages[2]![0]).toBe(names[6])
    expect(pages[2]!.filter((r) => r.startsWith(`${p}/`))).toEqual([names[6]])
    expect(links[0]).toBe(`</v2/_catalog?n=3&last=${encodeURIComponent(names[2]!)}>; rel="next"`)
    expect(links[1]).toBe(`</v2/_catalog?n=3&last=${encodeURIComponent(names[5]!)}>; rel="next"`)
  })

  it('lists the whole catalog in lexical order without n, each repository once', async () => {
    const p = prefix()
    const names = [`${p}/zeta`, `${p}/alpha`, `${p}/alpha/nested`, `${p}/mid/deep/er`, `${p}/b0`]
    await inBatches(names, 5, populate)
    const all = ((await (await api('/v2/_catalog')).json()) as Catalog).repositories
    expect(all).toEqual([...new Set(all)])
    expect(all.filter((r) => r.startsWith(`${p}/`))).toEqual([...names].sort())
  })

  /** Names where one extends another with "-", "." or "/": lexically "a" < "a-b" < "a.b" < "a/b" < "a0" < "a_b". */
  const tricky = (p: string) => [`${p}/a`, `${p}/a-b`, `${p}/a.b`, `${p}/a/b`, `${p}/a0`, `${p}/a_b`]

  it('pages n=1 over names that extend one another without losing or repeating any', async () => {
    const p = prefix()
    const names = tricky(p)
    await inBatches(names, 6, populate)
    const paged: string[] = []
    let next: string | null = `/v2/_catalog?n=1&last=${p}`
    for (let i = 0; next && i <= names.length; i++) {
      const res = await api(next)
      paged.push(...((await res.json()) as Catalog).repositories)
      next = nextOf(res.headers.get('link'))
    }
    expect(paged.filter((r) => r.startsWith(`${p}/`)).sort()).toEqual([...names].sort())
    expect(new Set(paged).size).toBe(paged.length)
  })

  // Keys end a name with "+", which sorts before every character a name may hold, so R2's
  // key order is the lexical order of names even where one name extends another.
  it('sorts names that extend another name with "-" or "." lexically', async () => {
    const p = prefix()
    const names = tricky(p)
    await inBatches(names, 6, populate)
    const all = ((await (await api('/v2/_catalog')).json()) as Catalog).repositories
    expect(all.filter((r) => r.startsWith(`${p}/`))).toEqual([...names].sort())
  })

  it('answers n=0 with an empty list and no Link', async () => {
    const p = prefix()
    await populate(`${p}/one`)
    const res = await api('/v2/_catalog?n=0')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ repositories: [] })
    expect(res.headers.get('link')).toBeNull()
  })

  it('answers 200 with no Link on the last page, and an empty list after the last repository', async () => {
    const res = await api('/v2/_catalog?n=5&last=zzzzzzzz')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ repositories: [] })
    expect(res.headers.get('link')).toBeNull()
  })

  it.each(['-1', 'abc', '2.5', '1e3'])('refuses n=%s with 400 PAGINATION_NUMBER_INVALID', async (n) => {
    await expectError(await api(`/v2/_catalog?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID')
  })

  it('drops a repository once its only manifest is deleted', async () => {
    const p = prefix()
    const repo = `${p}/gone`
    const digest = await populate(repo)
    const before = ((await (await api(`/v2/_catalog?last=${p}&n=1`)).json()) as Catalog).repositories
    expect(before).toEqual([repo])
    expect((await api(`/v2/${repo}/manifests/${digest}`, { method: 'DELETE' })).status).toBe(202)
    const after = ((await (await api(`/v2/_catalog?last=${p}`)).json()) as Catalog).repositories
    expect(after).not.toContain(repo)
  })
})
