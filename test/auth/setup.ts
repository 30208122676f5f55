/**
 * The auth tests' registry: the router called directly with AUTH_MODE "token" and a
 * fixed cast of users and rules; the open registry (the default settings) for setup.
 */
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { hashPassword } from '../../src/auth/passwords'
import { parseScopes } from '../../src/auth/scopes'
import { issueAccessToken } from '../../src/auth/tokens'
import type { Env } from '../../src/env'
import { router } from '../../src/router'
import { keys } from '../../src/storage/keys'
import type { RobotName } from '../../src/auth/robots'

export const ORIGIN = 'http://registry.test'
export const SERVICE = 'registry.test'
export const SECRET = 'auth-tests-token-secret-0123456789abcdef'
export const open = env as unknown as Env

/** Low iteration counts keep the tests fast; production hashes use 100,000. */
const ITERATIONS = 1000
export const PASSWORDS = { rita: 'rita-reads', paul: 'paul-pushes', alice: 'alice-admin' }

/**
 * - rita reads team-a/*, paul pushes there, alice also deletes and lists the catalog;
 * - public/* is anonymous pull, paul pushes it;
 * - private/* is alice's alone;
 * - robot:ci pushes team-a/*.
 */
export const RULES = [
  { repos: 'team-a/*', users: ['rita'], actions: ['pull'] },
  { repos: 'team-a/*', users: ['paul', 'robot:ci'], actions: ['pull', 'push'] },
  { repos: ['team-a/*', 'private/*'], users: ['alice'], actions: ['pull', 'push', 'delete'] },
  { repos: 'public/*', users: ['paul'], actions: ['pull', 'push'], anonymous: ['pull'] },
  { catalog: ['alice'] },
]

/** A robot token and record as `npm run robot -- create ci` printed them. */
export const ROBOT_TOKEN = 'erbt__62vPg2e1WbvDblQ8wKjsLZfqBXMxJlbjSHMb8NA3Ok'
export const ROBOT_RECORD = '{"sha256":"2eb38b5f3737a6b945119fcb7ac4f1ba214840bcc3fb77f8b2e54f58b34590e5","created":"2026-11-28T23:00:33.196Z"}'

let users: Promise<string> | null = null
function usersJson(): Promise<string> {
  users ??= (async () => {
    const out: Record<string, string> = {}
    for (const [name, password] of Object.entries(PASSWORDS)) out[name] = await hashPassword(password, ITERATIONS)
    return JSON.stringify(out)
  })()
  return users
}

/** Bindings with token auth on (and the ci robot stored in KV). */
export async function authEnv(overrides: Partial<Env> = {}): Promise<Env> {
  await open.LINKS.put(keys.robot('ci' as RobotName), ROBOT_RECORD)
  return {
    ...open,
    AUTH_MODE: 'token',
    AUTH_RULES: JSON.stringify(RULES),
    AUTH_USERS: await usersJson(),
    AUTH_TOKEN_SECRET: SECRET,
    ...overrides,
  }
}

/** A request straight to the router, waiting for its background work as the runtime would. */
export async function send(bindings: Env, path: string, init?: RequestInit): Promise<Response> {
  const ctx = createExecutionContext()
  const res = await router.fetch(new Request(path.startsWith('http') ? path : ORIGIN + path, init), bindings, ctx)
  await waitOnExecutionContext(ctx)
  return res
}

export const basic = (user: string, password: string): string => `Basic ${btoa(`${user}:${password}`)}`
export const bearer = (token: string): string => `Bearer ${token}`

/** GET /token for `scopes` as `authorization` (none: anonymous); the access token. */
export async function tokenFor(bindings: Env, authorization: string | null, ...scopes: string[]): Promise<string> {
  const query = scopes.map((s) => `&scope=${encodeURIComponent(s)}`).join('')
  const res = await send(bindings, `/token?service=${SERVICE}${query}`, {
    headers: authorization ? { Authorization: authorization } : {},
  })
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { token: string }).token
}

/** A correctly signed access token for `sub` and `scopes` that expired 5 minutes ago. */
export async function issueExpired(sub: string, scopes: string[]): Promise<string> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  const access = parseScopes(scopes)
  return (await issueAccessToken(key, SERVICE, sub, access, Date.now() - 10 * 60_000)).token
}

/** The claims of a JWT (unverified: the test reads what the registry signed). */
export function claimsOf(jwt: string): Record<string, unknown> {
  const payload = jwt.split('.')[1]!
  return JSON.parse(atob(payload.replaceAll('-', '+').replaceAll('_', '/')))
}

/** The OCI error code of a reply (null for a body-less or successful one). */
export async function codeOf(res: Response): Promise<string | null> {
  if (res.status < 400) return null
  const text = await res.text()
  if (!text) return null
  return ((JSON.parse(text) as { errors?: { code: string }[] }).errors?.[0]?.code) ?? null
}

export async function digestOf(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  return 'sha256:' + [...hash].map((b) => b.toString(16).padStart(2, '0')).join('')
}

/** Pushes `bytes` to `repo` on the open registry (monolithic POST): its digest. */
export async function seedBlob(repo: string, bytes: Uint8Array = crypto.getRandomValues(new Uint8Array(64))): Promise<string> {
  const digest = await digestOf(bytes)
  const res = await send(open, `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: bytes,
    headers: { 'Content-Length': String(bytes.length) },
  })
  if (res.status !== 201) throw new Error(`seed failed: ${res.status} ${await res.text()}`)
  return digest
}

let n = 0
/** A fresh repository under `prefix`. */
export const fresh = (prefix: string): string => `${prefix}/r${Date.now().toString(36)}${(n++).toString(36)}`
