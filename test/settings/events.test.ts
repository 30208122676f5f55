/** NOTIFICATIONS, NOTIFICATION_SECRETS and PULL_STATS: defaults, and every way to get them wrong. */
import { describe, expect, it } from 'vitest'
import type { Env } from '../../src/env'
import { notificationSettings } from '../../src/settings'
import { KEY } from '../events/setup'

const queue = {} as Queue
const settingsOf = (endpoints: unknown, secrets: unknown = null, more: Partial<Env> = {}) => {
  const list = Array.isArray(endpoints) ? endpoints : []
  const names = list.map((e) => (e as { name?: unknown }).name).filter((n) => typeof n === 'string')
  return notificationSettings({
    NOTIFICATIONS: typeof endpoints === 'string' ? endpoints : JSON.stringify(endpoints),
    NOTIFICATION_SECRETS: secrets === null ? JSON.stringify(Object.fromEntries(names.map((n) => [n, KEY]))) : typeof secrets === 'string' ? secrets : JSON.stringify(secrets),
    EVENTS: queue, PULLS: queue,
    ...more,
  } as Env)
}
const URL_OK = 'https://ci.example.com/hook'

describe('NOTIFICATIONS', () => {
  it('has no endpoints and no pull statistics by default', () => {
    expect(notificationSettings({} as Env)).toMatchObject({ endpoints: [], pullStats: false })
  })

  it('fills in the defaults: distribution format, every action but pull, 10 s, 10 retries', () => {
    const [e] = settingsOf([{ name: 'ci', url: URL_OK }]).endpoints
    expect(e).toEqual({ name: 'ci', url: URL_OK, format: 'distribution', actions: ['push', 'mount', 'delete'], headers: {}, timeoutSeconds: 10, maxRetries: 10 })
  })

  it('takes a full endpoint, patterns as a string or a list', () => {
    const [e] = settingsOf([{
      name: 'all-of-it', url: 'http://127.0.0.1:9000/x', format: 'cloudevents', actions: ['pull'], repos: 'team-a/*',
      tags: ['v*', 'latest'], mediaTypes: 'application/vnd.oci.image.*', headers: { Authorization: 'Bearer x' }, timeoutSeconds: 30, maxRetries: 99,
    }]).endpoints
    expect(e).toMatchObject({ repos: ['team-a/*'], tags: ['v*', 'latest'], mediaTypes: ['application/vnd.oci.image.*'], timeoutSeconds: 30, maxRetries: 99 })
  })

  it.each([
    ['not JSON', '[{', 'NOTIFICATIONS: not valid JSON'],
    ['not a list', { name: 'x' }, 'NOTIFICATIONS: must be a JSON array of endpoints'],
    ['a bad name', [{ name: 'Has Spaces', url: URL_OK }], 'NOTIFICATIONS[0].name: must be a-z 0-9'],
    ['a name used twice', [{ name: 'a', url: URL_OK }, { name: 'a', url: URL_OK }], 'NOTIFICATIONS[1]: the name "a" is used twice'],
    ['plain http to another host', [{ name: 'a', url: 'http://ci.example.com/' }], 'NOTIFICATIONS[0].url: must be an https URL'],
    ['credentials in the URL', [{ name: 'a', url: 'https://u:p@ci.example.com/' }], 'NOTIFICATIONS[0].url: must be an https URL'],
    ['not a URL', [{ name: 'a', url: 'ci' }], 'NOTIFICATIONS[0].url: must be an https URL'],
    ['an unknown format', [{ name: 'a', url: URL_OK, format: 'xml' }], 'NOTIFICATIONS[0].format: must be "distribution" or "cloudevents"'],
    ['an unknown action', [{ name: 'a', url: URL_OK, actions: ['push', 'tag'] }], 'NOTIFICATIONS[0].actions[1]: must be a list of push, pull, mount, delete'],
    ['no actions', [{ name: 'a', url: URL_OK, actions: [] }], 'NOTIFICATIONS[0].actions: must not be empty'],
    ['a bad repository pattern', [{ name: 'a', url: URL_OK, repos: 'Team/*' }], 'NOTIFICATIONS[0].repos: must be a repository pattern'],
    ['a bad tag pattern', [{ name: 'a', url: URL_OK, tags: ['v 1'] }], 'NOTIFICATIONS[0].tags: must be a tag pattern'],
    ['a bad media type', [{ name: 'a', url: URL_OK, mediaTypes: ['json'] }], 'NOTIFICATIONS[0].mediaTypes: must be a media type'],
    ['a header the delivery sets', [{ name: 'a', url: URL_OK, headers: { 'Webhook-Id': 'x' } }], 'NOTIFICATIONS[0].headers["Webhook-Id"]: is set by the delivery itself'],
    ['a header on two lines', [{ name: 'a', url: URL_OK, headers: { 'X-A': 'a\r\nb' } }], 'NOTIFICATIONS[0].headers["X-A"]: must be one line'],
    ['a timeout too long', [{ name: 'a', url: URL_OK, timeoutSeconds: 31 }], 'NOTIFICATIONS[0].timeoutSeconds: must be 1 to 30'],
    ['too many retries', [{ name: 'a', url: URL_OK, maxRetries: 100 }], 'NOTIFICATIONS[0].maxRetries: must be 0 to 99'],
    ['an unknown field', [{ name: 'a', url: URL_OK, retries: 3 }], 'NOTIFICATIONS[0].retries: unknown field'],
  ])('names the problem: %s', (_what, value, message) => {
    expect(() => settingsOf(value)).toThrow(message)
  })
})

