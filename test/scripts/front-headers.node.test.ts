/** What npm start's front forwards (scripts/front-headers.mjs): the client address it vouches for, and which Host headers it refuses. */
import { describe, expect, it } from 'vitest'
import { badHost, clientAddress, forwardedHeaders, originForm } from '../../scripts/front-headers.mjs'

const pairs = (raw: string[]) => Array.from({ length: raw.length / 2 }, (_, i) => [raw[2 * i]!.toLowerCase(), raw[2 * i + 1]!])

describe('forwardedHeaders', () => {
  it('sets CF-Connecting-IP to the socket\'s peer, dropping any the client sent (in any spelling)', () => {
    const raw = ['Host', 'localhost:8787', 'cf-connecting-ip', '127.0.0.1', 'CF-Connecting-IPv6', '::1', 'Accept', '*/*']
    const out = pairs(forwardedHeaders(raw, { remoteAddress: '192.0.2.2', encrypted: false }))
    expect(out).toEqual([['host', 'localhost:8787'], ['accept', '*/*'], ['cf-connecting-ip', '192.0.2.2']])
  })

  it('drops every CF-… header a client sent: a CF-Ray of its own would be the request id the worker logs and reports', () => {
    const raw = ['Host', 'h', 'CF-Ray', '0123456789abcdef-FRA', 'cf-ipcountry', 'XX', 'CF-Visitor', '{"scheme":"https"}', 'X-Request-Id', 'mine']
    expect(pairs(forwardedHeaders(raw, { remoteAddress: '192.0.2.2', encrypted: false }))).toEqual([
      ['host', 'h'], ['x-request-id', 'mine'], ['cf-connecting-ip', '192.0.2.2'],
    ])
  })

  it('names an IPv4 peer of a dual-stack socket as IPv4; loopback stays loopback', () => {
    expect(clientAddress('::ffff:192.0.2.2')).toBe('192.0.2.2')
    expect(clientAddress('::ffff:127.0.0.1')).toBe('127.0.0.1')
    expect(clientAddress('::1')).toBe('::1')
    expect(clientAddress('fd00::2')).toBe('fd00::2')
  })

  it('drops hop-by-hop headers and a client\'s X-Forwarded-Proto; says https itself on TLS', () => {
    const raw = ['Host', 'h', 'Connection', 'close', 'X-Forwarded-Proto', 'https', 'Expect', '100-continue', 'Content-Length', '3']
    expect(pairs(forwardedHeaders(raw, { remoteAddress: '127.0.0.1', encrypted: false }))).toEqual([
      ['host', 'h'], ['content-length', '3'], ['cf-connecting-ip', '127.0.0.1'],
    ])
    expect(pairs(forwardedHeaders(['Host', 'h'], { remoteAddress: '127.0.0.1', encrypted: true }))).toContainEqual(['x-forwarded-proto', 'https'])
  })
})

describe('badHost', () => {
  it.each([
    'localhost', 'localhost:8787', '127.0.0.1:8787', '[::1]:8787', 'mirror.localhost:8740', 'mirror.localhost.:8740', 'registry.example.com',
  ])('takes %s', (host) => {
    expect(badHost(['Host', host])).toBeNull()
  })

  it.each([
    ['a trailing dot after the port', 'mirror.localhost:8740.'],
    ['a space', 'a b'],
    ['a port that is not a number', 'x:abc'],
    ['a port too large', 'x:99999'],
    ['a path', 'x/y'],
    ['user info', 'u@x'],
    ['nothing', ''],
  ])('refuses %s', (_name, host) => {
    expect(badHost(['Host', host])).toMatch(/not a valid host/)
  })

  it('refuses none, and more than one', () => {
    expect(badHost(['Accept', '*/*'])).toBe('no Host header')
    expect(badHost(['Host', 'a', 'host', 'b'])).toBe('more than one Host header')
  })
})

describe('originForm', () => {
  it('keeps a path target and its headers as they are', () => {
    const raw = ['Host', 'localhost:8787']
    expect(originForm('/v2/?x=1', raw)).toEqual({ path: '/v2/?x=1', rawHeaders: raw })
  })

  it('turns an absolute-form target into its path, its authority the Host (RFC 9112 3.2.2: the Host header is ignored)', () => {
    expect(originForm('http://localhost:8787/admin/gc?dry-run=true', ['Host', '192.0.2.2:8787', 'Accept', '*/*'])).toEqual({
      path: '/admin/gc?dry-run=true', rawHeaders: ['Accept', '*/*', 'Host', 'localhost:8787'],
    })
    expect(originForm('HTTPS://h', ['host', 'x'])).toEqual({ path: '/', rawHeaders: ['Host', 'h'] })
    expect(originForm('http://h?q', [])).toEqual({ path: '/?q', rawHeaders: ['Host', 'h'] })
    // User info in the authority: badHost then refuses it, as it refuses it in a Host header.
    expect(badHost(originForm('http://u@h/', [])!.rawHeaders)).toMatch(/not a valid host/)
  })

  it.each(['*', 'localhost:8787', 'v2/', '?a=b', 'ftp://h/'])('refuses the target %s (400)', (target) => {
    expect(originForm(target, ['Host', 'h'])).toBeNull()
  })
})
