/**
 * A repository with more tags than one request reads (issue 20): the tags API, the web UI's tag
 * pages and the Repositories page each read a bounded number of KV list pages, and the DELETE of
 * a manifest all those tags name hands them to the untag Workflow.
 *
 * KV lists here give pages of 100 keys instead of 1,000 (KV may give fewer than asked), so that
 * a repository ten times smaller crosses the same page budgets: the bounds count pages.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { introspectWorkflow } from 'cloudflare:test'
import { Meter, meteredKV, meteredR2 } from '../../bench/cost/meter'
import type { Env } from '../../src/env'
import type { Digest, Repo, Tag } from '../../src/names'
import { TAG_LIST_PAGES } from '../../src/routes/tags'
import { UNTAG_SCAN_PAGES } from '../../src/routes/manifests'
import { writeTag } from '../../src/storage/tags'
import { bindings, repoName } from '../helpers'
import { api, build, getManifest, inBatches, MT, push, tagsOf, type Built } from '../manifests/fixtures'

const PAGE = 100
const COUNT = TAG_LIST_PAGES * PAGE + 50
const tagName = (i: number) => `t${String(i).padStart(5, '0')}`
const repo = repoName('manytags')
let m: Built

/** KV whose lists give at most PAGE keys a page. */
const smallPages = new Proxy(bindings.LINKS, {
  get(target, prop) {
    const value = Reflect.get(target, prop)
    if (prop === 'list') return (o: KVNamespaceListOptions = {}) => target.list({ ...o, limit: Math.min(o.limit ?? 1000, PAGE) })
    return typeof value === 'function' ? value.bind(target) : value
  },
})

async function metered(path: string, init?: RequestInit) {
  const meter = new Meter()
  const res = await api(path, init, { BLOBS: meteredR2(meter, bindings.BLOBS), LINKS: meteredKV(meter, smallPages) })
  return { res, calls: meter.counts }
}

const linkOf = (res: Response) => {
  const link = res.headers.get('link')
  return link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null
}

beforeAll(async () => {
  m = await build({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [], annotations: { note: 'many tags' } })
  await push(repo, m.digest, m)
  // Written straight to KV as pushes would write them (faster than 1,050 pushes).
  await inBatches(Array.from({ length: COUNT }, (_, i) => tagName(i)), 200, (tag) =>
    writeTag(bindings, repo as Repo, tag as Tag, { digest: m.digest as Digest, mediaType: m.mediaType, size: m.size }, m.bytes))
}, 120_000)

describe(`tags list of ${COUNT} tags`, () => {
  it('follows Links page by page at 1-2 KV lists each, whatever the page\'s depth', async () => {
    let next: string | null = `/v2/${repo}/tags/list?n=${PAGE}`
    const seen: string[] = []
    while (next) {
      const { res, calls } = await metered(next)
      expect(res.status).toBe(200)
      expect(calls['kv.list']).toBeLessThanOrEqual(2)
      seen.push(...((await res.json()) as { tags: string[] }).tags)
      next = linkOf(res)
    }
    expect(seen).toEqual(Array.from({ length: COUNT }, (_, i) => tagName(i)))
  })

  it(`reads at most ${TAG_LIST_PAGES} KV lists for a client's own last deep in the list, and its Link resumes there`, async () => {
    const last = tagName(COUNT - 20)
    const { res, calls } = await metered(`/v2/${repo}/tags/list?n=10&last=${last}`)
    expect(calls['kv.list']).toBe(TAG_LIST_PAGES)
    const first = (await res.json()) as { tags: string[] }
    // The pages it may read end before `last`: fewer tags than n (none), and a Link that resumes.
    expect(first.tags).toEqual([])
    const again = await metered(linkOf(res)!)
    expect(again.calls['kv.list']).toBe(1)
    expect(((await again.res.json()) as { tags: string[] }).tags).toEqual(Array.from({ length: 10 }, (_, i) => tagName(COUNT - 19 + i)))
  })
})

describe(`the web UI for ${COUNT} tags`, () => {
  it('lists a repository of more tags than it sorts (5 KV list pages) by name, 50 a page, at most 5 KV lists a page', async () => {
    const { res, calls } = await metered(`/r/${repo}`)
    const html = await res.text()
    expect(res.status).toBe(200)
    expect(calls['kv.list']).toBe(5)
    expect(html).toContain('they are listed by name, a page at a time')
    expect(html.match(/<td><a href="\/r\/[^"]+\/-\/manifest\/t\d+">/g)).toHaveLength(50)
    let next = /<a href="([^"]+)" rel="next">/.exec(html)![1]!.replaceAll('&amp;', '&')
    for (let page = 2; page <= 3; page++) {
      const more = await metered(next)
      const text = await more.res.text()
      expect(more.calls['kv.list']).toBeLessThanOrEqual(5)
      expect(text).toContain(`/-/manifest/${tagName((page - 1) * 50)}"`)
      next = /<a href="([^"]+)" rel="next">/.exec(text)![1]!.replaceAll('&amp;', '&')
    }
  })

  it('counts the first page of a repository\'s tags on the Repositories page (at most 2 KV lists: links, then tags), shown as "<n>+"', async () => {
    const { res, calls } = await metered(`/?q=${encodeURIComponent(repo)}`)
    const html = await res.text()
    expect(calls['kv.list']).toBeLessThanOrEqual(2)
    expect(html).toContain(`<td class="num">${PAGE}+</td>`)
  })
})

describe(`DELETE by digest of a manifest ${COUNT} tags name`, () => {
  it(`reads ${UNTAG_SCAN_PAGES} KV list pages, answers 202 and leaves the rest to the untag Workflow`, async () => {
    const workflows = await introspectWorkflow((bindings as Env).UNTAG_WORKFLOW!)
    try {
      const { res, calls } = await metered(`/v2/${repo}/manifests/${m.digest}`, { method: 'DELETE' })
      expect(res.status).toBe(202)
      expect(calls).toEqual({ 'r2.head': 1, 'kv.list': UNTAG_SCAN_PAGES })
      await workflows.get()[0]!.waitForStatus('complete')
    } finally {
      await workflows.dispose()
    }
    expect(await tagsOf(repo)).toEqual([])
    expect((await getManifest(repo, m.digest)).status).toBe(404)
  }, 120_000)
})
