import { describe, expect, it } from 'vitest'
import type { Repo } from '../../src/names'
import {
  isSessionId, MAX_SESSION_AGE_MS, newUploadState, progressOf, signState, uploadLocation, verifyState, withProgress,
} from '../../src/upload/state'

const SECRET = 'test-secret'
const repo = 'team/app' as Repo

async function unknownCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

describe('upload state (client-held, signed)', () => {
  it('round-trips through its token', async () => {
    const fresh = newUploadState(repo)
    const state = { ...fresh, offset: 42, at: 0, size: 42, sum: 'ab'.repeat(32) }
    expect(await verifyState(SECRET, repo, state.id, await signState(SECRET, state))).toEqual(state)
    const pieces = { ...fresh, offset: 11 * 1024 * 1024, at: 0, size: 10, skip: 40, mp: 'mp-id', parts: 1, more: [[10 * 1024 * 1024 + 10, 5] as [number, number]] }
    expect(await verifyState(SECRET, repo, pieces.id, await signState(SECRET, pieces))).toEqual(pieces)
  })

  it('starts empty with a random 128-bit id, hashing sha256 unless told', () => {
    const a = newUploadState(repo, 1000)
    const b = newUploadState(repo, 1000)
    expect(a).toMatchObject({ repo, started: 1000, offset: 0, alg: 'sha256', at: -1, size: 0, skip: 0, mp: '', parts: 0 })
    expect(a.id).toMatch(/^[0-9a-f]{32}$/)
    expect(isSessionId(a.id)).toBe(true)
    expect(a.id).not.toBe(b.id)
    expect(newUploadState(repo, 1000, '', 'sha512').alg).toBe('sha512')
  })

  it('splits into what a write records (its progress) and back', () => {
    const state = { ...newUploadState(repo, 1000, 'alice'), offset: 7, at: 0, size: 7, sum: 'cd'.repeat(32) }
    const progress = progressOf(state)
    expect(progress).toEqual({ offset: 7, alg: 'sha256', at: 0, size: 7, skip: 0, mp: '', parts: 0, sum: 'cd'.repeat(32) })
    expect(withProgress({ ...state, offset: 99, more: [[1, 2]] }, progress)).toEqual(state)
  })

  it('is placed in the Location of the session', async () => {
    const state = newUploadState(repo)
    const location = await uploadLocation(SECRET, state)
    const url = new URL(location, 'http://x')
    expect(url.pathname).toBe(`/v2/team/app/blobs/uploads/${state.id}`)
    expect(await verifyState(SECRET, repo, state.id, url.searchParams.get('_state'))).toEqual(state)
  })

  it('is unknown under another repository or session id', async () => {
    const state = newUploadState(repo)
    const token = await signState(SECRET, state)
    expect(await unknownCode(verifyState(SECRET, 'team/other' as Repo, state.id, token))).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await unknownCode(verifyState(SECRET, repo, newUploadState(repo).id, token))).toBe('BLOB_UPLOAD_UNKNOWN')
  })

  it('is unknown when forged, signed with another secret, or malformed', async () => {
    const state = newUploadState(repo)
    const token = await signState(SECRET, state)
    const [payload, mac] = token.split('.') as [string, string]
    const forged = await signState('another-secret', { ...state, offset: 5 })
    const bigger = btoa(JSON.stringify({ ...state, offset: 1e9 })).replaceAll('=', '')
    for (const bad of [
      null,
      '',
      payload,
      `${payload}.`,
      `${payload}.${mac}.x`,
      `${bigger}.${mac}`,
      `${payload}.${mac.slice(0, -2)}${mac.endsWith('AA') ? 'BB' : 'AA'}`,
      `${payload.slice(0, -2)}${payload.endsWith('AA') ? 'BB' : 'AA'}.${mac}`,
      forged,
      '!!!.???',
      `${payload}.${mac}`.padEnd(9000, 'A'),
    ]) {
      expect(await unknownCode(verifyState(SECRET, repo, state.id, bad)), String(bad).slice(0, 40)).toBe('BLOB_UPLOAD_UNKNOWN')
    }
  })

  it('is unknown once older than the maximum session age', async () => {
    const old = newUploadState(repo, Date.now() - MAX_SESSION_AGE_MS - 60_000)
    expect(await unknownCode(verifyState(SECRET, repo, old.id, await signState(SECRET, old)))).toBe('BLOB_UPLOAD_UNKNOWN')
    const young = newUploadState(repo, Date.now() - MAX_SESSION_AGE_MS + 60_000)
    expect(await verifyState(SECRET, repo, young.id, await signState(SECRET, young))).toEqual(young)
  })

  it('stays below the 7 days after which R2 aborts multipart uploads', () => {
    expect(MAX_SESSION_AGE_MS).toBeLessThan(7 * 24 * 3600 * 1000)
  })

  it('is unknown for an id that newUploadState cannot have made', async () => {
    const state = newUploadState(repo)
    const token = await signState(SECRET, state)
    for (const id of ['..', '', 'a'.repeat(2048), `${state.id}\u0000`, state.id.toUpperCase()]) {
      expect(await unknownCode(verifyState(SECRET, repo, id, token)), id.slice(0, 20)).toBe('BLOB_UPLOAD_UNKNOWN')
    }
  })
})
