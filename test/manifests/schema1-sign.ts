/**
 * Builds Docker schema 1 signed manifests the way docker (libtrust) does: the manifest
 * pretty-printed with a 3-space indent, signed over everything but its closing "\n}",
 * and the signature block spliced in before that brace.
 */
import { FlattenedSign, exportJWK, generateKeyPair } from 'jose'
import { libtrustKeyId, type PublicJwk } from '../../src/manifests/schema1'

export interface Schema1Key {
  alg: string
  privateKey: CryptoKey
  /** The public JWK as libtrust writes it, with its `kid` fingerprint. */
  jwk: PublicJwk & { kid: string }
}

export interface SignOptions {
  /** The signer; by default one ES256 key shared by every call. */
  key?: Schema1Key
  /** What the header claims as the key, when it should not be the signer's. */
  headerJwk?: Record<string, unknown>
  /** The protected header; defaults to libtrust's `{formatLength, formatTail, time}`. */
  protectedHeader?: Record<string, unknown>
}

const utf8 = new TextEncoder()

/** A fresh key pair for `alg` (ES256/384/512, RS256/384/512). */
export async function schema1Key(alg = 'ES256'): Promise<Schema1Key> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const exported = await exportJWK(publicKey)
  const jwk = (
    exported.kty === 'EC'
      ? { kty: 'EC', crv: exported.crv!, x: exported.x!, y: exported.y! }
      : { kty: 'RSA', n: exported.n!, e: exported.e! }
  ) as PublicJwk
  return { alg, privateKey, jwk: { ...jwk, kid: await libtrustKeyId(jwk) } }
}

let sharedKey: Promise<Schema1Key> | undefined

/** The manifest signed by one key, exactly as docker would send it. */
export async function signSchema1(manifest: object, options: SignOptions = {}): Promise<Uint8Array> {
  const payload = prettyPayload(manifest)
  return spliceSignatures(payload, [await schema1Signature(payload, options)])
}

/** `manifest` as libtrust's signed payload: `json.MarshalIndent(m, "", "   ")`. */
export function prettyPayload(manifest: object): Uint8Array {
  return utf8.encode(JSON.stringify(manifest, null, 3))
}

/** One libtrust signature block over `payload` (which must end in "\n}"). */
export async function schema1Signature(payload: Uint8Array, options: SignOptions = {}): Promise<object> {
  const key = options.key ?? (await (sharedKey ??= schema1Key()))
  const formatLength = payload.length - 2
  const protectedHeader = options.protectedHeader ?? {
    formatLength,
    formatTail: 'Cn0', // base64url("\n}")
    time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  }
  const jws = await new FlattenedSign(payload)
    .setProtectedHeader(protectedHeader)
    .setUnprotectedHeader({ jwk: options.headerJwk ?? key.jwk, alg: key.alg })
    .sign(key.privateKey)
  return { header: jws.header, signature: jws.signature, protected: jws.protected }
}

/**
 * libtrust's `PrettySignature`: the payload up to its final "\n}", then
 * `,\n   "signatures": [...]` indented one level, then "\n}".
 */
export function spliceSignatures(payload: Uint8Array, signatures: object[]): Uint8Array {
  const end = payload.length - 2
  if (new TextDecoder().decode(payload.subarray(end)) !== '\n}') throw new Error('payload must end in "\\n}"')
  const block = JSON.stringify(signatures, null, 3).replaceAll('\n', '\n   ')
  const suffix = utf8.encode(`,\n   "signatures": ${block}\n}`)
  const out = new Uint8Array(end + suffix.length)
  out.set(payload.subarray(0, end))
  out.set(suffix, end)
  return out
}
