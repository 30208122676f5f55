/**
 * src/router.ts: every route that names a repository checks the name first, through
 * names.ts `parseRepo`, before auth, sessions or storage. The table is the router's own
 * route list, so a route added later is covered too.
 */
import { describe, expect, it } from 'vitest'
import { router } from '../src/router'
import { authEnv } from './auth/setup'
import { bindings, callWith, listObjects, pushBlob, randomBlob, repoName, startUpload } from './helpers'

/**
 * [method, path] of every API route with `:name+`, from itty-router's route table ([method, regex,
 * handlers, path]). The web UI's /r/<name> pages answer HTML, not OCI JSON (test/routes/ui.test.ts).
 */
const routes = (router.routes as unknown as [string, RegExp, unknown[], string][])
  .filter(([, , , path]) => path.startsWith('/v2/') && path.includes(':name+'))
  // An ALL route (the answers for upload ids URL parsing turned into `.`/`..`) is tried as a GET.
  .map(([method, , , path]) => [method === 'ALL' ? 'GET' : method, path] as const)

/** What a name can look like on the wire that is not a repository name. */
const BAD_NAMES = [
  'a%5Cb',            // a backslash, percent-encoded (a raw one is turned into "/" by URL parsing, see README)
  'team%5Capp/x',
  'A/b',              // upper case
  'a//b',             // empty component
  'a/-b',             // component starting with a separator
  'a%20b',
  '_a/b',
  'a'.repeat(256),    // too long
]

describe('repository names on every route', () => {
  it('covers every /v2/<name>/… route in src/router.ts', () => {
    expect(routes.map(([m, p]) => `${m} ${p}`).sort()).toEqual([
      'DELETE /v2/:name+/blobs/:digest',
      'DELETE /v2/:name+/blobs/uploads/:uuid',
      'DELETE /v2/:name+/manifests/:reference',
      'GET /v2/:name+/blobs',
      'GET /v2/:name+/blobs/:digest',
      'GET /v2/:name+/blobs/uploads',
      'GET /v2/:name+/blobs/uploads/:uuid',
      'GET /v2/:name+/manifests/:reference',
      'GET /v2/:name+/referrers/:digest',
      'GET /v2/:name+/tags/list',
      'HEAD /v2/:name+/blobs/:digest',
      'HEAD /v2/:name+/manifests/:reference',
      'PATCH /v2/:name+/blobs/uploads/:uuid',
      'POST /v2/:name+/blobs/uploads',
      'PUT /v2/:name+/blobs/uploads/:uuid',
      'PUT /v2/:name+/manifests/:reference',
    ])
  })

  it('answers 400 NAME_INVALID for a backslash or any invalid name, on every route, writing nothing', async () => {
    const good = repoName('names')
    const digest = await pushBlob(good, randomBlob(64))
    const session = new URL(await startUpload(good), 'http://x')
    const uuid = session.pathname.split('/').pop()!
    const before = (await listObjects()).length
    for (const [method, template] of routes) {
      for (const name of BAD_NAMES) {
        const path = template
          .replace(':name+', name)
          .replace(':uuid', `${uuid}${session.search}`)
          .replace(':digest', digest)
          .replace(':reference', 'latest')
        const query = method === 'POST' ? `?mount=${digest}&from=${good}` : ''
        const body = method === 'GET' || method === 'HEAD' || method === 'DELETE' ? undefined : '{}'
        const res = await callWith({}, path + query, { method, body })
        const what = `${method} ${path}`
        expect(res.status, what).toBe(400)
        if (method !== 'HEAD') expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, what).toBe('NAME_INVALID')
      }
    }
    expect((await listObjects()).length).toBe(before)
  })

  it('answers NAME_INVALID before auth: no challenge for a name that can name nothing', async () => {
    const e = await authEnv()
    for (const [method, template] of routes) {
      const path = template.replace(':name+', 'a%5Cb').replace(':uuid', 'x').replace(':digest', `sha256:${'a'.repeat(64)}`).replace(':reference', 'latest')
      const res = await callWith(e, path, { method })
      expect(res.status, `${method} ${path}`).toBe(400)
      expect(res.headers.get('www-authenticate')).toBeNull()
    }
  })

  it('a raw backslash cannot reach the worker: URL parsing makes it "/" (WHATWG URL, as Cloudflare\'s edge does)', () => {
    expect(new URL('http://registry.test/v2/a\\b/blobs/uploads/').pathname).toBe('/v2/a/b/blobs/uploads/')
    void bindings
  })
})
