/**
 * Robot accounts for CI: an operator creates one with `npm run robot -- create <name>`,
 * which prints a random token once and the `wrangler kv key put` command storing only
 * its SHA-256 (a 256-bit random token needs no slow hash). A robot signs in as user
 * `robot:<name>` with the token as password; deleting the KV record revokes it.
 */

export type RobotName = string & { readonly __robot: unique symbol }

/** The user name prefix that marks a robot. */
export const ROBOT_PREFIX = 'robot:'
const NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/

/** What KV holds for a robot (keys.robot): never the token itself. */
export interface RobotRecord {
  /** Hex SHA-256 of the token. */
  sha256: string
  /** When it was created (ISO 8601). */
  created: string
}

/** The robot a user name names (`robot:<name>`), or null. */
export function robotName(user: string): RobotName | null {
  if (!user.startsWith(ROBOT_PREFIX)) return null
  const name = user.slice(ROBOT_PREFIX.length)
  return name.length <= 64 && NAME.test(name) ? (name as RobotName) : null
}

/** A KV value read back, or null when it is not a robot record. */
export function parseRobotRecord(value: unknown): RobotRecord | null {
  if (typeof value !== 'object' || value === null) return null
  const { sha256, created } = value as Record<string, unknown>
  if (typeof sha256 !== 'string' || !/^[a-f0-9]{64}$/.test(sha256)) return null
  return { sha256, created: typeof created === 'string' ? created : '' }
}
