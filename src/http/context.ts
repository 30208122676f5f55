/** What every route gets besides the request: bindings, settings, the execution context. */
import type { IRequest } from 'itty-router'
import type { Access } from '../auth/access'
import type { ProxyTarget } from '../proxy/config'
import type { Env } from '../env'
import { errorFields, logEvent, requestId } from '../log'
import { settings, type Settings } from '../settings'
import type { LinkContext } from '../storage/links'

export interface Ctx extends LinkContext {
  env: Env
  settings: Settings
  /** The request's id (`cf-ray`, or made up locally): its log line's and its reply's X-Request-Id (src/log.ts). */
  requestId: string
  /** The caller's rights, set by the auth layer; absent when auth is off (everything allowed). */
  auth?: Access
  /** Set when the repository is a pull-through cache of an upstream (src/proxy/layer.ts). */
  proxy?: ProxyTarget
}

export function contextOf(req: IRequest, env: Env, exec: ExecutionContext): Ctx {
  const s = settings(env)
  return {
    env,
    settings: s,
    requestId: requestId() ?? 'none',
    origin: new URL(req.url).origin,
    ttl: s.LINK_CACHE_SECONDS,
    waitUntil: (p) => exec.waitUntil(p.catch((err) => logEvent('error', { event: 'background.failed', ...errorFields(err) }))),
  }
}
