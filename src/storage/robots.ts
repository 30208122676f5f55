/** Robot accounts in KV (auth/robots.ts says what they are). */
import { parseRobotRecord, type RobotName, type RobotRecord } from '../auth/robots'
import type { Env } from '../env'
import { keys } from './keys'

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
