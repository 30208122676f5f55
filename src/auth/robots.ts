/**
 * Robot accounts for CI: an operator creates one with `npm run robot -- create <name>`,
 * which prints a random token once and the `wrangler kv key put` command storing only
 * its SHA-256 (a 256-bit random token needs no slow hash). A robot signs in as user
 * `robot:<name>` with the token as password; deleting the KV record revokes it.
 *
 * The name grammar is names.ts' (`robotName`), the record storage/robots.ts': storage knows
 * no identity, and settings (AUTH_RULES) check robot names without reaching up here.
 */
export { ROBOT_PREFIX, robotName, type RobotName } from '../names'
export { parseRobotRecord, type RobotRecord } from '../storage/robots'
