/** What every route gets besides the request: bindings, settings, the execution context. */
import type { IRequest } from 'itty-router'
import type { Access } from '../auth/access'
import type { ProxyTarget } from '../proxy/config'
import type { Env } from '../env'
import { requestInfo, type Origin } from '../events/event'
import { observedStore, type Store } from '../events/layer'
import { errorFields, logEvent, requestId as currentRequestId } from '../log'
import { notificationSettings, settings, type Settings } from '../settings'
import type { LinkContext } from '../storage/links'

export interface Ctx extends LinkContext {
  env: Env
  settings: Settings
  /** The request's id (`cf-ray`, or made up locally): its log line's, its reply's X-Request-Id (src/log.ts) and its events' `request.id`. */
  requestId: string
  /** Who the request's changes are reported as (events). */
  from: Origin
  /** The visible changes (manifests, tags, blob links), reported as events (src/events/layer.ts). */
  store: Store
  /** The caller's rights, set by the auth layer; absent when auth is off (everything allowed). */
  auth?: Access
  /** Set when the repository is a pull-through cache of an upstream (src/proxy/layer.ts). */
  proxy?: ProxyTarget
}

/**
 * The context of a request whose caller is `actor` (the signed-in identity; `anonymous`).
 * CPU only. The events settings are checked here, so a bad one fails every request (closed).
 */
export function contextOf(req: IRequest, env: Env, exec: ExecutionContext, actor = 'anonymous'): Ctx {
  const s = settings(env)
  notificationSettings(env)
  const url = new URL(req.url)
  const requestId = currentRequestId() ?? req.headers.get('cf-ray') ?? crypto.randomUUID()
  const links: LinkContext = {
    origin: url.origin,
    ttl: s.LINK_CACHE_SECONDS,
    waitUntil: (p) => exec.waitUntil(p.catch((err) => logEvent('error', { event: 'background.failed', ...errorFields(err) }))),
  }
  const from: Origin = { actor, request: requestInfo(req, requestId), origin: url.origin }
  return { env, settings: s, ...links, requestId, from, store: observedStore(env, links, from) }
}

/** The actor name of a caller: its identity, `anonymous` when it has none (or auth is off). */
export const actorOf = (auth: Access | undefined): string => auth?.sub || 'anonymous'
