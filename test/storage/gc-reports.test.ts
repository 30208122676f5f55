/** The garbage collector's reports in R2 (CONTRACTS 3): written whole, listed newest first. */
import { describe, expect, it } from 'vitest'
import { getReport, listReports, putReport, type GcReport } from '../../src/storage/gc-reports'
import { bindings } from '../helpers'

const report = (id: string): GcReport => ({
  id, started: '2026-12-01T00:00:00Z', finished: '2026-12-01T00:01:00Z', dryRun: false, untagged: false, repo: null,
  repositories: { 'a/b': { manifests: { count: 1, bytes: 10 }, links: { count: 2, bytes: 20 }, tags: [{ tag: 'old', rule: 'days' }] } },
  totals: { manifests: 1, links: 2, blobs: 3, uploads: 0, bytes: 30 }, freed: { manifests: 0, blobs: 30, uploads: 0 },
  kept: { blobs: 4, bytes: 400 },
})

describe('gc reports', () => {
  it('reads back what was written', async () => {
    await putReport(bindings, report('20260101T000000Z-one'))
    expect(await getReport(bindings, '20260101T000000Z-one')).toEqual(report('20260101T000000Z-one'))
    expect(await getReport(bindings, 'absent')).toBeNull()
  })

  it('lists the newest `limit` reports, newest first', async () => {
    for (const id of ['20260301T000000Z-c', '20260201T000000Z-b', '20260401T000000Z-d']) await putReport(bindings, report(id))
    const ids = (await listReports(bindings, 2)).map((r) => r.id)
    expect(ids).toEqual(['20260401T000000Z-d', '20260301T000000Z-c'])
  })
})
