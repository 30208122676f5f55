/** Types of check-config.mjs for the tests that call it in-process. */
export interface CheckIo {
  stdout?: { write(s: string): unknown }
  stderr?: { write(s: string): unknown }
  cwd?: string
  /** The settings module (src/settings/index.ts); loaded with esbuild when absent. */
  settings?: unknown
  /** Replaces `wrangler secret list`: the names set, or a rejection saying why it could not tell. */
  secretList?: (args: { config: string; env?: string }) => Promise<Set<string>>
}
export const OPTIONS: Record<string, unknown>
export function main(argv: string[], io?: CheckIo): Promise<number>
