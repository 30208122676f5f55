/** Which events an endpoint hears: actions, repositories, tags, media types. */
import { describe, expect, it } from 'vitest'
import { newEvent, type EventTarget } from '../../src/events/event'
import { wants } from '../../src/events/filter'
import type { Endpoint } from '../../src/settings/events'

const endpoint = (e: Partial<Endpoint>): Endpoint => ({
  name: 'e', url: 'https://x.example.com', format: 'distribution', actions: ['push', 'mount', 'delete'], headers: {}, timeoutSeconds: 10, maxRetries: 10, ...e,
})
const ev = (action: 'push' | 'pull' | 'mount' | 'delete', target: Partial<EventTarget>) =>
  newEvent({ actor: 'a', request: null, origin: null }, action, { repository: 'team-a/app', ...target })
const IMAGE = 'application/vnd.oci.image.manifest.v1+json'

describe('an endpoint hears', () => {
  it('its actions only (pulls not by default)', () => {
    expect(wants(endpoint({}), ev('push', {}))).toBe(true)
    expect(wants(endpoint({}), ev('pull', {}))).toBe(false)
    expect(wants(endpoint({ actions: ['pull'] }), ev('pull', {}))).toBe(true)
    expect(wants(endpoint({ actions: ['delete'] }), ev('mount', {}))).toBe(false)
  })

  it('its repositories, by AUTH_RULES patterns', () => {
    const e = endpoint({ repos: ['team-a/*', 'exact'] })
    expect(wants(e, ev('push', { repository: 'team-a/x/y' }))).toBe(true)
    expect(wants(e, ev('push', { repository: 'exact' }))).toBe(true)
    expect(wants(e, ev('push', { repository: 'team-a' }))).toBe(false)
    expect(wants(e, ev('push', { repository: 'team-b/x' }))).toBe(false)
  })

  it('with tags: only events about a matching tag (a manifest delete by any tag it removed)', () => {
    const e = endpoint({ tags: ['v*', 'latest'] })
    expect(wants(e, ev('push', { tag: 'v1.2' }))).toBe(true)
    expect(wants(e, ev('push', { tag: 'dev' }))).toBe(false)
    expect(wants(e, ev('push', {}))).toBe(false)
    expect(wants(e, ev('delete', { tags: ['dev', 'latest'] }))).toBe(true)
    expect(wants(e, ev('delete', { tags: [] }))).toBe(false)
  })

  it('with mediaTypes: only events whose target has a matching type', () => {
    const e = endpoint({ mediaTypes: ['application/vnd.oci.image.*'] })
    expect(wants(e, ev('push', { mediaType: IMAGE }))).toBe(true)
    expect(wants(e, ev('push', { mediaType: 'application/octet-stream' }))).toBe(false)
    expect(wants(e, ev('delete', {}))).toBe(false)
  })
})
