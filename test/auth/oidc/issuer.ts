/**
 * A local OIDC issuer for the tests: keys generated per run with jose, a discovery document
 * and a JWKS endpoint, reached through the worker's own outbound `fetch` (spied on: the tests
 * run the router in this isolate, so the registry's fetch is this globalThis.fetch).
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { vi } from 'vitest'

export const AUDIENCE = 'https://registry.test'

interface Key {
  kid: string
  alg: 'RS256' | 'ES256'
  privateKey: CryptoKey
  publicJwk: JWK
}

const issuers = new Map<string, TestIssuer>()
let n = 0

export class TestIssuer {
  /** Paths fetched from this issuer, in order. */
  readonly fetched: string[] = []
  /** Keys the JWKS endpoint serves (by kid); `sign` may use any key made. */
  readonly served = new Set<string>()
  /** While true, every request answers 503. */
  down = false
  private readonly keys = new Map<string, Key>()

  private constructor(readonly url: string) {}

  /**
   * A new issuer at a new URL (so no cache of an earlier test knows it), serving one RS256 key;
   * or at `url` (a real issuer's, as documentation names it).
   */
  static async create(url = `https://issuer-${Date.now().toString(36)}-${n++}.test`): Promise<TestIssuer> {
    const issuer = new TestIssuer(url)
    issuers.set(issuer.url, issuer)
    await issuer.addKey('RS256', true)
    return issuer
  }

  /** A new key (served or not yet): its kid. */
  async addKey(alg: 'RS256' | 'ES256', serve: boolean): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
    const kid = `${alg.toLowerCase()}-${this.keys.size}-${crypto.randomUUID().slice(0, 8)}`
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
    this.keys.set(kid, { kid, alg, privateKey, publicJwk })
    if (serve) this.served.add(kid)
    return kid
  }

  /** The first key made (RS256). */
  get firstKid(): string {
    return this.keys.keys().next().value!
  }

  publicJwk(kid: string): JWK {
    return this.keys.get(kid)!.publicJwk
  }

  /**
   * A token: iss, aud, sub, iat, nbf, exp (10 minutes) with `claims` over them
   * (`undefined` drops one), signed with key `kid` (default: the first).
   */
  async token(claims: Record<string, unknown> = {}, kid = this.firstKid, nowSeconds = Math.floor(Date.now() / 1000)): Promise<string> {
    const key = this.keys.get(kid)!
    const payload: Record<string, unknown> = {
      iss: this.url, aud: AUDIENCE, sub: 'repo:acme/app:ref:refs/heads/main',
      iat: nowSeconds, nbf: nowSeconds - 5, exp: nowSeconds + 600, ...claims,
    }
    for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k]
    return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid, typ: 'JWT' }).sign(key.privateKey)
  }

  /** AUTH_OIDC entry for this issuer (discovery unless `jwksUri`). */
  entry(alias: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { alias, issuer: this.url, audience: AUDIENCE, ...extra }
  }

  get jwksUri(): string {
    return `${this.url}/keys`
  }

  handle(path: string): Response {
    this.fetched.push(path)
    if (this.down) return new Response('unavailable', { status: 503 })
    if (path === '/.well-known/openid-configuration') {
      return Response.json({ issuer: this.url, jwks_uri: this.jwksUri, id_token_signing_alg_values_supported: ['RS256', 'ES256'] })
    }
    if (path === '/keys') return Response.json({ keys: [...this.served].map((kid) => this.keys.get(kid)!.publicJwk) })
    return new Response('not found', { status: 404 })
  }
}

/** Routes outbound fetches to test issuers; anything else goes out as before. Call in beforeAll. */
export function interceptIssuers(): void {
  const original = globalThis.fetch
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    const issuer = issuers.get(url.origin)
    return issuer ? issuer.handle(url.pathname) : original(input, init)
  })
}

/** base64url of a string or bytes. */
export const b64url = (data: string | Uint8Array): string => {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
  return btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}
