#!/usr/bin/env node
/**
 * `npm run deploy [-- <wrangler deploy arguments>]`: `npm run check-config` first, with the same
 * `--env` and `--config`, and `wrangler deploy` only when it finds no problem. `--no-remote` and
 * `--no-dev-vars` go to check-config alone; everything else goes to `wrangler deploy`
 * (`--dry-run --outdir dist` bundles without deploying).
 * Exit status: check-config's when it stops the deploy, else wrangler's.
 */
import { spawn } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { main as checkConfig } from './check-config.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const CHECK_ONLY = new Set(['--no-remote', '--no-dev-vars'])
const SHARED = new Set(['--env', '-e', '--config', '-c'])

/** Splits the arguments: check-config's, and wrangler deploy's. */
export function splitArgs(argv) {
  const check = []
  const deploy = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const [flag] = a.split('=', 1)
    if (CHECK_ONLY.has(a)) check.push(a)
    else if (SHARED.has(flag)) {
      const pair = a.includes('=') ? [a] : [a, argv[++i] ?? '']
      check.push(...pair)
      deploy.push(...pair)
    } else deploy.push(a)
  }
  return { check, deploy }
}

/** Runs `wrangler deploy` with these arguments; resolves to its exit status. */
function wranglerDeploy(args) {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(root, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', ...args], { stdio: 'inherit' })
    child.on('close', (code) => done(code ?? 1))
  })
}

/** The deploy; `io.check` and `io.deploy` replace check-config and wrangler (tests). */
export async function main(argv, io = {}) {
  const { check, deploy } = splitArgs(argv)
  const status = await (io.check ?? checkConfig)(check, io)
  if (status !== 0) {
    ;(io.stderr ?? process.stderr).write('deploy: stopped, nothing was deployed (check-config found a problem; fix it and run again)\n')
    return status
  }
  return (io.deploy ?? wranglerDeploy)(deploy)
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2))
}
