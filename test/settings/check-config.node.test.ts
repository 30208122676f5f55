/**
 * `npm run check-config` and `npm run deploy` (scripts/check-config.mjs, scripts/deploy.mjs):
 * what wrangler.toml and .dev.vars hold, read as wrangler 4.86 reads them and checked with the
 * worker's own schemas; each problem named, no value printed, exit 1; good configurations (the
 * shipped wrangler.toml, the docs' examples written as the docs say) pass; the deploy stops.
 * Also: docs/settings.schema.json is current, and docs/settings.md names every setting.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { main as checkConfig } from '../../scripts/check-config.mjs'
import { main as deploy, splitArgs } from '../../scripts/deploy.mjs'
import * as settings from '../../src/settings'
import { settingsSchemaText } from '../../src/settings/json-schema'
import { BROKEN, type BrokenCase, HASH, MISSING, SECRET_MARK } from './cases'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const BARE = 'name = "edge-registry-test"\nmain = "src/index.ts"\ncompatibility_date = "2026-04-01"\n'
/** The Rate Limiting bindings AUTH_MODE "token" and THROTTLE_ANONYMOUS_PULLS need, as wrangler.toml ships them. */
const RATELIMITS = ['SIGNIN_FAILURES_BY_ADDRESS', 'SIGNIN_FAILURES_BY_USER', 'SIGNIN_CHECKS_BY_ADDRESS', 'ANONYMOUS_PULLS_BY_ADDRESS']
  .map((name, i) => `[[ratelimits]]\nname = "${name}"\nnamespace_id = "${7301 + i}"\nsimple = { limit = 10, period = 60 }\n`).join('')
/** The queues NOTIFICATIONS and PULL_STATS need, as wrangler.toml ships them. */
const QUEUES = ['EVENTS', 'EVENTS_DLQ', 'PULLS'].map((b) => `[[queues.producers]]\nbinding = "${b}"\nqueue = "q-${b.toLowerCase()}"\n`).join('')
const HEAD = BARE + RATELIMITS + QUEUES

/** A TOML value: strings as basic strings (JSON's escapes are TOML's), lists and tables inline. */
function toml(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(toml).join(', ')}]`
  if (typeof value === 'object' && value !== null) return `{ ${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)} = ${toml(v)}`).join(', ')} }`
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}

/** A .dev.vars line as a person writes it: single quotes, else backquotes (dotenv keeps both literally). */
const devVar = (name: string, value: string): string => (value.includes("'") ? `${name}=\`${value}\`` : `${name}='${value}'`)

/** A project directory: wrangler.toml (HEAD + `toml`) and, if given, .dev.vars and other files. */
function project(tomlText: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'check-config-'))
  dirs.push(dir)
  writeFileSync(join(dir, 'wrangler.toml'), HEAD + tomlText)
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

const sink = (write: (s: string) => void) => new Writable({ write(chunk, _e, cb) { write(String(chunk)); cb() } })

/** check-config in this process: its status, what it printed, its problems as [source, problem]. */
async function check(dir: string, args: string[] = [], io: Record<string, unknown> = {}) {
  let out = ''
  let err = ''
  const status = await checkConfig(['--config', join(dir, 'wrangler.toml'), ...args], {
    settings,
    cwd: dir,
    stdout: sink((s) => (out += s)),
    stderr: sink((s) => (err += s)),
    ...io,
  })
  const problems = out.split('\n').filter((l) => l.startsWith('✗ ')).map((l) => {
    const at = l.indexOf(': ')
    // The file as given (a temporary directory here): its name is what is compared.
    return [l.slice(2, at).replace(/^\/.*\/(?=wrangler\.toml)/, ''), l.slice(at + 2)] as const
  })
  return { status, out, err, problems }
}

/** Writes the case where it belongs: a secret in .dev.vars, a setting in [vars]. */
function projectFor(c: BrokenCase): { dir: string; source: string } {
  const values = { ...c.others, [c.setting]: c.value }
  const secret = settings.isSecret(c.setting)
  const vars = Object.entries(values).filter(([, v]) => v !== undefined)
  const inToml = vars.filter(([k]) => !settings.isSecret(k))
  const inDevVars = vars.filter(([k]) => settings.isSecret(k))
  const dir = project(`[vars]\n${inToml.map(([k, v]) => `${k} = ${toml(v)}`).join('\n')}\n`, inDevVars.length ? { '.dev.vars': `${inDevVars.map(([k, v]) => devVar(k, String(v))).join('\n')}\n` } : {})
  return { dir, source: secret ? '.dev.vars' : 'wrangler.toml' }
}

