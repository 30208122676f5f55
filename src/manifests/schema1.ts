/**
 * Docker image manifest v2, schema 1 (deprecated since 2015; gated by `SCHEMA1_ENABLED`).
 *
 * The signed form is libtrust's "pretty JWS": the manifest JSON with a `signatures`
 * array spliced in before its closing brace. Each signature's protected header says
 * how to cut the signed payload back out of the bytes: the first `formatLength` bytes,
 * then `formatTail`. That payload (the manifest without its signatures) is what every
 * signature covers, what the digest is taken over and what clients read; the rest of
 * the bytes is not trusted. Behaviour follows distribution `manifest/schema1` and
 * `registry/storage/signedmanifesthandler.go`, and docker/libtrust `jsonsign.go`.
 */
import { base64url, flattenedVerify, importJWK } from 'jose'
import { jsonOverLimits } from '../json'
import { tryDigest, type Digest } from '../names'
import { invalid, isObject, schemaVersion, type ManifestHandler, type Parsed, type PutTarget } from './handler'

const SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws'
const UNSIGNED = 'application/vnd.docker.distribution.manifest.v1+json'

/** What libtrust signs with: the curve fixes the EC algorithm; RSA is PKCS#1 v1.5. */
const EC_CURVE: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }
const RSA_ALGS = new Set(['RS256', 'RS384', 'RS512'])
const COORDINATE_BYTES: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 }

/**
 * Clients sign once (docker, containers/image) or at most a few times; each signature
 * costs a hash of the whole payload, so a body cannot buy unbounded CPU with many.
 */
const MAX_SIGNATURES = 8

export const schema1 = {
  mediaTypes: [SIGNED, UNSIGNED],
  setting: 'SCHEMA1_ENABLED',
  parse,
  digestedBytes,
} satisfies ManifestHandler

interface Signature {
  alg: string
  jwk: Record<string, unknown>
  protected: string
  signature: string
}

/** The signed payload and the signatures over it, cut out of the pretty JWS. */
interface Envelope {
  payload: Uint8Array
  signatures: Signature[]
}

/**
 * Checks a schema 1 manifest: every signature verifies over one payload, `name` and
 * `tag` match where it is put, `fsLayers` and `history` pair up. The blobs are the layers.
 */
async function parse(doc: Record<string, unknown>, bytes: Uint8Array, target: PutTarget): Promise<Parsed> {
  const envelope = cutEnvelope(doc, bytes)
  if (!envelope && target.mediaType !== UNSIGNED) {
    throw invalid(`a signed schema 1 manifest needs at least one signature (only ${UNSIGNED} may be unsigned)`)
  }
  const manifest = envelope ? payloadDocument(envelope.payload) : doc
  if (envelope) sameOutsideSignatures(doc, manifest)
  const blobs = checkManifest(manifest, target)
  if (envelope) {
    const encodedPayload = base64url.encode(envelope.payload)
    // Independent checks of one payload; any failure refuses the whole manifest.
    await Promise.all(envelope.signatures.map((s, i) => verifySignature(s, encodedPayload, i)))
  }
  return { blobs, manifests: [] }
}

/**
 * The bytes the digest covers: the JWS payload when the manifest carries `signatures`
 * (distribution's `Canonical`), else the bytes themselves. Like containers/image's
 * `manifest.Digest`, a present, non-null `signatures` member is what makes it signed.
 */
function digestedBytes(doc: Record<string, unknown>, bytes: Uint8Array): Uint8Array {
  return cutEnvelope(doc, bytes)?.payload ?? bytes
}

