import { describe, expect, it } from 'vitest'
import { ResumableHash } from '../../src/digest/hasher'
import type { Algorithm } from '../../src/digest/native'
import { randomBlob, sha256, sha512 } from '../helpers'

const reference = (alg: Algorithm, bytes: Uint8Array) => (alg === 'sha256' ? sha256(bytes) : sha512(bytes))
const hexOf = (d: string) => d.slice(d.indexOf(':') + 1)

describe.each(['sha256', 'sha512'] as const)('ResumableHash %s', (alg) => {
  it('hashes nothing and a known vector like WebCrypto', async () => {
    expect(new ResumableHash(alg).hex()).toBe(hexOf(await reference(alg, new Uint8Array(0))))
    const abc = new ResumableHash(alg)
    abc.update(new TextEncoder().encode('abc'))
    const expected = alg === 'sha256'
      ? 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
      : 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f'
    expect(abc.hex()).toBe(expected)
  })

  it('gives the same digest whatever the update sizes (across its 16 KiB buffer)', async () => {
    const data = randomBlob(200_003)
    const h = new ResumableHash(alg)
    let at = 0
    for (const size of [1, 7, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 65_536, 3]) {
      h.update(data.subarray(at, at + size))
      at += size
    }
    h.update(data.subarray(at))
    expect(h.hex()).toBe(hexOf(await reference(alg, data)))
  })

  it('resumes from a saved state in a fresh instance (as across requests)', async () => {
    const data = randomBlob(100_000)
    const first = new ResumableHash(alg)
    first.update(data.subarray(0, 33_333))
    const saved = first.save()
    const second = new ResumableHash(alg, saved)
    second.update(data.subarray(33_333))
    expect(second.hex()).toBe(hexOf(await reference(alg, data)))
    // the saved copy is a snapshot: later updates of `first` do not change it
    first.update(new Uint8Array([1, 2, 3]))
    expect(new ResumableHash(alg, saved).hex()).toBe(hexOf(await reference(alg, data.subarray(0, 33_333))))
  })

  it('leaves the state untouched when reading the digest', async () => {
    const data = randomBlob(5_000)
    const h = new ResumableHash(alg)
    h.update(data.subarray(0, 1_000))
    const early = h.hex()
    expect(h.hex()).toBe(early)
    h.update(data.subarray(1_000))
    expect(h.hex()).toBe(hexOf(await reference(alg, data)))
  })

  it('refuses a state of the wrong size', () => {
    const size = new ResumableHash(alg).save().length
    expect(() => new ResumableHash(alg, new Uint8Array(size + 1))).toThrow(/wrong size/)
    expect(() => new ResumableHash(alg, new Uint8Array(0))).toThrow(/wrong size/)
  })
})

it('keeps SHA-256 and SHA-512 states apart', () => {
  const a = new ResumableHash('sha256')
  a.update(new Uint8Array([1]))
  expect(() => new ResumableHash('sha512', a.save())).toThrow(/wrong size/)
})

it('saves a state small enough for an upload write\'s metadata', () => {
  const b64 = (alg: Algorithm) => {
    const h = new ResumableHash(alg)
    h.update(new Uint8Array(100))
    return btoa(String.fromCharCode(...h.save())).length
  }
  // R2 allows 8 KiB of metadata per object; the state also travels in every Location.
  expect(b64('sha256')).toBeLessThanOrEqual(152)
  expect(b64('sha512')).toBeLessThanOrEqual(280)
})
