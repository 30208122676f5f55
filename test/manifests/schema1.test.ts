import { base64url } from 'jose'
import { describe, expect, it } from 'vitest'
import { RegistryError } from '../../src/errors'
import type { PutTarget } from '../../src/manifests/handler'
import { libtrustKeyId, schema1 } from '../../src/manifests/schema1'
import { prettyPayload, schema1Key, schema1Signature, signSchema1, spliceSignatures } from './schema1-sign'

const SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws'
const UNSIGNED = 'application/vnd.docker.distribution.manifest.v1+json'
const REPO = 'library/busybox'
const TAG = 'latest'
const LAYER_A = `sha256:${'a'.repeat(64)}`
const LAYER_B = `sha256:${'b'.repeat(64)}`

const byTag: PutTarget = { repo: REPO, tag: TAG, mediaType: SIGNED }
const utf8 = new TextEncoder()
const text = (b: Uint8Array) => new TextDecoder().decode(b)

/** A schema 1 manifest as docker writes it: newest layer first, an empty layer repeated. */
function manifest(overrides: Record<string, unknown> = {}): Record<string, unknown> & { history: object[] } {
  return {
    schemaVersion: 1,
    name: REPO,
    tag: TAG,
    architecture: 'amd64',
    fsLayers: [{ blobSum: LAYER_A }, { blobSum: LAYER_B }, { blobSum: LAYER_A }],
    history: [
      { v1Compatibility: '{"id":"3","parent":"2","throwaway":true}' },
      { v1Compatibility: '{"id":"2","parent":"1"}' },
      { v1Compatibility: '{"id":"1","created":"2016-09-23T18:08:50Z"}' },
    ],
    ...overrides,
  } as Record<string, unknown> & { history: object[] }
}

function parse(bytes: Uint8Array, target: PutTarget = byTag) {
  return schema1.parse(JSON.parse(text(bytes)), bytes, target)
}

function digested(bytes: Uint8Array): Uint8Array {
  return schema1.digestedBytes(JSON.parse(text(bytes)), bytes)
}

async function refusal(work: Promise<unknown> | (() => unknown)): Promise<string> {
  let caught: unknown
  try {
    await (typeof work === 'function' ? work() : work)
  } catch (e) {
    caught = e
  }
  expect(caught, 'expected MANIFEST_INVALID').toBeInstanceOf(RegistryError)
  const err = caught as RegistryError
  expect(err.code).toBe('MANIFEST_INVALID')
  return (err.detail as { reason: string }).reason
}

/** The signed manifest with its signature block edited (as parsed JSON, re-spliced). */
async function withSignature(edit: (sig: Record<string, any>) => void, m = manifest()): Promise<Uint8Array> {
  const payload = prettyPayload(m)
  const sig = structuredClone(await schema1Signature(payload)) as Record<string, any>
  edit(sig)
  return spliceSignatures(payload, [sig])
}

const b64url = (s: string) => btoa(s).replace(/=+$/, '').replaceAll('+', '-').replaceAll('/', '_')

