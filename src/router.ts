/**
 * Every route, on one screen. A registry whose settings do not parse answers every path with
 * 500 naming them (src/http/configured.ts). Handlers get the request and a per-request context;
 * every /v2/ route checks its repository name (names.ts `parseRepo`), then passes the proxy
 * layer (src/proxy/layer.ts: local content or a pull-through cache of an upstream; a no-op without
 * UPSTREAMS), the READ_ONLY layer (src/http/read-only.ts), the auth layer (src/auth/layer.ts;
 * a no-op unless AUTH_MODE is "token") and the anonymous pull limit (src/auth/throttle.ts; off by
 * default); /admin/ routes need the admin right.
 * The web UI (src/routes/ui.ts) answers `/`, `/r/…`, `/storage`, `/events`, `/sign-in`, `/sign-out`, `/ui/…`
 * and `/favicon.ico` only: never /v2/ or /token, and any other path still gets the OCI NOT_FOUND JSON.
 * Around it all, the log layer (src/log.ts `observed`): one line per request, X-Request-Id.
 */
import { Router, type IRequest } from 'itty-router'
import * as token from './auth/endpoint'
import { assertConfigured } from './http/configured'
import { assertWritable } from './http/read-only'
import * as admin from './routes/admin'
import { authorize } from './auth/layer'
import { assertMayPullAnonymously } from './auth/throttle'
import { RegistryError, toErrorResponse } from './errors'
import type { Env } from './env'
import { actorOf, contextOf, type Ctx } from './http/context'
import { countedPulls } from './events/layer'
import { annotate, observed } from './log'
import { parseRepo } from './names'
import { proxiedReply, proxyTarget, refuseWrite } from './proxy/layer'
import * as base from './routes/base'
import * as blobs from './routes/blobs'
import * as catalog from './routes/catalog'
import * as health from './routes/health'
import * as manifests from './routes/manifests'
import * as referrers from './routes/referrers'
import * as tags from './routes/tags'
import * as ui from './routes/ui'
import * as uploads from './routes/uploads'

type Handler = (req: IRequest, c: Ctx) => Promise<Response> | Response
const route = (h: Handler) => async (req: IRequest, env: Env, exec: ExecutionContext) => {
  // The repository name first, on every route and through the one parser: an invalid name
  // names nothing, so it is NAME_INVALID before auth, sessions or storage see it.
  if (req.params.name !== undefined) annotate({ repository: parseRepo(req.params.name) })   // as asked, before a proxy renames it
  const proxy = proxyTarget(req, env)                                     // names a proxied repository locally
  if (proxy) annotate({ upstream: proxy.upstream.namespace })
  assertWritable(req, env)                                                // 405 when READ_ONLY
  const auth = await authorize(req, env, proxy?.scopeName)               // 401/403 thrown here
  annotate({ identity: auth?.sub || 'anonymous' })
  if (proxy) refuseWrite(req, proxy)                                      // 405: a proxied repository is read-only
  await assertMayPullAnonymously(req, env, auth)                         // 429 past the anonymous pull limit (off by default)
  const res = await h(req, { ...contextOf(req, env, exec, actorOf(auth)), auth, ...(proxy ? { proxy } : {}) })
  if (proxy?.warning) annotate({ stale: true })
  return proxy ? proxiedReply(res, proxy) : res
}

const routes = Router<IRequest, [Env, ExecutionContext]>({
  before: [assertConfigured],                                             // 500 naming a bad setting, on every path but /_health
  catch: (err, req) => toErrorResponse(err, req.method),
  finally: [withApiVersion],
})
  .get('/_health', health.get)
  .head('/_health', health.get)
  .get('/v2/', route(base.check))
  .get('/v2/_catalog', route(catalog.list))
  .post('/v2/:name+/blobs/uploads/', route(uploads.start))
  .all('/v2/:name+/blobs/uploads/', route(uploads.noSession))
  .all('/v2/:name+/blobs/', route(uploads.noSession))
  .get('/v2/:name+/blobs/uploads/:uuid', route(uploads.status))
  .patch('/v2/:name+/blobs/uploads/:uuid', route(uploads.patch))
  .put('/v2/:name+/blobs/uploads/:uuid', route(uploads.finish))
  .delete('/v2/:name+/blobs/uploads/:uuid', route(uploads.cancel))
  .get('/v2/:name+/blobs/:digest', route(blobs.get))
  .head('/v2/:name+/blobs/:digest', route(blobs.get))
  .delete('/v2/:name+/blobs/:digest', route(blobs.remove))
  .get('/v2/:name+/manifests/:reference', route(countedPulls(manifests.get)))
  .head('/v2/:name+/manifests/:reference', route(manifests.get))
  .put('/v2/:name+/manifests/:reference', route(manifests.put))
  .delete('/v2/:name+/manifests/:reference', route(manifests.remove))
  .get('/v2/:name+/tags/list', route(tags.list))
  .get('/v2/:name+/referrers/:digest', route(referrers.list))
  .get('/token', token.get)
  .post('/token', token.post)
  .get('/', ui.uiPage(ui.repositories))
  .get('/r/:name+/-/manifest/:reference', ui.uiPage(ui.manifest))
  .get('/r/:name+/-/referrers/:digest', ui.uiPage(ui.referrers))
  .get('/r/:name+/-/delete', ui.uiPage(ui.confirmDelete))
  .post('/r/:name+/-/delete', ui.uiPage(ui.remove))
  .get('/r/:name+', ui.uiPage(ui.repository))
  .get('/storage', ui.uiPage(ui.storage))
  .get('/events', ui.uiPage(ui.events))
  .get('/sign-in', ui.uiPage(ui.signInForm))
  .post('/sign-in', ui.uiPage(ui.signInSubmit))
  .post('/sign-out', ui.uiPage(ui.signOut))
  .get('/ui/:file', ui.asset)
  .get('/favicon.ico', ui.favicon)
  .post('/admin/gc', admin.start)
  .get('/admin/gc', admin.list)
  .get('/admin/gc/:id', admin.status)
  .get('/admin/events', admin.events)
  .get('/admin/stats/:name+', admin.stats)
  .all('*', () => {
    throw new RegistryError('NOT_FOUND')
  })

/** The worker's fetch handler: the routes inside the log layer. `routes` is the route table (tests read it). */
export const router = { routes: routes.routes, fetch: observed(routes.fetch) }

/**
 * Every reply says which API it speaks (spec end-1; docker checks it), and has a
 * Content-Type: Cloudflare (and wrangler dev) compress a reply without one for
 * clients sending Accept-Encoding: gzip, dropping its Content-Length.
 */
function withApiVersion(res: Response): Response {
  const out = new Response(res.body, res)
  out.headers.set('Docker-Distribution-API-Version', 'registry/2.0')
  if (!out.headers.has('Content-Type')) out.headers.set('Content-Type', 'text/plain; charset=utf-8')
  return out
}