describe('check-config: each setting broken in each way', () => {
  it.each(BROKEN.map((c) => [`${c.setting}: ${c.how}`, c] as const))('%s: names it, prints no value, exits 1', async (_, c) => {
    const { dir, source } = projectFor(c)
    const { status, out, problems } = await check(dir, ['--no-remote'])
    expect(status, out).toBe(1)
    expect(problems.some(([from, p]) => from === source && c.problem.test(p)), out).toBe(true)
    expect(out).not.toContain(SECRET_MARK)
    expect(out).toMatch(/^check-config: \d+ problems? in /m)
  })

  it('a Rate Limiting binding a setting needs, missing from wrangler.toml, is a problem naming the binding', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'check-config-'))
    dirs.push(dir)
    writeFileSync(join(dir, 'wrangler.toml'), `${BARE}[vars]\nAUTH_MODE = "token"\nTHROTTLE_ANONYMOUS_PULLS = "true"\n`)
    const { status, problems } = await check(dir, ['--no-remote', '--no-dev-vars'])
    expect(status).toBe(1)
    expect(problems.map(([, p]) => p.split(':')[0])).toEqual([
      'SIGNIN_FAILURES_BY_ADDRESS', 'SIGNIN_FAILURES_BY_USER', 'SIGNIN_CHECKS_BY_ADDRESS', 'ANONYMOUS_PULLS_BY_ADDRESS',
    ])
  })

  it('a required secret missing from .dev.vars (AUTH_MODE "token" in wrangler.toml) is a problem of .dev.vars', async () => {
    const dir = project('[vars]\nAUTH_MODE = "token"\n', { '.dev.vars': "AUTH_RULES='[]'\n" })
    const { status, problems } = await check(dir, ['--no-remote'])
    expect(status).toBe(1)
    expect(problems).toEqual([['.dev.vars', 'AUTH_TOKEN_SECRET: must be set: AUTH_MODE is "token": locally, put it in .dev.vars']])
    expect(MISSING[0]!.problem.test('AUTH_TOKEN_SECRET: must be set: AUTH_MODE is "token"')).toBe(true)
  })

  it('a secret written into [vars] is a problem, its value never printed', async () => {
    const { status, out, problems } = await check(project(`[vars]\nAUTH_TOKEN_SECRET = "${SECRET_MARK.repeat(5)}"\n`), ['--no-remote'])
    expect(status).toBe(1)
    expect(problems).toEqual([['wrangler.toml', expect.stringMatching(/^AUTH_TOKEN_SECRET: is a secret: set it with `npx wrangler secret put`, not in \[vars\]/)]])
    expect(out).not.toContain(SECRET_MARK)
  })

  it('reports each problem once, and every problem of a file', async () => {
    const dir = project('[vars]\nREAD_ONLY = "yes"\nRETENTION = "{}"\n', { '.dev.vars': `AUTH_USERS='{"alice":"${SECRET_MARK}"}'\nMAX_CHUNK_BYTES=12\n` })
    const { status, problems } = await check(dir, ['--no-remote'])
    expect(status).toBe(1)
    expect(problems.map(([from, p]) => `${from}: ${p.split(':')[0]}`).sort()).toEqual([
      '.dev.vars: AUTH_USERS.alice', '.dev.vars: MAX_CHUNK_BYTES', 'wrangler.toml: READ_ONLY', 'wrangler.toml: RETENTION',
    ])
  })
})