describe('schema 1 handler', () => {
  it('serves both schema 1 media types behind the SCHEMA1_ENABLED setting', () => {
    expect(schema1.mediaTypes).toEqual([SIGNED, UNSIGNED])
    expect(schema1.setting).toBe('SCHEMA1_ENABLED')
  })

  it('accepts a docker-signed manifest put by its tag, referencing each layer once in order', async () => {
    const bytes = await signSchema1(manifest())
    expect(text(bytes)).toMatch(/\n {3}"signatures": \[\n {6}\{\n {9}"header": \{/)
    expect(await parse(bytes)).toEqual({ blobs: [LAYER_A, LAYER_B], manifests: [] })
  })

  it('does not hold the manifest tag to anything when put by digest', async () => {
    const bytes = await signSchema1(manifest({ tag: 'some-other-tag' }))
    expect((await parse(bytes, { repo: REPO, tag: null, mediaType: SIGNED })).blobs).toEqual([LAYER_A, LAYER_B])
  })

  it('digests the signed payload: the manifest without its signatures', async () => {
    const m = manifest()
    const bytes = await signSchema1(m)
    expect(text(digested(bytes))).toBe(JSON.stringify(m, null, 3))
    expect(digested(bytes).length).toBeLessThan(bytes.length)
  })

  it('cuts the payload at byte offsets, not character offsets', async () => {
    const m = manifest({ history: manifest().history.map(() => ({ v1Compatibility: '{"author":"Zoë ☃ 🐳"}' })) })
    const bytes = await signSchema1(m)
    await expect(parse(bytes)).resolves.toMatchObject({ blobs: [LAYER_A, LAYER_B] })
    expect(text(digested(bytes))).toBe(JSON.stringify(m, null, 3))
  })

  it('accepts several signatures over one payload, with EC and RSA keys', async () => {
    const payload = prettyPayload(manifest())
    const keys = await Promise.all(['ES256', 'ES384', 'ES512', 'RS256'].map((alg) => schema1Key(alg)))
    const sigs = await Promise.all(keys.map((key) => schema1Signature(payload, { key })))
    const bytes = spliceSignatures(payload, sigs)
    await expect(parse(bytes)).resolves.toMatchObject({ blobs: [LAYER_A, LAYER_B] })
    expect(digested(bytes)).toEqual(payload)
  })

  it('computes libtrust key IDs as docker does', async () => {
    // The key docker used to sign containers/image's schema2-to-schema1-by-docker.json fixture.
    const jwk = {
      kty: 'EC' as const,
      crv: 'P-256',
      x: 'NAGHj6-IdNonuFoxlqJnNMjcrCCE1CBoq2r_1NDci68',
      y: 'Kocqgj_Ey5J-wLXTjkuqLC-HjciAnWxsBEziAOTvSPc',
    }
    expect(await libtrustKeyId(jwk)).toBe('6QVR:5NTY:VIHC:W6IU:XYIN:CTKT:OG5R:XEEG:Z6XJ:2623:YCBP:36MA')
  })

  describe('refuses with MANIFEST_INVALID', () => {
    it('a payload changed after signing', async () => {
      const bytes = await signSchema1(manifest())
      const tampered = utf8.encode(text(bytes).replace('"amd64"', '"arm64"'))
      expect(await refusal(parse(tampered))).toBe('signatures[0] does not verify')
    })

    it('a signature made by another key than the one in its header', async () => {
      const other = await schema1Key()
      const bytes = await signSchema1(manifest(), { headerJwk: other.jwk })
      expect(await refusal(parse(bytes))).toBe('signatures[0] does not verify')
    })

    it('a second signature that does not verify, even when the first does', async () => {
      const payload = prettyPayload(manifest())
      const good = await schema1Signature(payload)
      const bad = await schema1Signature(payload, { headerJwk: (await schema1Key()).jwk })
      expect(await refusal(parse(spliceSignatures(payload, [good, bad])))).toBe('signatures[1] does not verify')
    })

    it('a name other than the repository', async () => {
      const bytes = await signSchema1(manifest({ name: 'library/other' }))
      expect(await refusal(parse(bytes))).toMatch(/name does not match/)
    })

    it('a tag other than the one in the URL', async () => {
      const bytes = await signSchema1(manifest({ tag: 'v2' }))
      expect(await refusal(parse(bytes))).toMatch(/tag does not match/)
    })

    it('fsLayers and history of different lengths', async () => {
      const bytes = await signSchema1(manifest({ history: manifest().history.slice(1) }))
      expect(await refusal(parse(bytes))).toMatch(/fsLayers and history differ in length \(3 != 2\)/)
    })

    it('empty fsLayers and history, or a blobSum that is no digest', async () => {
      expect(await refusal(parse(await signSchema1(manifest({ fsLayers: [], history: [] }))))).toMatch(/fsLayers/)
      const bad = manifest({ fsLayers: [{ blobSum: LAYER_A }, { blobSum: 'tarsum.v1+sha256:abc' }, {}] })
      expect(await refusal(parse(await signSchema1(bad)))).toBe('fsLayers[1].blobSum is not a valid sha256/sha512 digest')
    })

    it('a schemaVersion other than 1', async () => {
      expect(await refusal(parse(await signSchema1(manifest({ schemaVersion: 2 }))))).toMatch(/schemaVersion/)
    })

    it('the signed type with no signatures, an empty list or a null one', async () => {
      const unsigned = prettyPayload(manifest())
      expect(await refusal(parse(unsigned))).toMatch(/needs at least one signature/)
      expect(await refusal(parse(unsigned, { repo: REPO, tag: TAG }))).toMatch(/needs at least one signature/)
      const empty = utf8.encode(JSON.stringify({ ...manifest(), signatures: [] }, null, 3))
      expect(await refusal(parse(empty))).toBe('signatures must not be empty')
      const nulled = utf8.encode(JSON.stringify({ ...manifest(), signatures: null }, null, 3))
      expect(await refusal(parse(nulled))).toMatch(/needs at least one signature/)
    })

    it('an x5c certificate chain in place of (or beside) the jwk', async () => {
      const x5c = ['MIIBdjCCAR2gAwIBAgIQ']
      const only = await withSignature((s) => ((s.header = { alg: 'ES256', x5c }), undefined))
      expect(await refusal(parse(only))).toMatch(/x5c certificate chain; only signatures with an embedded jwk/)
      const both = await withSignature((s) => ((s.header.x5c = x5c), undefined))
      expect(await refusal(parse(both))).toMatch(/x5c certificate chain; only signatures with an embedded jwk/)
    })

    it('a jwk whose kid is not its libtrust fingerprint', async () => {
      const bytes = await withSignature((s) => ((s.header.jwk.kid = 'AAAA:BBBB:CCCC:DDDD:EEEE:FFFF:GGGG:HHHH:IIII:JJJJ:KKKK:LLLL'), undefined))
      expect(await refusal(parse(bytes))).toBe('signatures[0].header.jwk.kid does not match the key')
    })

    it('an RSA key under 2048 bits', async () => {
      const rsa = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]) }
      const pair = (await crypto.subtle.generateKey(rsa, true, ['sign', 'verify'])) as CryptoKeyPair
      const { n, e } = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as JsonWebKey
      const payload = prettyPayload(manifest())
      const prot = b64url(JSON.stringify({ formatLength: payload.length - 2, formatTail: 'Cn0', time: '2024-01-01T00:00:00Z' }))
      const input = utf8.encode(`${prot}.${base64url.encode(payload)}`)
      const signature = base64url.encode(new Uint8Array(await crypto.subtle.sign(rsa, pair.privateKey, input)))
      const sig = { header: { jwk: { kty: 'RSA', n, e }, alg: 'RS256' }, signature, protected: prot }
      expect(await refusal(parse(spliceSignatures(payload, [sig])))).toBe('signatures[0].header.jwk is an RSA key under 2048 bits')
    })

    it('signatures that disagree on the payload', async () => {
      const payload = prettyPayload(manifest())
      const a = await schema1Signature(payload)
      const b = await schema1Signature(payload, {
        protectedHeader: { formatLength: payload.length - 3, formatTail: b64url('}\n}'), time: '2024-01-01T00:00:00Z' },
      })
      expect(await refusal(parse(spliceSignatures(payload, [a, b])))).toBe('signatures[1] signs a different payload than signatures[0]')
    })

    it('members outside the signed payload that differ from it', async () => {
      const m = manifest()
      const signed = text(await signSchema1(m))
      const extra = `,\n   "fsLayers": [{"blobSum": "${LAYER_B}"}]\n}`
      const smuggled = utf8.encode(signed.slice(0, signed.lastIndexOf('\n}')) + extra)
      expect(JSON.parse(text(smuggled)).fsLayers).toHaveLength(1)
      expect(await refusal(parse(smuggled))).toBe('the manifest outside its signatures differs from the signed payload')
    })
  })

  describe('the unsigned application/vnd.docker.distribution.manifest.v1+json form', () => {
    const unsignedTarget: PutTarget = { repo: REPO, tag: TAG, mediaType: UNSIGNED }

    it('is accepted without signatures and digested as its bytes', async () => {
      const bytes = prettyPayload(manifest())
      expect((await parse(bytes, unsignedTarget)).blobs).toEqual([LAYER_A, LAYER_B])
      expect(digested(bytes)).toBe(bytes)
    })

    it('still verifies the signatures it carries', async () => {
      const bytes = await signSchema1(manifest(), { headerJwk: (await schema1Key()).jwk })
      expect(await refusal(parse(bytes, unsignedTarget))).toBe('signatures[0] does not verify')
    })

    it('is checked like the signed form', async () => {
      const bytes = prettyPayload(manifest({ name: 'someone/else' }))
      expect(await refusal(parse(bytes, unsignedTarget))).toMatch(/name does not match/)
    })
  })

  describe('malformed signatures refuse as MANIFEST_INVALID, never as another error', () => {
    const protectedWith = (h: unknown) => b64url(JSON.stringify(h))
    const cases: [string, (s: Record<string, any>) => unknown][] = [
      ['protected is not base64url', (s) => (s.protected = 'not base64!')],
      ['protected has an impossible length', (s) => (s.protected = 'abcde')],
      ['protected is not JSON', (s) => (s.protected = b64url('{"formatLength":'))],
      ['protected is a JSON array', (s) => (s.protected = protectedWith([1, 2]))],
      ['protected is invalid UTF-8', (s) => (s.protected = btoa('\xff\xfe').replace(/=+$/, ''))],
      ['formatLength is missing', (s) => (s.protected = protectedWith({ formatTail: 'Cn0' }))],
      ['formatLength is negative', (s) => (s.protected = protectedWith({ formatLength: -1, formatTail: 'Cn0' }))],
      ['formatLength is fractional', (s) => (s.protected = protectedWith({ formatLength: 10.5, formatTail: 'Cn0' }))],
      ['formatLength is a string', (s) => (s.protected = protectedWith({ formatLength: '10', formatTail: 'Cn0' }))],
      ['formatLength is beyond the body', (s) => (s.protected = protectedWith({ formatLength: 1e9, formatTail: 'Cn0' }))],
      ['formatLength is huge', (s) => (s.protected = protectedWith({ formatLength: 1e300, formatTail: 'Cn0' }))],
      ['formatLength cuts the JSON short', (s) => (s.protected = protectedWith({ formatLength: 40, formatTail: 'Cn0' }))],
      ['formatLength is zero', (s) => (s.protected = protectedWith({ formatLength: 0, formatTail: '' }))],
      ['formatTail is missing', (s) => (s.protected = protectedWith({ formatLength: 10 }))],
      ['formatTail is not base64url', (s) => (s.protected = protectedWith({ formatLength: 10, formatTail: '%%' }))],
      ['signature is not base64url', (s) => (s.signature = '***')],
      ['signature is empty', (s) => (s.signature = '')],
      ['signature is a number', (s) => (s.signature = 42)],
      ['signature is cut short', (s) => (s.signature = s.signature.slice(0, 20))],
      ['header is missing', (s) => delete s.header],
      ['header is an array', (s) => (s.header = [])],
      ['alg is missing', (s) => delete s.header.alg],
      ['alg is none', (s) => (s.header.alg = 'none')],
      ['alg is HMAC', (s) => (s.header.alg = 'HS256')],
      ['alg is RSA-PSS', (s) => (s.header.alg = 'PS256')],
      ['alg does not fit the curve', (s) => (s.header.alg = 'ES384')],
      ['alg is RSA with an EC key', (s) => (s.header.alg = 'RS256')],
      ['jwk is missing', (s) => delete s.header.jwk],
      ['jwk is a string', (s) => (s.header.jwk = 'key')],
      ['jwk is a symmetric key', (s) => (s.header.jwk = { kty: 'oct', k: 'c2VjcmV0' })],
      ['jwk has no kty', (s) => delete s.header.jwk.kty],
      ['jwk x is not base64url', (s) => (s.header.jwk.x = '@@@')],
      ['jwk x is too short', (s) => (s.header.jwk.x = s.header.jwk.x.slice(0, 40))],
      ['jwk y is missing', (s) => delete s.header.jwk.y],
      ['jwk is not a point on the curve', (s) => ((s.header.jwk.y = s.header.jwk.x), delete s.header.jwk.kid)],
      ['jwk kid is a number', (s) => (s.header.jwk.kid = 7)],
      ['the alg is also in the protected header', (s) => (s.protected = protectedWith({ ...JSON.parse(atob(s.protected.replaceAll('-', '+').replaceAll('_', '/'))), alg: 'ES256' }))],
      ['an unknown critical header', (s) => (s.protected = protectedWith({ ...JSON.parse(atob(s.protected.replaceAll('-', '+').replaceAll('_', '/'))), crit: ['zip'], zip: 1 }))],
    ]
    it.each(cases)('%s', async (_, edit) => {
      const bytes = await withSignature(edit)
      await refusal(parse(bytes))
      try {
        digested(bytes)
      } catch (e) {
        expect(e).toBeInstanceOf(RegistryError)
      }
    })

    it('refuses signatures that are not a list of objects', async () => {
      for (const signatures of ['x', 1, {}, [null], [1], [[]], ['sig']]) {
        const bytes = utf8.encode(JSON.stringify({ ...manifest(), signatures }, null, 3))
        await refusal(parse(bytes))
        await refusal(() => digested(bytes))
      }
    })

    it('refuses manifests whose fields have the wrong types', async () => {
      for (const bad of [
        { name: 1 },
        { tag: null },
        { architecture: 64 },
        { fsLayers: 'x' },
        { history: {} },
        { fsLayers: [1, 2, 3] },
        { history: [null, null, null] },
        { history: [{ v1Compatibility: {} }, {}, {}] },
      ]) {
        await refusal(parse(await signSchema1(manifest(bad))))
      }
    })

    it('survives random corruption of a signed manifest', async () => {
      const original = await signSchema1(manifest())
      let seed = 0x5eed
      const random = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), (seed >>> 8) % n)
      let parsedBodies = 0
      for (let round = 0; round < 400; round++) {
        const bytes = original.slice(0, random(4) === 0 ? random(original.length) + 1 : original.length)
        for (let flips = random(3) + 1; flips > 0; flips--) bytes[random(bytes.length)] = random(256)
        let doc: unknown
        try {
          doc = JSON.parse(text(bytes))
        } catch {
          continue // the route refuses bodies that are not JSON before any handler runs
        }
        if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) continue
        parsedBodies++
        for (const target of [byTag, { repo: REPO, tag: null, mediaType: UNSIGNED }]) {
          try {
            await schema1.parse(doc as Record<string, unknown>, bytes, target)
          } catch (e) {
            expect(e).toBeInstanceOf(RegistryError)
          }
        }
        try {
          schema1.digestedBytes(doc as Record<string, unknown>, bytes)
        } catch (e) {
          expect(e).toBeInstanceOf(RegistryError)
        }
      }
      expect(parsedBodies).toBeGreaterThan(50)
    })
  })
})
