import { describe, expect, it } from 'vitest'
import { call, errorCode } from '../helpers'

describe('GET /v2/', () => {
  it('answers 200 and says which API it speaks', async () => {
    const res = await call('/v2/')
    expect(res.status).toBe(200)
    expect(res.headers.get('Docker-Distribution-API-Version')).toBe('registry/2.0')
    expect(await res.json()).toEqual({})
  })

  it('says it on error replies too', async () => {
    const res = await call('/v2/no/such/route')
    expect(res.status).toBe(404)
    expect(res.headers.get('Docker-Distribution-API-Version')).toBe('registry/2.0')
    expect(await errorCode(res)).toBe('NOT_FOUND')
  })
})

describe('every reply', () => {
  it('has a Content-Type, so the edge never compresses it (even an empty 202)', async () => {
    const res = await call('/v2/base/ct/blobs/uploads/', { method: 'POST' })
    expect(res.status).toBe(202)
    expect(res.headers.get('Content-Type')).toBe('text/plain; charset=utf-8')
  })
})
