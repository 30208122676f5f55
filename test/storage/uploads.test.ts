/**
 * storage/uploads.ts `listSession`: a session's status reads from the asking Location's own write
 * on, so it costs one R2 list for the latest Location however many chunks the session took
 * (issue 20: 10,000 chunks took 100 lists).
 */
import { describe, expect, it } from 'vitest'
import { Meter, meteredKV, meteredR2 } from '../../bench/cost/meter'
import { bindings, callWith, repoName, startUpload } from '../helpers'

const CHUNKS = 150

async function metered(path: string) {
  const meter = new Meter()
  const res = await callWith({ BLOBS: meteredR2(meter, bindings.BLOBS), LINKS: meteredKV(meter, bindings.LINKS) }, path)
  return { res, calls: meter.counts }
}

describe(`a session's status after ${CHUNKS} chunks`, () => {
  it('costs 1 R2 list from the latest Location, and an old Location pays only for the writes made since it', async () => {
    const repo = repoName('status')
    let location = await startUpload(repo, (p, i) => callWith({}, p, i))
    const locations: string[] = []
    for (let i = 0; i < CHUNKS; i++) {
      const res = await callWith({}, location, { method: 'PATCH', body: new Uint8Array([i]), headers: { 'Content-Length': '1', 'Content-Range': `${i}-${i}` } })
      expect(res.status, await res.clone().text()).toBe(202)
      location = res.headers.get('location')!
      locations.push(location)
    }
    // The local R2 lists 100 objects a page when it includes metadata: 150 writes are 2 pages.
    const latest = await metered(location)
    expect(latest.res.status).toBe(204)
    expect(latest.res.headers.get('range')).toBe(`0-${CHUNKS - 1}`)
    expect(latest.calls['r2.list']).toBe(1)
    const first = await metered(locations[0]!)
    expect(first.res.status).toBe(204)
    expect(first.res.headers.get('range')).toBe(`0-${CHUNKS - 1}`)
    expect(first.calls['r2.list']).toBe(2)
    const recent = await metered(locations[CHUNKS - 50]!)
    expect(recent.calls['r2.list']).toBe(1)
    expect(recent.res.headers.get('location')).toBe(location)
  })
})
