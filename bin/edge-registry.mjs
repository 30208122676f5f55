#!/usr/bin/env node
// @ts-check
/** `npx edge-registry push|copy …` (tool/node/cli.mjs); runs as is on Node 20, no build step. */
import { EXIT } from '../tool/core/errors.mjs'
import { main } from '../tool/node/cli.mjs'

process.on('SIGINT', () => {
  process.stderr.write('\nedge-registry: interrupted; run the same command again to resume (finished blobs are skipped)\n')
  process.exit(EXIT.INTERRUPTED)
})
process.exitCode = await main(process.argv.slice(2))