describe('NOTIFICATION_SECRETS', () => {
  it('needs a key for every endpoint, and an endpoint for every key', () => {
    expect(() => settingsOf([{ name: 'ci', url: URL_OK }], {})).toThrow('NOTIFICATIONS[0].name: "ci" has no key in NOTIFICATION_SECRETS')
    expect(() => settingsOf([{ name: 'ci', url: URL_OK }], '')).toThrow('NOTIFICATION_SECRETS: must be set: NOTIFICATIONS names endpoints, and every delivery is signed')
    expect(() => settingsOf([{ name: 'ci', url: URL_OK }, { name: 'cd', url: URL_OK }], { ci: KEY })).toThrow('NOTIFICATIONS[1].name: "cd" has no key in NOTIFICATION_SECRETS')
    expect(() => settingsOf([{ name: 'ci', url: URL_OK }], { ci: KEY, cd: KEY })).toThrow('NOTIFICATION_SECRETS.cd: no endpoint of NOTIFICATIONS has this name')
  })

  it('takes only whsec_ keys of 24 to 64 bytes, and never quotes one', () => {
    const short = 'whsec_' + btoa('x'.repeat(16))
    for (const bad of [short, 'not-a-key-at-all-0123456789', 'whsec_!!!!', 'whsec_' + btoa('y'.repeat(65))]) {
      let message = ''
      try {
        settingsOf([{ name: 'ci', url: URL_OK }], { ci: bad })
      } catch (err) {
        message = (err as Error).message
      }
      expect(message).toBe('NOTIFICATION_SECRETS.ci: must be "whsec_" followed by the base64 of 24 to 64 bytes')
      expect(message).not.toContain(bad)
    }
    expect(() => settingsOf([{ name: 'ci', url: URL_OK }], '{"ci": ')).toThrow('NOTIFICATION_SECRETS: not valid JSON')
  })

  it('gives each endpoint its key bytes', () => {
    const s = settingsOf([{ name: 'ci', url: URL_OK }])
    expect(s.keys.get('ci')).toHaveLength(32)
  })
})

describe('PULL_STATS and the queue bindings', () => {
  it('is "true" or "false"', () => {
    expect(settingsOf([], {}, { PULL_STATS: 'true' }).pullStats).toBe(true)
    expect(settingsOf([], {}, { PULL_STATS: 'false' }).pullStats).toBe(false)
    expect(() => settingsOf([], {}, { PULL_STATS: 'yes' })).toThrow('PULL_STATS: must be "true" or "false"')
  })

  it('fails closed when a queue binding it needs is missing', () => {
    expect(() => settingsOf([{ name: 'ci', url: URL_OK }], null, { EVENTS: undefined })).toThrow('NOTIFICATIONS: the EVENTS queue binding is missing')
    expect(() => settingsOf([], {}, { PULL_STATS: 'true', PULLS: undefined })).toThrow('PULL_STATS: the PULLS queue binding is missing')
  })
})
