/**
 * Loads a TypeScript module of src/ into Node (20 has no type stripping): esbuild, which
 * wrangler itself bundles with, makes one ESM file in memory. For the tools that must use
 * the worker's own code (the settings schemas), not a copy of it.
 */
import { build } from 'esbuild'

/** The module's exports. */
export async function loadTs(entry) {
  const out = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'neutral', write: false, logLevel: 'silent', external: ['node:*'], mainFields: ['module', 'main'] })
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`)
}
