#!/usr/bin/env node
/**
 * `npm run settings-schema`: writes docs/settings.schema.json from the settings schemas
 * (src/settings/json-schema.ts). `--check` writes nothing and exits 1 when the file is stale
 * (test/settings/schema.node.test.ts does the same in `npm test`).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadTs } from './lib/load-ts.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const file = join(root, 'docs/settings.schema.json')
const { settingsSchemaText } = await loadTs(join(root, 'src/settings/json-schema.ts'))
const text = settingsSchemaText()
if (process.argv.includes('--check')) {
  let current = ''
  try {
    current = readFileSync(file, 'utf8')
  } catch {}
  if (current !== text) {
    console.error('docs/settings.schema.json is stale: run `npm run settings-schema`')
    process.exit(1)
  }
  console.log('docs/settings.schema.json is current')
} else {
  writeFileSync(file, text)
  console.log(`wrote ${file}`)
}
