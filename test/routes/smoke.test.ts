import { call, sha256 as sha } from '../helpers'
import { describe, expect, it } from 'vitest'

const fetch = call
async function sha256(b: Uint8Array) {
  return 'sha256:' + [...new Uint8Array(await crypto.subtle.digest('SHA-256', b))].map((x) => x.toString(16).padStart(2, '0')).join('')
}

describe('smoke', () => {
  it('serves /v2/', async () => {
    const r = await fetch('/v2/')
    expect(r.status).toBe(200)
    expect(r.headers.get('docker-distribution-api-version')).toBe('registry/2.0')
  })
  it('POST, PATCH, PUT, GET round trip (small and large)', async () => {
    for (const size of [10, 12 * 1024 * 1024 + 7]) {
      const data = crypto.getRandomValues(new Uint8Array(Math.min(size, 65536)))
      const blob = new Uint8Array(size); for (let i = 0; i < size; i += data.length) blob.set(data.subarray(0, Math.min(data.length, size - i)), i)
      const d = await sha256(blob)
      let r = await fetch('/v2/smoke/a/blobs/uploads/', { method: 'POST' })
      expect(r.status).toBe(202)
      let loc = r.headers.get('location')!
      r = await fetch(loc, { method: 'PATCH', body: blob, headers: { 'content-length': String(size) } })
      expect(r.status, await r.clone().text()).toBe(202)
      expect(r.headers.get('range')).toBe(`0-${size - 1}`)
      loc = r.headers.get('location')!
      r = await fetch(loc + '&digest=' + d, { method: 'PUT' })
      expect(r.status, await r.clone().text()).toBe(201)
      r = await fetch(`/v2/smoke/a/blobs/${d}`)
      expect(r.status).toBe(200)
      expect(await sha256(new Uint8Array(await r.arrayBuffer()))).toBe(d)
      r = await fetch(`/v2/smoke/a/blobs/${d}`, { headers: { range: 'bytes=2-5' } })
      expect(r.status).toBe(206)
      expect([...new Uint8Array(await r.arrayBuffer())]).toEqual([...blob.subarray(2, 6)])
    }
  })
  it('streams a PATCH without length through parts', async () => {
    const size = 23 * 1024 * 1024 + 3
    const blob = new Uint8Array(size); crypto.getRandomValues(blob.subarray(0, 65536)); blob[size - 1] = 9
    const d = await sha256(blob)
    let r = await fetch('/v2/smoke/b/blobs/uploads/', { method: 'POST' })
    let loc = r.headers.get('location')!
    const body = new ReadableStream({ start(c) { for (let i = 0; i < size; i += 1 << 20) c.enqueue(blob.slice(i, i + (1 << 20))); c.close() } })
    r = await fetch(loc, { method: 'PATCH', body, duplex: 'half' } as RequestInit)
    expect(r.status, await r.clone().text()).toBe(202)
    loc = r.headers.get('location')!
    r = await fetch(loc + '&digest=' + d, { method: 'PUT' })
    expect(r.status, await r.clone().text()).toBe(201)
    r = await fetch(`/v2/smoke/b/blobs/${d}`)
    expect(await sha256(new Uint8Array(await r.arrayBuffer()))).toBe(d)
  })
})