/** Reads `signatures` (shape only, no crypto) and the payload they agree on; null when unsigned. */
function cutEnvelope(doc: Record<string, unknown>, bytes: Uint8Array): Envelope | null {
  const list = doc.signatures
  if (list === undefined || list === null) return null
  if (!Array.isArray(list)) throw invalid('signatures must be an array')
  if (list.length === 0) throw invalid('signatures must not be empty')
  if (list.length > MAX_SIGNATURES) throw invalid(`more than ${MAX_SIGNATURES} signatures`)

  let format: { length: number; tail: Uint8Array } | null = null
  const signatures = list.map((entry, i): Signature => {
    const where = `signatures[${i}]`
    if (!isObject(entry)) throw invalid(`${where} is not an object`)
    const { header, signature, protected: prot } = entry
    if (!isObject(header)) throw invalid(`${where}.header must be an object`)
    if (typeof signature !== 'string' || !signature) throw invalid(`${where}.signature must be a non-empty string`)
    if (typeof prot !== 'string' || !prot) throw invalid(`${where}.protected must be a non-empty string`)
    if (typeof header.alg !== 'string') throw invalid(`${where}.header.alg must be a string`)
    // libtrust verifies with the first x5c certificate's key whenever a chain is present,
    // ignoring the jwk; verifying the jwk instead would accept what clients reject.
    const x5c = header.x5c
    if (x5c !== undefined && x5c !== null && !(Array.isArray(x5c) && x5c.length === 0)) {
      throw invalid(
        header.jwk === undefined
          ? `${where} is signed with an x5c certificate chain; only signatures with an embedded jwk are accepted`
          : `${where} carries an x5c certificate chain; only signatures with an embedded jwk (no x5c) are accepted`,
      )
    }
    if (!isObject(header.jwk)) throw invalid(`${where}.header.jwk must be a JWK object`)

    const protectedHeader = jsonObject(decodeBase64url(prot, `${where}.protected`), `${where}.protected`)
    const length = protectedHeader.formatLength
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0 || length > bytes.length) {
      throw invalid(`${where}.protected.formatLength must be an integer from 0 to the manifest length`)
    }
    if (typeof protectedHeader.formatTail !== 'string') throw invalid(`${where}.protected.formatTail must be a string`)
    const tail = decodeBase64url(protectedHeader.formatTail, `${where}.protected.formatTail`)
    // One payload for all: libtrust refuses conflicting format lengths or tails.
    if (!format) format = { length, tail }
    else if (format.length !== length || !equalBytes(format.tail, tail)) {
      throw invalid(`${where} signs a different payload than signatures[0]`)
    }
    return { alg: header.alg, jwk: header.jwk, protected: prot, signature }
  })

  const { length, tail } = format!
  const payload = new Uint8Array(length + tail.length)
  payload.set(bytes.subarray(0, length))
  payload.set(tail, length)
  return { payload, signatures }
}

function payloadDocument(payload: Uint8Array): Record<string, unknown> {
  return jsonObject(payload, 'signed payload')
}

/**
 * Clients read the payload, but the route and the referrers code may read the outer
 * document: refuse bytes where the two say different things (e.g. a second `fsLayers`
 * appended after the signed part, which JSON.parse would let win).
 */
function sameOutsideSignatures(doc: Record<string, unknown>, manifest: Record<string, unknown>): void {
  if ('signatures' in manifest) throw invalid('the signed payload must not contain signatures')
  const { signatures: _, ...outer } = doc
  if (JSON.stringify(outer) !== JSON.stringify(manifest)) {
    throw invalid('the manifest outside its signatures differs from the signed payload')
  }
}

/** The manifest's own rules (distribution `verifyManifest`); returns the layer blobs. */
function checkManifest(m: Record<string, unknown>, target: PutTarget): Digest[] {
  schemaVersion(m, 1)
  if (typeof m.name !== 'string') throw invalid('name must be a string')
  if (m.name !== target.repo) throw invalid('name does not match the repository')
  if (typeof m.tag !== 'string') throw invalid('tag must be a string')
  // By digest there is no tag in the URL to hold the manifest's `tag` to, but each `?tag=` is one.
  const tags = target.tags ?? (target.tag === null ? [] : [target.tag])
  if (tags.some((t) => t !== m.tag)) throw invalid('tag does not match the tag in the URL')
  if (m.architecture !== undefined && typeof m.architecture !== 'string') throw invalid('architecture must be a string')

  const { fsLayers, history } = m
  if (!Array.isArray(fsLayers) || fsLayers.length === 0) throw invalid('fsLayers must be a non-empty array')
  if (!Array.isArray(history) || history.length === 0) throw invalid('history must be a non-empty array')
  if (fsLayers.length !== history.length) {
    throw invalid(`fsLayers and history differ in length (${fsLayers.length} != ${history.length})`)
  }
  history.forEach((h, i) => {
    if (!isObject(h)) throw invalid(`history[${i}] is not an object`)
    if (h.v1Compatibility !== undefined && typeof h.v1Compatibility !== 'string') {
      throw invalid(`history[${i}].v1Compatibility must be a string`)
    }
  })
  const blobs = fsLayers.map((layer, i) => {
    const digest = isObject(layer) && typeof layer.blobSum === 'string' ? tryDigest(layer.blobSum) : null
    if (!digest) throw invalid(`fsLayers[${i}].blobSum is not a valid sha256/sha512 digest`)
    return digest
  })
  // Empty layers repeat one blobSum many times; each blob is checked once.
  return [...new Set(blobs)]
}

