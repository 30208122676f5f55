import { describe, expect, it } from 'vitest'
import type { Repo } from '../../src/names'
import {
  decodeHashState, encodeHashState, MAX_SESSION_AGE_MS, newUploadState, signState, uploadLocation, verifyState,
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
    const state = { ...fresh, offset: 42, at: `data/${fresh.id}/0a1b`, tail: 42, h256: 'abc' }
    expect(await verifyState(SECRET, repo, state.id, await signState(SECRET, state))).toEqual(state)
    const small = { ...fresh, offset: 3, at: `blobs/sha256/${'e'.repeat(64)}`, tail: 3 }
    expect(await verifyState(SECRET, repo, small.id, await signState(SECRET, small))).toEqual(small)
  })

  it('is unknown when it names an object that is neither its own nor a registry blob', async () => {
    const fresh = newUploadState(repo)
    for (const at of [`data/${newUploadState(repo).id}/0a1b`, `data/${fresh.id}`, '_registry/upload-secret', 'repos/team/app+manifests/x', `blobs/sha256/${'e'.repeat(10)}`]) {
      const token = await signState(SECRET, { ...fresh, offset: 1, at, tail: 1 })
      expect(await unknownCode(verifyState(SECRET, repo, fresh.id, token)), at).toBe('BLOB_UPLOAD_UNKNOWN')
    }
  })

  it('starts empty with a random 128-bit id', () => {
    const a = newUploadState(repo, 1000)
    const b = newUploadState(repo, 1000)
    expect(a).toMatchObject({ repo, started: 1000, offset: 0, at: '', tail: 0, skip: 0, mp: '', parts: 0, h256: '', h512: '' })
    expect(a.id).toMatch(/^[0-9a-f]{32}$/)
    expect(a.id).not.toBe(b.id)
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

  it('carries hash states as URL-safe base64', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
    const encoded = encodeHashState(bytes)
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(decodeHashState(encoded)).toEqual(bytes)
    expect(decodeHashState('')).toBeUndefined()
  })
})
