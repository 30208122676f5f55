/** A real run's shard plans in R2: written, read, and dropped with the run (and with runs that failed long ago). */
import { describe, expect, it } from 'vitest'
import { bindings, listObjects } from '../helpers'
import { dropShardPlans, getShardPlan, putShardPlan } from '../../src/storage/gc-runs'

describe('shard plans', () => {
  it('are read back as written, and a missing one is an error (a sweep never runs without its plan)', async () => {
    await putShardPlan(bindings, 'gc-20261207T100000Z-aaaaaaaa', 'repos-', { marks: [1, 2] })
    expect(await getShardPlan(bindings, 'gc-20261207T100000Z-aaaaaaaa', 'repos-')).toEqual({ marks: [1, 2] })
    await expect(getShardPlan(bindings, 'gc-20261207T100000Z-aaaaaaaa', 'blobs-')).rejects.toThrow(/missing/)
  })

  it('go with their run, and with runs started over 30 days ago; other runs\' stay', async () => {
    const now = Date.UTC(2026, 11, 7, 12)
    for (const run of ['gc-20261207T110000Z-aaaaaaaa', 'gc-20261206T110000Z-bbbbbbbb', 'gc-20261001T110000Z-cccccccc']) {
      await putShardPlan(bindings, run, 'repos-', {})
      await putShardPlan(bindings, run, 'blobs-', {})
    }
    await dropShardPlans(bindings, 'gc-20261207T110000Z-aaaaaaaa', now)
    const left = new Set((await listObjects('_registry/gc-runs/')).map((o) => o.key.split('/')[2]))
    expect(left.has('gc-20261207T110000Z-aaaaaaaa')).toBe(false)
    expect(left.has('gc-20261001T110000Z-cccccccc')).toBe(false)
    expect(left.has('gc-20261206T110000Z-bbbbbbbb')).toBe(true)
  })
})
