/** What every route gets besides the request: bindings, settings, the execution context. */
import type { IRequest } from 'itty-router'
import { settings, type Env, type Settings } from '../env'
import type { LinkContext } from '../storage/links'

export interface Ctx extends LinkContext {
  env: Env
  settings: Settings
}

export function contextOf(req: IRequest, env: Env, exec: ExecutionContext): Ctx {
  const s = settings(env)
  return {
    env,
    settings: s,
    origin: new URL(req.url).origin,
    ttl: s.linkCacheSeconds,
    waitUntil: (p) => exec.waitUntil(p.catch((err) => console.error('background work failed', err))),
  }
}
