#!/usr/bin/env node
/**
 * `npm run check-config [-- --env <name>] [--config <path>] [--no-remote] [--no-dev-vars]`
 *
 * Checks every setting before a deploy, with the schemas the worker itself parses them with
 * (src/settings/), and prints each problem as the worker would log it (`AUTH_RULES[2].repos: …`),
 * never a value. What it reads, as wrangler 4.86 reads it (its own functions do the reading):
 * - wrangler.toml `[vars]`, or `[env.<name>.vars]` with `--env` (vars are not inherited: an
 *   environment without its own `[vars]` deploys with none, so every setting is its default);
 * - `.dev.vars` (`.dev.vars.<name>` with `--env`, else `.env` files): what `npm start` adds. Parsed
 *   with dotenv rules, no `$` expansion. Skipped with `--no-dev-vars`.
 * Deployed secrets are not in files: it says which ones the settings need (`wrangler secret put`)
 * and, unless `--no-remote`, asks `wrangler secret list` whether they are set. Without a network
 * or a login that answer is missing, and says so: never a failure.
 * Exit status: 0 when nothing is wrong, 1 on any problem, 2 on bad arguments.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { loadTs } from './lib/load-ts.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const usage = 'usage: npm run check-config [-- --env <name>] [--config <wrangler.toml>] [--no-remote] [--no-dev-vars]'

export const OPTIONS = {
  env: { type: 'string', short: 'e' },
  config: { type: 'string', short: 'c' },
  'no-remote': { type: 'boolean', default: false },
  'no-dev-vars': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
}

let schemas
/** The worker's own settings module (src/settings/index.ts), loaded once. */
const settingsModule = () => (schemas ??= loadTs(join(root, 'src/settings/index.ts')))

/**
 * Runs the check; returns the exit status. For tests, `io.settings` may hand over the settings
 * module, and `io.secretList(args)` replace the call of `wrangler secret list`: it returns the
 * names set, or throws why it could not tell.
 */
