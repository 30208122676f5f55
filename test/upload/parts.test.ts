import { describe, expect, it } from 'vitest'
import { MAX_PARTS, PART_SIZE, PartWriter } from '../../src/upload/parts'
import { open } from '../../src/upload/session'
import type { Repo } from '../../src/names'
import { bindings as env } from '../helpers'

describe('PartWriter', () => {
  it('refuses a part past what R2 assembles (10,000 less the close’s two): 413 DENIED, no storage call', async () => {
    const state = { ...open('unit/parts' as Repo), mp: 'an-upload-that-does-not-exist' }
    const writer = new PartWriter(env, state, Array.from({ length: MAX_PARTS }, (_, i) => `etag-${i}`))
    const err = await writer.push(new Uint8Array(PART_SIZE)).then(() => null, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'DENIED', options: { status: 413 } })
    expect(writer.etags).toHaveLength(MAX_PARTS)
  })

  it('takes the last part there is room for', async () => {
    const writer = new PartWriter(env, open('unit/parts' as Repo), Array.from({ length: MAX_PARTS - 1 }, (_, i) => `etag-${i}`))
    await writer.push(new Uint8Array(PART_SIZE))
    await writer.settle()
    expect(writer.etags).toHaveLength(MAX_PARTS)
    expect(writer.etags.at(-1)).toMatch(/\S/)
  })
})
