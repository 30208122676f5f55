/**
 * An event, as distribution's notifications shape it (notifications/event.go): one thing that
 * happened to one repository, who did it and through which request. The same object is the
 * `data` of a CloudEvent (formats.ts).
 */
import type { EventAction } from '../settings/events'

export interface EventTarget {
  repository: string
  mediaType?: string
  digest?: string
  /** Bytes of the manifest or blob (distribution sends both `size` and `length`). */
  size?: number
  length?: number
  /** A mount's source repository. */
  fromRepository?: string
  /** Where to fetch it (absent for the collector's deletes: they have no request host). */
  url?: string
  tag?: string
  /** A manifest delete: the tags that named it and went with it (at most MAX_TAGS_LISTED). */
  tags?: string[]
}

/** The request that caused the event (distribution's `request`); absent for the collector. */
export interface RequestInfo {
  id: string
  addr: string
  host: string
  method: string
  useragent: string
}

export interface RegistryEvent {
  id: string
  /** RFC 3339, when the change was stored. */
  timestamp: string
  action: EventAction
  target: EventTarget
  request?: RequestInfo
  /** The signed-in identity (`alice`, `robot:ci`, `oidc:github:<sub>`), `anonymous`, `gc` or `proxy`. */
  actor: { name: string }
  /** This registry: its host as the request named it, and the isolate that sent the event. */
  source: { addr?: string; instanceID: string }
}

/** Who and what an event comes from: a request's caller, the collector, a cache fill. */
export interface Origin {
  actor: string
  request: RequestInfo | null
  /** `https://host`: event URLs and `source.addr`; null for the collector. */
  origin: string | null
}

/** A manifest delete lists at most this many of its tags (a message holds 128 KB). */
export const MAX_TAGS_LISTED = 1000

let instance: string | null = null
/** One id per isolate (distribution: per process), made on first use: random values are not allowed at startup. */
const instanceId = (): string => (instance ??= crypto.randomUUID())

/** A new event of `action` on `target`, now. */
export function newEvent(from: Origin, action: EventAction, target: EventTarget): RegistryEvent {
  const out: RegistryEvent = {
    id: crypto.randomUUID(),
    timestamp: new Date().toISOString(),
    action,
    target: { ...target, ...(from.origin && target.digest ? { url: targetUrl(from.origin, target) } : {}) },
    actor: { name: from.actor },
    source: { ...(from.origin ? { addr: new URL(from.origin).host } : {}), instanceID: instanceId() },
  }
  if (target.tags && target.tags.length > MAX_TAGS_LISTED) out.target.tags = target.tags.slice(0, MAX_TAGS_LISTED)
  if (from.request) out.request = from.request
  return out
}

function targetUrl(origin: string, t: EventTarget): string {
  const kind = t.mediaType === BLOB_MEDIA_TYPE ? 'blobs' : 'manifests'
  return `${origin}/v2/${t.repository}/${kind}/${t.digest}`
}

/** A blob's media type in its events: the registry does not know what a blob is (distribution says the same). */
export const BLOB_MEDIA_TYPE = 'application/octet-stream'

/** The request fields of an event (`id` is the request id: cf-ray, or one made locally). */
export function requestInfo(req: Request, id: string): RequestInfo {
  return {
    id,
    addr: req.headers.get('cf-connecting-ip') ?? '',
    host: new URL(req.url).host,
    method: req.method,
    useragent: (req.headers.get('user-agent') ?? '').slice(0, 256),
  }
}
