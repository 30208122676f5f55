/**
 * Every route, on one screen. Handlers get the request and a per-request context;
 * every /v2/ route passes the auth layer first (src/auth/layer.ts; a no-op unless AUTH_MODE is "token").
 */
import { Router, type IRequest } from 'itty-router'
import * as token from './auth/endpoint'
import { authorize } from './auth/layer'
import { RegistryError, toErrorResponse } from './errors'
import type { Env } from './env'
import { contextOf, type Ctx } from './http/context'
import * as base from './routes/base'
import * as blobs from './routes/blobs'
import * as catalog from './routes/catalog'
import * as manifests from './routes/manifests'
import * as referrers from './routes/referrers'
import * as tags from './routes/tags'
import * as uploads from './routes/uploads'

type Handler = (req: IRequest, c: Ctx) => Promise<Response> | Response
const route = (h: Handler) => async (req: IRequest, env: Env, exec: ExecutionContext) => {
  const auth = await authorize(req, env)                                  // 401/403 thrown here
  return h(req, { ...contextOf(req, env, exec), auth })
}

export const router = Router<IRequest, [Env, ExecutionContext]>({
  catch: (err, req) => toErrorResponse(err, req.method),
  finally: [withApiVersion],
})
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
  .get('/v2/:name+/manifests/:reference', route(manifests.get))
  .head('/v2/:name+/manifests/:reference', route(manifests.get))
  .put('/v2/:name+/manifests/:reference', route(manifests.put))
  .delete('/v2/:name+/manifests/:reference', route(manifests.remove))
  .get('/v2/:name+/tags/list', route(tags.list))
  .get('/v2/:name+/referrers/:digest', route(referrers.list))
  .get('/token', token.get)
  .post('/token', token.post)
  .all('*', () => {
    throw new RegistryError('NOT_FOUND')
  })

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