describe('check-config: what it reads', () => {
  it('--env reads [env.<name>.vars] alone (vars are not inherited), and names the environment', async () => {
    const dir = project('[vars]\nREAD_ONLY = "false"\n[env.staging.vars]\nREAD_ONLY = "nope"\n[env.prod]\nworkers_dev = false\n')
    expect((await check(dir, ['--no-remote'])).status).toBe(0)
    const staging = await check(dir, ['--no-remote', '--env', 'staging'])
    expect(staging.status).toBe(1)
    expect(staging.problems).toEqual([['wrangler.toml [env.staging]', 'READ_ONLY: must be "true" or "false"']])
    const prod = await check(dir, ['--no-remote', '-e', 'prod'])
    expect(prod.status).toBe(0)
    expect(prod.out).toContain('note: wrangler.toml [env.prod] has no [env.prod.vars]: vars are not inherited, so every setting takes its default there')
  })

  it('an environment the file does not define is an error', async () => {
    const { status, err } = await check(project('[vars]\n'), ['--no-remote', '--env', 'nope'])
    expect(status).toBe(1)
    expect(err).toContain('No environment found in configuration with name "nope"')
  })

  it('reads .dev.vars.<env> instead of .dev.vars with --env, as wrangler dev does', async () => {
    const dir = project('[vars]\n[env.staging.vars]\nAUTH_MODE = "none"\n', { '.dev.vars': 'READ_ONLY=yes\n', '.dev.vars.staging': 'READ_ONLY=true\n' })
    expect((await check(dir, ['--no-remote'])).problems).toEqual([['.dev.vars', 'READ_ONLY: must be "true" or "false"']])
    const staging = await check(dir, ['--no-remote', '--env', 'staging'])
    expect(staging.status).toBe(0)
    expect(staging.out).toContain('in wrangler.toml [env.staging], .dev.vars.staging: no problem')
  })

  it('--no-dev-vars checks what deploys alone', async () => {
    const dir = project('[vars]\n', { '.dev.vars': 'READ_ONLY=yes\n' })
    expect((await check(dir, ['--no-remote'])).status).toBe(1)
    expect((await check(dir, ['--no-remote', '--no-dev-vars'])).status).toBe(0)
  })

  it('reads .dev.vars with dotenv rules and no expansion: a $ stays a $, a \\$ a backslash and a $', async () => {
    const dir = project('[vars]\nAUTH_MODE = "token"\n', { '.dev.vars': `AUTH_TOKEN_SECRET=local-development-secret-at-least-32-characters\nAUTH_USERS='{"alice":"${HASH}"}'\n` })
    expect((await check(dir, ['--no-remote'])).status).toBe(0)
    writeFileSync(join(dir, '.dev.vars'), `AUTH_TOKEN_SECRET=local-development-secret-at-least-32-characters\nAUTH_USERS='{"alice":"${HASH.replaceAll('$', '\\$')}"}'\n`)
    const escaped = await check(dir, ['--no-remote'])
    expect(escaped.problems).toEqual([['.dev.vars', expect.stringMatching(/^AUTH_USERS: not valid JSON: it contains \\\$/)]])
    expect(escaped.out).not.toContain('aHVudGVy')
  })

  it('names what it does not know, without failing (a typo of a setting reads as its default)', async () => {
    const { status, out } = await check(project('[vars]\nREAD_ONLLY = "true"\n'), ['--no-remote'])
    expect(status).toBe(0)
    expect(out).toContain('note: wrangler.toml: READ_ONLLY is not a setting this registry reads (a typo?)')
  })
})

