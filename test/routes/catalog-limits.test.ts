/**
 * A catalog filtered by what the caller may see reads a bounded number of R2 list pages a request
 * (issue 20), for GET /v2/_catalog (a caller without the catalog right) and the web UI's
 * Repositories page (its name filter): past the budget the page ends short with a Link that
 * resumes where reading stopped, the name there sealed (it may be one the caller may not see).
 *
 * R2 lists here give pages of 100 prefixes instead of 1,000, so that 1,050 repositories cross
 * the same page budget (CATALOG_SCAN_PAGES) that 10,050 would.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { Meter, meteredKV, meteredR2 } from '../../bench/cost/meter'
import type { Env } from '../../src/env'
import type { Digest, Repo } from '../../src/names'
import { CATALOG_SCAN_PAGES } from '../../src/routes/catalog'
import { putManifest } from '../../src/storage/manifests'
import { authEnv, basic, bearer, PASSWORDS, send, tokenFor } from '../auth/setup'
import { bindings } from '../helpers'
import { inBatches } from '../manifests/fixtures'

const PAGE = 100
const run = `c${Date.now().toString(36)}`
const hidden = Array.from({ length: CATALOG_SCAN_PAGES * PAGE + 50 }, (_, i) => `${run}/hidden${String(i).padStart(5, '0')}`)
// Sorts after every hidden one: "team-a/" > "cXXXX/".
const visible = `team-a/${run}-last`

const smallPages = new Proxy(bindings.BLOBS, {
  get(target, prop) {
    const value = Reflect.get(target, prop)
    if (prop === 'list') return (o: R2ListOptions = {}) => target.list({ ...o, limit: Math.min(o.limit ?? 1000, PAGE) })
    return typeof value === 'function' ? value.bind(target) : value
  },
})

function metered(env: Env, path: string, init?: RequestInit) {
  const meter = new Meter()
  return send({ ...env, BLOBS: meteredR2(meter, smallPages), LINKS: meteredKV(meter, env.LINKS) }, path, init).then((res) => ({ res, calls: meter.counts }))
}

const nextOf = (res: Response) => {
  const link = res.headers.get('link')
  return link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null
}

beforeAll(async () => {
  const bytes = new TextEncoder().encode('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}')
  const digest = `sha256:${'0'.repeat(64)}` as Digest
  await inBatches([...hidden, visible], 100, (name) => putManifest(bindings, name as Repo, digest, bytes, 'application/vnd.oci.image.index.v1+json', null))
}, 120_000)

/**
 * Rita may pull one name, through a pattern that starts with `*`: it names no prefix to list
 * under (auth/rules.ts pullPrefixes), so the whole catalog is scanned and filtered, the case
 * the page budget bounds. (A pattern with a literal prefix is listed under it: catalog.test.ts.)
 */
const unprefixed = () => authEnv({ AUTH_RULES: JSON.stringify([{ repos: `*${run}-last`, users: ['rita'], actions: ['pull'] }]) })

describe('a filtered catalog', () => {
  it(`reads at most ${CATALOG_SCAN_PAGES} R2 lists a request and reaches the one repository rita may pull, hidden names never shown`, async () => {
    const env = await unprefixed()
    const token = await tokenFor(env, basic('rita', PASSWORDS.rita), 'registry:catalog:*')
    let next: string | null = `/v2/_catalog?n=10&last=${run}`
    const seen: string[] = []
    let requests = 0
    while (next && requests++ < 5) {
      const { res, calls } = await metered(env, next, { headers: { Authorization: bearer(token) } })
      expect(res.status).toBe(200)
      expect(calls['r2.list']).toBeLessThanOrEqual(CATALOG_SCAN_PAGES)
      seen.push(...((await res.json()) as { repositories: string[] }).repositories)
      next = nextOf(res)
      if (next) expect(decodeURIComponent(next)).not.toContain('hidden')
    }
    expect(seen).toContain(visible)
    expect(seen.some((n) => n.includes('hidden'))).toBe(false)
  })

  it('ignores a resume token that was altered', async () => {
    const env = await unprefixed()
    const token = await tokenFor(env, basic('rita', PASSWORDS.rita), 'registry:catalog:*')
    const { res } = await metered(env, `/v2/_catalog?n=10&last=${run}`, { headers: { Authorization: bearer(token) } })
    const next = nextOf(res)!
    const altered = next.replace(/resume=([A-Za-z0-9_-])/, (_m, c: string) => `resume=${c === 'A' ? 'B' : 'A'}`)
    const again = await metered(env, altered, { headers: { Authorization: bearer(token) } })
    expect(again.res.status).toBe(200)
    // Read from `last` again, as if there were no token: the same short page.
    expect(((await again.res.json()) as { repositories: string[] }).repositories).toEqual([])
  })
})

describe('the web UI\'s Repositories page, filtered by name', () => {
  it(`scans at most ${CATALOG_SCAN_PAGES} R2 list pages a page and its next link resumes there`, async () => {
    const q = `${run}-last`
    let next: string | null = `/?q=${encodeURIComponent(q)}`
    let found = false
    for (let i = 0; i < 5 && next && !found; i++) {
      const { res, calls } = await metered(bindings, next)
      const html = await res.text()
      expect(calls['r2.list']).toBeLessThanOrEqual(CATALOG_SCAN_PAGES)
      found = html.includes(`>${visible}</a>`)
      const link = /<a href="([^"]+)" rel="next">/.exec(html)
      next = link ? link[1]!.replaceAll('&amp;', '&') : null
    }
    expect(found).toBe(true)
  })
})