export async function main(argv, io = {}) {
  const out = io.stdout ?? process.stdout
  const err = io.stderr ?? process.stderr
  const say = (line = '') => out.write(`${line}\n`)
  let args
  try {
    args = parseArgs({ args: argv, options: OPTIONS }).values
  } catch (e) {
    err.write(`${e.message}\n${usage}\n`)
    return 2
  }
  if (args.help) {
    say(usage)
    return 0
  }
  const s = io.settings ?? (await settingsModule())
  const wrangler = await import('wrangler')
  const configPath = resolve(io.cwd ?? process.cwd(), args.config ?? 'wrangler.toml')
  const shown = relative(io.cwd ?? process.cwd(), configPath)
  const file = shown.startsWith('..') ? configPath : shown
  const where = args.env ? `${file} [env.${args.env}]` : file
  const problems = []
  const notes = []
  const report = (source, problem) => problems.push(`${source}: ${s.formatProblem(problem)}`)

  let config
  try {
    if (!existsSync(configPath)) throw new Error(`${configPath} does not exist`)
    config = wrangler.unstable_readConfig({ config: configPath, env: args.env }, { hideWarnings: true })
    // wrangler only warns about an unknown --env when the file defines no environment at all.
    if (args.env && !Object.hasOwn(wrangler.experimental_readRawConfig({ config: configPath }).rawConfig.env ?? {}, args.env)) {
      throw new Error(`- No environment found in configuration with name "${args.env}".`)
    }
  } catch (e) {
    // wrangler's own words (an unknown --env, a TOML syntax error): they quote no value.
    const lines = String(e?.message ?? e).replace(/\x1b\[[0-9;]*m/g, '').split('\n').map((l) => l.trim()).filter((l) => l.startsWith('- ') || l.startsWith('Before'))
    err.write(`check-config: cannot read ${where}: ${lines.join(' ') || firstLine(e)}\n`)
    return 1
  }
  const vars = config.vars ?? {}
  const known = new Set(s.SETTING_NAMES)

  // What deploys: [vars] alone (secrets are set apart, and unknown here).
  for (const name of Object.keys(vars)) {
    if (s.isSecret(name)) report(where, { setting: name, path: '', message: 'is a secret: set it with `npx wrangler secret put`, not in [vars] (vars are shown in the dashboard and kept in git)' })
    else if (!known.has(name)) notes.push(`${where}: ${name} is not a setting this registry reads (a typo?)`)
  }
  if (args.env && Object.keys(vars).length === 0) notes.push(`${where} has no [env.${args.env}.vars]: vars are not inherited, so every setting takes its default there`)
  const deployed = s.parseSettings(withoutSecrets(vars, s))
  const needed = []
  // Bindings the settings need (Rate Limiting, Queues); a bad value of a setting read is reported above.
  const valueOf = (name) => {
    try {
      return s.parseSetting(name, vars[name])
    } catch {
      return null
    }
  }
  const needs = Object.fromEntries(['AUTH_MODE', 'THROTTLE_ANONYMOUS_PULLS', 'NOTIFICATIONS', 'PULL_STATS'].map((n) => [n, valueOf(n)]))
  if (Object.values(needs).every((x) => x !== null)) {
    const bound = {
      ratelimit: new Set((config.ratelimits ?? []).map((r) => r.name)),
      queue: new Set((config.queues?.producers ?? []).map((q) => q.binding)),
    }
    for (const p of s.missingBindings(needs, (b, kind) => bound[kind].has(b))) report(where, p)
  }
  if (!deployed.ok) {
    for (const p of deployed.problems) {
      if (p.missingSecret) needed.push(p)
      else report(where, p)
    }
  }

  // What `npm start` runs: [vars] with .dev.vars over them.
  const localFile = args['no-dev-vars'] ? null : localVarsFile(dirname(configPath), args.env)
  if (localFile) {
    const merged = wrangler.unstable_getVarsForDev(configPath, undefined, vars, args.env, true)
    const local = Object.fromEntries(Object.entries(merged).map(([k, b]) => [k, b.value]))
    const fromFile = new Set(Object.entries(merged).filter(([, b]) => b.type === 'secret_text').map(([k]) => k))
    for (const name of fromFile) if (!known.has(name)) notes.push(`${localFile}: ${name} is not a setting this registry reads (a typo?)`)
    const parsed = s.parseSettings(local)
    const seen = new Set(problems)
    for (const p of parsed.ok ? [] : parsed.problems) {
      const source = fromFile.has(p.setting) ? localFile : `${where} with ${localFile}`
      if (p.missingSecret) {
        report(localFile, { ...p, message: `${p.message}: locally, put it in ${localFile}` })
        continue
      }
      // A problem of wrangler.toml's own value is reported once, as wrangler.toml's.
      if (!fromFile.has(p.setting) && seen.has(`${where}: ${s.formatProblem(p)}`)) continue
      report(source, p)
    }
  }

  // Secrets the settings need on the deployed worker.
  if (needed.length) {
    const put = (name) => `npx wrangler secret put ${name}${args.env ? ` --env ${args.env}` : ''}`
    let set = null
    let why = '--no-remote'
    if (!args['no-remote']) {
      try {
        set = await (io.secretList ?? secretList)({ config: configPath, env: args.env })
      } catch (e) {
        why = `wrangler secret list: ${firstLine(e)}`
      }
    }
    for (const p of needed) {
      if (set === null) notes.push(`${p.setting} ${p.message.replace(/^must be set: /, 'must be set on the deployed worker (')}): ${put(p.setting)} (not checked: ${why})`)
      else if (!set.has(p.setting)) report('deployed worker', { ...p, message: `${p.message}, and \`wrangler secret list\` does not list it: ${put(p.setting)}` })
    }
  }

  for (const p of problems) say(`✗ ${p}`)
  for (const n of notes) say(`note: ${n}`)
  const read = [where, ...(localFile ? [localFile] : [])].join(', ')
  if (problems.length) {
    say(`check-config: ${problems.length} problem${problems.length === 1 ? '' : 's'} in ${read}`)
    return 1
  }
  say(`check-config: ${known.size} settings and secrets checked in ${read}: no problem`)
  return 0
}

/** The file of local values wrangler dev reads (wrangler 4.86: `.dev.vars.<env>`, `.dev.vars`, else `.env` files), or null. */
function localVarsFile(dir, env) {
  for (const name of [...(env ? [`.dev.vars.${env}`] : []), '.dev.vars']) if (existsSync(join(dir, name))) return name
  for (const name of [...(env ? [`.env.${env}.local`, `.env.${env}`] : []), '.env.local', '.env']) if (existsSync(join(dir, name))) return name
  return null
}

const withoutSecrets = (vars, s) => Object.fromEntries(Object.entries(vars).filter(([k]) => !s.isSecret(k)))

/** The first sentence of an error (wrangler's run long), without its colours. */
const firstLine = (e) => String(e?.message ?? e).replace(/\x1b\[[0-9;]*m/g, '').replace(/^\s*(✘\s*)?(\[ERROR\]\s*)?/, '').split('\n')[0].trim().replace(/(\.) .*$/, '$1')

/** The names of the deployed worker's secrets (`wrangler secret list --format json`); throws why not. */
function secretList({ config, env }) {
  const bin = join(root, 'node_modules/wrangler/bin/wrangler.js')
  const argv = [bin, 'secret', 'list', '--format', 'json', '--config', config, ...(env ? ['--env', env] : [])]
  return new Promise((done, fail) => {
    // No stdin: wrangler then never opens a browser to log in; it fails fast instead.
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGTERM'), 30_000)
    child.on('error', fail)
    child.on('close', (code) => {
      clearTimeout(timer)
      if (code !== 0) return fail(new Error(stderr.trim() || stdout.trim() || `exit ${code}`))
      try {
        done(new Set(JSON.parse(stdout).map((s) => s.name)))
      } catch {
        fail(new Error('its answer was not a JSON list'))
      }
    })
  })
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2))
}
