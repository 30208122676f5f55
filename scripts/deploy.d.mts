/** Types of deploy.mjs for the tests that call it in-process. */
import type { CheckIo } from './check-config.mjs'

export function splitArgs(argv: string[]): { check: string[]; deploy: string[] }
export function main(
  argv: string[],
  io?: CheckIo & { check?: (argv: string[], io: CheckIo) => Promise<number>; deploy?: (args: string[]) => Promise<number> },
): Promise<number>
