/**
 * The bodies an endpoint receives (NOTIFICATIONS `format`):
 * - "distribution": `{"events": [...]}` as `application/vnd.docker.distribution.events.v2+json`,
 *   the envelope distribution sends; one per delivery (the events of one change);
 * - "cloudevents": CloudEvents 1.0 in structured mode (`application/cloudevents+json`), one event
 *   per request: `type` `dev.edge-registry.<image|blob>.<pushed|pulled|mounted|deleted>`, `subject`
 *   `<repository>:<tag>` or `<repository>@<digest>`, `data` the distribution event.
 */
import type { Endpoint } from '../settings/events'
import { BLOB_MEDIA_TYPE, type RegistryEvent } from './event'
import type { Delivery } from './messages'

export const DISTRIBUTION_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v2+json'
export const CLOUDEVENTS_MEDIA_TYPE = 'application/cloudevents+json'

/** One HTTP request of a delivery: its webhook-id, body and content type. */
export interface Rendered {
  id: string
  body: string
  contentType: string
}

const PAST = { push: 'pushed', pull: 'pulled', mount: 'mounted', delete: 'deleted' } as const

export function render(format: Endpoint['format'], d: Delivery): Rendered[] {
  if (format === 'distribution') return [{ id: d.id, body: JSON.stringify({ events: d.events }), contentType: DISTRIBUTION_MEDIA_TYPE }]
  return d.events.map((ev) => ({ id: ev.id, body: JSON.stringify(cloudEvent(ev)), contentType: CLOUDEVENTS_MEDIA_TYPE }))
}

/** A CloudEvent (spec v1.0, JSON format) carrying a distribution event. */
export function cloudEvent(ev: RegistryEvent) {
  const t = ev.target
  const kind = t.mediaType === BLOB_MEDIA_TYPE ? 'blob' : 'image'
  const subject = t.tag !== undefined ? `${t.repository}:${t.tag}` : t.digest !== undefined ? `${t.repository}@${t.digest}` : t.repository
  return {
    specversion: '1.0',
    id: ev.id,
    // A URI-reference naming this registry: its address when a request named it, else the software.
    source: ev.source.addr ? `//${ev.source.addr}` : '/edge-registry',
    type: `dev.edge-registry.${kind}.${PAST[ev.action]}`,
    subject,
    time: ev.timestamp,
    datacontenttype: 'application/json',
    data: ev,
  }
}