describe('check-config: deployed secrets', () => {
  const tokenAuth = () => project('[vars]\nAUTH_MODE = "token"\n')

  it('says which secrets to put, and that it did not ask (--no-remote)', async () => {
    const { status, out } = await check(tokenAuth(), ['--no-remote'])
    expect(status).toBe(0)
    expect(out).toContain('note: AUTH_TOKEN_SECRET must be set on the deployed worker (AUTH_MODE is "token"): npx wrangler secret put AUTH_TOKEN_SECRET (not checked: --no-remote)')
  })

  it('fails when `wrangler secret list` answers without it; passes when it lists it', async () => {
    const missing = await check(tokenAuth(), [], { secretList: async () => new Set(['UPLOAD_SECRET']) })
    expect(missing.status).toBe(1)
    expect(missing.problems).toEqual([['deployed worker', 'AUTH_TOKEN_SECRET: must be set: AUTH_MODE is "token", and `wrangler secret list` does not list it: npx wrangler secret put AUTH_TOKEN_SECRET']])
    expect((await check(tokenAuth(), [], { secretList: async () => new Set(['AUTH_TOKEN_SECRET']) })).status).toBe(0)
  })

  it('never fails because it cannot ask (no network, no login)', async () => {
    const offline = await check(tokenAuth(), [], { secretList: async () => { throw new Error('fetch failed') } })
    expect(offline.status).toBe(0)
    expect(offline.out).toContain('(not checked: wrangler secret list: fetch failed)')
  })

  it('asks the real wrangler, which here has neither network nor login: a note, exit 0', () => {
    const dir = tokenAuth()
    const home = mkdtempSync(join(tmpdir(), 'no-login-'))
    dirs.push(home)
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CLOUDFLARE_')))
    const run = spawnSync(process.execPath, [join(root, 'scripts/check-config.mjs'), '--config', join(dir, 'wrangler.toml')], {
      env: { ...env, HOME: home, XDG_CONFIG_HOME: home, WRANGLER_SEND_METRICS: 'false' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    })
    expect(run.status, run.stdout + run.stderr).toBe(0)
    expect(run.stdout).toMatch(/note: AUTH_TOKEN_SECRET must be set on the deployed worker \(AUTH_MODE is "token"\): npx wrangler secret put AUTH_TOKEN_SECRET \(not checked: wrangler secret list: .+\)/)
  })
})

describe('check-config: good configurations pass', () => {
  it('wrangler.toml as shipped (the command line, as `npm run check-config` runs it)', () => {
    const run = spawnSync(process.execPath, [join(root, 'scripts/check-config.mjs'), '--config', join(root, 'wrangler.toml'), '--no-remote', '--no-dev-vars'], { encoding: 'utf8' })
    expect(run.status, run.stdout + run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^check-config: \d+ settings and secrets checked in .*wrangler\.toml: no problem$/m)
  })

  it("the examples in wrangler.toml's comments", async () => {
    // `#   NAME = '…'` or `#   NAME = '''[` … `#   ]'''`: the lines as an operator uncomments them.
    const lines = readFileSync(join(root, 'wrangler.toml'), 'utf8').split('\n')
    const examples: string[] = []
    lines.forEach((line, i) => {
      if (!/^#\s+[A-Z][A-Z0-9_]+ = /.test(line)) return
      const block = [line]
      if (line.endsWith("'''[")) for (let j = i + 1; j < lines.length && !block.at(-1)!.includes("]'''"); j++) block.push(lines[j]!)
      examples.push(block.map((l) => l.replace(/^#\s{0,3}/, '')).join('\n'))
    })
    expect(examples.map((e) => e.split(' ')[0])).toEqual(expect.arrayContaining(['AUTH_RULES', 'AUTH_OIDC', 'UPSTREAMS', 'RETENTION']))
    for (const example of examples) {
      const { status, out } = await check(project(`[vars]\n${example}\n`), ['--no-remote'])
      expect(status, `${example}\n${out}`).toBe(0)
    }
  })

  it("every [vars] block of the docs' toml examples", async () => {
    let seen = 0
    for (const page of ['authentication.md', 'pull-through-cache.md', 'garbage-collection.md', 'settings.md']) {
      const text = readFileSync(join(root, 'docs', page), 'utf8')
      for (const [, block] of text.matchAll(/```toml\n([\s\S]*?)```/g)) {
        if (!block!.includes('[vars]')) continue
        seen++
        const { status, out } = await check(project(block!), ['--no-remote'])
        expect(status, `${page}:\n${block}\n${out}`).toBe(0)
      }
    }
    expect(seen).toBeGreaterThanOrEqual(3)
  })

  it("docs/garbage-collection.md's RETENTION and IMMUTABLE_TAGS examples", async () => {
    const text = readFileSync(join(root, 'docs/garbage-collection.md'), 'utf8')
    const retention = /\*\*Retention\*\*[\s\S]*?e\.g\.\s*`([^`]+)`/.exec(text)![1]!
    const immutable = [.../\*\*Immutable tags\*\*([\s\S]*?)once set/.exec(text)![1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!).filter((s) => s !== 'IMMUTABLE_TAGS')
    expect(immutable).toEqual(['v*,stable', '["v*", {"repos": "prod/*", "tags": ["stable"]}]'])
    for (const value of immutable) expect((await check(project(`[vars]\nIMMUTABLE_TAGS = ${toml(value)}\n`), ['--no-remote'])).status).toBe(0)
    expect((await check(project(`[vars]\nRETENTION = ${toml(retention)}\n`), ['--no-remote'])).status).toBe(0)
  })

  it("docs/authentication.md's .dev.vars block, run as written (hash-password appending AUTH_USERS)", async () => {
    const text = readFileSync(join(root, 'docs/authentication.md'), 'utf8')
    const block = /cat >\.dev\.vars <<'EOF'\n([\s\S]*?)\nEOF\n(.*)\n/.exec(text)!
    expect(block[2]).toContain('npm run -s hash-password -- alice >>.dev.vars')
    const dir = project('[vars]\n', { '.dev.vars': `${block[1]}\n` })
    const line = execFileSync(process.execPath, [join(root, 'scripts/hash-password.mjs'), 'alice', '--iterations', '1000'], { input: 'correct horse\n', encoding: 'utf8' })
    writeFileSync(join(dir, '.dev.vars'), readFileSync(join(dir, '.dev.vars'), 'utf8') + line)
    const { status, out } = await check(dir, ['--no-remote'])
    expect(status, out).toBe(0)
    expect(out).not.toContain(line.split('$')[2]!)
  })
})

describe('npm run deploy', () => {
  it('splits the arguments: --env and --config to both, --no-remote and --no-dev-vars to check-config alone', () => {
    expect(splitArgs(['--env', 'prod', '--no-remote', '--dry-run', '-c=x.toml', '--outdir', 'dist'])).toEqual({
      check: ['--env', 'prod', '--no-remote', '-c=x.toml'],
      deploy: ['--env', 'prod', '--dry-run', '-c=x.toml', '--outdir', 'dist'],
    })
  })

  it('stops on a problem, deploying nothing', async () => {
    const dir = project('[vars]\nREAD_ONLY = "yes"\n')
    const deployed: string[][] = []
    let err = ''
    const status = await deploy(['--config', join(dir, 'wrangler.toml'), '--no-remote'], {
      settings,
      stdout: sink(() => {}),
      stderr: sink((s) => (err += s)),
      deploy: async (args: string[]) => (deployed.push(args), 0),
    })
    expect(status).toBe(1)
    expect(deployed).toEqual([])
    expect(err).toContain('deploy: stopped, nothing was deployed')
  })

  it('deploys when nothing is wrong, with wrangler deploy getting its own arguments', async () => {
    const dir = project('[vars]\nREAD_ONLY = "true"\n')
    const deployed: string[][] = []
    const status = await deploy(['--config', join(dir, 'wrangler.toml'), '--no-remote', '--dry-run'], {
      settings,
      stdout: sink(() => {}),
      deploy: async (args: string[]) => (deployed.push(args), 0),
    })
    expect(status).toBe(0)
    expect(deployed).toEqual([['--config', join(dir, 'wrangler.toml'), '--dry-run']])
  })

  it('runs the real wrangler deploy only after the check: a bad config builds nothing, a good one builds (--dry-run)', () => {
    const out = mkdtempSync(join(tmpdir(), 'deploy-out-'))
    dirs.push(out)
    const bad = project('[vars]\nRETENTION = "{}"\n')
    const stopped = spawnSync(process.execPath, [join(root, 'scripts/deploy.mjs'), '--config', 'wrangler.toml', '--no-remote', '--dry-run', '--outdir', join(out, 'bad')], { cwd: bad, encoding: 'utf8' })
    expect(stopped.status).toBe(1)
    expect(stopped.stdout).toContain('✗ wrangler.toml: RETENTION: must be a JSON array of rules')
    expect(existsSync(join(out, 'bad'))).toBe(false)
    const built = spawnSync(process.execPath, [join(root, 'scripts/deploy.mjs'), '--config', join(root, 'wrangler.toml'), '--no-remote', '--no-dev-vars', '--dry-run', '--outdir', join(out, 'good')], {
      encoding: 'utf8',
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
      timeout: 120_000,
    })
    expect(built.status, built.stdout + built.stderr).toBe(0)
    expect(existsSync(join(out, 'good/index.js'))).toBe(true)
  })
})

describe('the settings, documented', () => {
  it('docs/settings.schema.json is what `npm run settings-schema` makes now', () => {
    expect(readFileSync(join(root, 'docs/settings.schema.json'), 'utf8'), 'docs/settings.schema.json is stale: run `npm run settings-schema`').toBe(settingsSchemaText())
  })

  it('docs/settings.md names every setting and secret in its tables, and no other', () => {
    const text = readFileSync(join(root, 'docs/settings.md'), 'utf8')
    const named = new Set([...text.matchAll(/^\| ((?:`[A-Z][A-Z0-9_]+`(?:, )?)+) \|/gm)].flatMap((m) => m[1]!.split(', ').map((n) => n.replaceAll('`', ''))))
    expect([...named].sort()).toEqual([...settings.SETTING_NAMES].sort())
  })

  it('wrangler.toml [vars] sets every setting (each with its comment), and no secret', () => {
    const vars = /\n\[vars\]\n([\s\S]*?)\n\[\[/.exec(readFileSync(join(root, 'wrangler.toml'), 'utf8'))![1]!
    const set = [...vars.matchAll(/^([A-Z][A-Z0-9_]+) = /gm)].map((m) => m[1])
    expect(set.sort()).toEqual(Object.keys(settings.VARS).sort())
  })
})
