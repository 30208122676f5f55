// Writes hash-wasm's SHA-256 and SHA-512 WebAssembly binaries to src/vendor/.
// Workers may not compile WebAssembly from bytes at run time, so the binaries
// must ship as modules; src/digest/hasher.ts drives their exports directly.
// hash-wasm is not a dependency (only these binaries are used). To vendor another version:
//   npm install --no-save hash-wasm@4.12.0 && node scripts/vendor-hash-wasm.mjs
import { readFileSync, writeFileSync } from 'node:fs'

const src = readFileSync(new URL('../node_modules/hash-wasm/dist/index.esm.js', import.meta.url), 'utf8')
for (const name of ['sha256', 'sha512']) {
  const m = src.match(new RegExp(`var name(\\$\\w+)? = "${name}";\\s*var data\\1 = "([^"]+)";\\s*var hash\\1 = "([0-9a-f]+)"`))
  if (!m) throw new Error(`no embedded ${name} binary found in hash-wasm`)
  writeFileSync(new URL(`../src/vendor/${name}.wasm`, import.meta.url), Buffer.from(m[2], 'base64'))
  console.log(`${name}.wasm`, Buffer.from(m[2], 'base64').length, 'bytes, hash-wasm id', m[3])
}
