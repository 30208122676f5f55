/**
 * Parsers for what a URL may name. `Repo`, `Digest` and `Tag` are branded:
 * only these functions make them, so no raw path parameter reaches a key.
 */
import { RegistryError } from './errors'
import type { Algorithm } from './digest/native'

export type Repo = string & { readonly __repo: unique symbol }
export type Tag = string & { readonly __tag: unique symbol }
export type Digest = string & { readonly __digest: unique symbol }

/** spec: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*` */
const REPO = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/
/** spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}` */
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/
const DIGEST_HEX: Record<Algorithm, RegExp> = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ }

export const MAX_NAME_LENGTH = 255

export function parseRepo(name: string | undefined): Repo {
  if (!name || name.length > MAX_NAME_LENGTH || !REPO.test(name)) {
    throw new RegistryError('NAME_INVALID', { name: name?.slice(0, MAX_NAME_LENGTH + 1) ?? null })
  }
  return name as Repo
}

export const isTag = (s: string): boolean => TAG.test(s)

export function parseTag(tag: string): Tag {
  if (!isTag(tag)) throw new RegistryError('TAG_INVALID', { tag: tag.slice(0, 200) })
  return tag as Tag
}

/** A digest we can verify (sha256, sha512); anything else is DIGEST_INVALID. */
export function parseDigest(s: string | null | undefined): Digest {
  const d = tryDigest(s)
  if (!d) throw new RegistryError('DIGEST_INVALID', { digest: s?.slice(0, 200) ?? null })
  return d
}

export function tryDigest(s: string | null | undefined): Digest | null {
  if (!s) return null
  const i = s.indexOf(':')
  const alg = s.slice(0, i)
  if (alg !== 'sha256' && alg !== 'sha512') return null
  return DIGEST_HEX[alg].test(s.slice(i + 1)) ? (s as Digest) : null
}

export const algorithmOf = (d: Digest): Algorithm => d.slice(0, d.indexOf(':')) as Algorithm
export const hexOf = (d: Digest): string => d.slice(d.indexOf(':') + 1)

export type Reference = { kind: 'tag'; tag: Tag } | { kind: 'digest'; digest: Digest }

/** A manifest reference: a digest when it has the digest shape, else a tag. */
export function parseReference(ref: string): Reference {
  if (ref.includes(':')) return { kind: 'digest', digest: parseDigest(ref) }
  return { kind: 'tag', tag: parseTag(ref) }
}

/** sha256 of bytes, as a Digest. */
export async function digestOf(bytes: Uint8Array, algorithm: Algorithm = 'sha256'): Promise<Digest> {
  const name = algorithm === 'sha256' ? 'SHA-256' : 'SHA-512'
  const hash = new Uint8Array(await crypto.subtle.digest(name, bytes))
  return `${algorithm}:${[...hash].map((b) => b.toString(16).padStart(2, '0')).join('')}` as Digest
}

/** A robot account's name: what `robot:<name>` user names carry (auth/robots.ts says what robots are). */
export type RobotName = string & { readonly __robot: unique symbol }

/** The user name prefix that marks a robot. */
export const ROBOT_PREFIX = 'robot:'
const ROBOT = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/

/** The robot a user name names (`robot:<name>`), or null. */
export function robotName(user: string): RobotName | null {
  if (!user.startsWith(ROBOT_PREFIX)) return null
  const name = user.slice(ROBOT_PREFIX.length)
  return name.length <= 64 && ROBOT.test(name) ? (name as RobotName) : null
}