/** Verifies one signature over `protected.base64url(payload)` with its embedded key. */
async function verifySignature(s: Signature, encodedPayload: string, i: number): Promise<void> {
  const where = `signatures[${i}]`
  const jwk = publicJwk(s.jwk, s.alg, where)
  let key: CryptoKey
  try {
    key = (await importJWK(jwk, s.alg, { extractable: true })) as CryptoKey
  } catch {
    throw invalid(`${where}.header.jwk is not a usable ${s.alg} public key`)
  }
  // libtrust refuses to load a JWK whose kid is not its fingerprint of the key.
  if (s.jwk.kid !== undefined && s.jwk.kid !== (await keyId(key).catch(() => null))) {
    throw invalid(`${where}.header.jwk.kid does not match the key`)
  }
  try {
    await flattenedVerify(
      { protected: s.protected, payload: encodedPayload, signature: s.signature, header: { alg: s.alg } },
      key,
      { algorithms: [s.alg] },
    )
  } catch {
    throw invalid(`${where} does not verify`)
  }
}

/** Public EC or RSA JWK members, checked as libtrust checks them. */
export type PublicJwk = { kty: 'EC'; crv: string; x: string; y: string } | { kty: 'RSA'; n: string; e: string }

/** The public part of a signature's JWK, fit for `alg`, with nothing else carried over. */
function publicJwk(jwk: Record<string, unknown>, alg: string, where: string): PublicJwk {
  const curve = EC_CURVE[alg]
  if (curve) {
    if (jwk.kty !== 'EC') throw invalid(`${where}: ${alg} needs an EC key`)
    if (jwk.crv !== curve) throw invalid(`${where}: ${alg} needs a ${curve} key`)
    const { x, y } = jwk
    for (const [name, value] of [['x', x], ['y', y]] as const) {
      if (typeof value !== 'string') throw invalid(`${where}.header.jwk.${name} must be a string`)
      if (decodeBase64url(value, `${where}.header.jwk.${name}`).length !== COORDINATE_BYTES[curve]) {
        throw invalid(`${where}.header.jwk.${name} has the wrong length for ${curve}`)
      }
    }
    return { kty: 'EC', crv: curve, x: x as string, y: y as string }
  }
  if (RSA_ALGS.has(alg)) {
    if (jwk.kty !== 'RSA') throw invalid(`${where}: ${alg} needs an RSA key`)
    const { n, e } = jwk
    if (typeof n !== 'string' || typeof e !== 'string') throw invalid(`${where}.header.jwk needs n and e strings`)
    // jose (like NIST) will not verify with a modulus under 2048 bits; libtrust never made one.
    if (stripLeadingZeros(decodeBase64url(n, `${where}.header.jwk.n`)).length < 256) {
      throw invalid(`${where}.header.jwk is an RSA key under 2048 bits`)
    }
    const exponent = stripLeadingZeros(decodeBase64url(e, `${where}.header.jwk.e`))
    if (exponent.length === 0 || exponent.length > 4) throw invalid(`${where}.header.jwk.e is out of range`)
    return { kty: 'RSA', n, e }
  }
  throw invalid(`${where}.header.alg must be one of ES256, ES384, ES512, RS256, RS384, RS512`)
}

/**
 * libtrust's key ID (`keyIDFromCryptoKey`): SHA-256 of the key's DER SubjectPublicKeyInfo,
 * cut to 240 bits, base32 in twelve groups of four (`ABCD:EFGH:…:MNOP`).
 */
export async function libtrustKeyId(jwk: PublicJwk): Promise<string> {
  const alg = jwk.kty === 'EC' ? { name: 'ECDSA', namedCurve: jwk.crv } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
  return keyId(await crypto.subtle.importKey('jwk', jwk, alg, true, ['verify']))
}

async function keyId(key: CryptoKey): Promise<string> {
  const spki = (await crypto.subtle.exportKey('spki', key)) as ArrayBuffer
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', spki))
  return base32(hash.subarray(0, 30)).match(/.{4}/g)!.join(':')
}

/** Strict unpadded base64url (libtrust's joseBase64UrlDecode), as MANIFEST_INVALID on error. */
function decodeBase64url(s: string, where: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw invalid(`${where} is not base64url`)
  try {
    return base64url.decode(s)
  } catch {
    throw invalid(`${where} is not base64url`)
  }
}

/** JSON checked for depth and size before it is parsed (src/json.ts), as the manifest itself was. */
function jsonObject(bytes: Uint8Array, where: string): Record<string, unknown> {
  const over = jsonOverLimits(bytes)
  if (over) throw invalid(`${where}: ${over} (the limit)`)
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes))
  } catch {
    throw invalid(`${where} is not valid JSON`)
  }
  if (!isObject(value)) throw invalid(`${where} is not a JSON object`)
  return value
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}

function stripLeadingZeros(b: Uint8Array): Uint8Array {
  let i = 0
  while (i < b.length && b[i] === 0) i++
  return b.subarray(i)
}

/** RFC 4648 base32, no padding (30 bytes make exactly 48 characters). */
function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out
}
