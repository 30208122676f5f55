/** Robot accounts in KV (auth/robots.ts says what they are). */
import type { Env } from '../env'
import type { RobotName } from '../names'
import { keys } from './keys'

/** What KV holds for a robot (keys.robot): never the token itself. */
export interface RobotRecord {
  /** Hex SHA-256 of the token. */
  sha256: string
  /** When it was created (ISO 8601). */
  created: string
}

/** A KV value read back, or null when it is not a robot record. */
export function parseRobotRecord(value: unknown): RobotRecord | null {
  if (typeof value !== 'object' || value === null) return null
  const { sha256, created } = value as Record<string, unknown>
  if (typeof sha256 !== 'string' || !/^[a-f0-9]{64}$/.test(sha256)) return null
  return { sha256, created: typeof created === 'string' ? created : '' }
}

/** 1 KV get: the robot's record, or null (absent or not a record). */
export async function readRobot(env: Env, name: RobotName): Promise<RobotRecord | null> {
  const text = await env.LINKS.get(keys.robot(name))
  if (text === null) return null
  try {
    return parseRobotRecord(JSON.parse(text))
  } catch {
    return null
  }
}
