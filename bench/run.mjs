#!/usr/bin/env node
/**
 * `npm run bench`: what a push and a pull cost, how fast real clients go, how much
 * memory a streamed upload takes, and how many manifest requests a second we answer.
 * Prints a table and merges the figures into bench/results.json (commit it with each
 * change that moves a number).
 *
 *   npm run bench                         every section
 *   npm run bench -- --only cost          one or more of: cost, speed, uploads, stages, memory, requests, tool (comma-separated)
 *   npm run bench -- --skip speed         all but these
 *   npm run bench -- --runs 5             runs per speed figure (median; default 3)
 *   npm run bench -- --from-head          run the committed HEAD (plus this bench/) from a snapshot,
 *                                         so edits in the work tree cannot reload wrangler mid-run
 *   npm run bench -- --port 8790 --dist-port 5055
 *   npm run bench -- --max-load 1.5       before each timed run, wait (30 s at a time, 10 min at most) until the
 *                                         1-minute load average is under this (default 1.5; 0: never wait)
 *
 * cost runs inside workerd (vitest pool workers) and needs nothing else. stages runs its own
 * worker (bench/stages/) under `wrangler dev`. speed, uploads, memory, tool and requests start
 * `npm start` themselves (fresh state, own session, always stopped), and
 * install what they need from Debian when it is missing: skopeo, docker-registry, wrk.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, cpSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCost } from './lib/cost.mjs'
import { runMemory } from './lib/memory.mjs'
import { stopAll } from './lib/proc.mjs'
import { report } from './lib/report.mjs'
import { runRequests } from './lib/requests.mjs'
import { startDistribution, startOurs } from './lib/servers.mjs'
import { runSpeed } from './lib/speed.mjs'
import { runTool, TOOL_BENCH_MAX_CHUNK } from './lib/tool.mjs'
import { setQuiet } from './lib/quiet.mjs'
import { runStages } from './lib/stages.mjs'
import { runUploads } from './lib/uploads.mjs'

const SECTIONS = ['cost', 'speed', 'uploads', 'stages', 'memory', 'requests', 'tool']
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..')
const resultsFile = join(repoRoot, 'bench', 'results.json')
const log = (msg) => console.error(`[bench] ${msg}`)

const opts = parseArgs(process.argv.slice(2))
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, async () => {
    log(`${sig}: stopping what the bench started`)
    await stopAll()
    process.exit(130)
  })
}

try {
  await main()
} finally {
  await stopAll()
}

function parseArgs(args) {
  const o = { sections: [...SECTIONS], runs: 3, port: 8790, distPort: 5055, fromHead: false, keep: false }
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s)
    const value = () => inline ?? args[++i]
    if (flag === '--only') o.sections = value().split(',').map((s) => s.trim())
    else if (flag === '--skip') {
      const skip = value().split(',').map((s) => s.trim())
      o.sections = o.sections.filter((s) => !skip.includes(s))
    } else if (flag === '--runs') o.runs = Math.max(1, Number(value()))
    else if (flag === '--port') o.port = Number(value())
    else if (flag === '--dist-port') o.distPort = Number(value())
    else if (flag === '--from-head') o.fromHead = true
    else if (flag === '--keep') o.keep = true
    else if (flag === '--max-load') o.maxLoad = Number(value())
    else if (flag === '--help' || flag === '-h') {
      console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0].replace(/^#!.*\n\/\*\*\n?/, '').replace(/^ \* ?/gm, ''))
      process.exit(0)
    } else throw new Error(`unknown argument ${args[i]} (try --help)`)
  }
  setQuiet({ maxLoad: o.maxLoad })
  for (const s of o.sections) if (!SECTIONS.includes(s)) throw new Error(`unknown section ${s}; sections: ${SECTIONS.join(', ')}`)
  return o
}

function git(...args) {
  try {
    return execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8' }).trim()
  } catch {
    return null
  }
}

/** HEAD's files plus the current bench/, with node_modules linked: immune to work-tree edits. */
function snapshot(workDir) {
  const dir = join(workDir, 'head')
  mkdirSync(dir, { recursive: true })
  execFileSync('sh', ['-c', `git archive HEAD | tar -x -C '${dir}'`], { cwd: repoRoot })
  rmSync(join(dir, 'bench'), { recursive: true, force: true })
  cpSync(join(repoRoot, 'bench'), join(dir, 'bench'), { recursive: true, filter: (p) => !p.endsWith('results.json') })
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'))
  if (!existsSync(join(dir, 'scripts', 'start.mjs')) && existsSync(join(repoRoot, 'scripts', 'start.mjs'))) {
    log('HEAD has no scripts/start.mjs yet: using the work tree\'s')
    cpSync(join(repoRoot, 'scripts', 'start.mjs'), join(dir, 'scripts', 'start.mjs'))
  }
  return dir
}

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

/** Installs missing Debian packages (the services they ship are not started). */
function ensureApt(packages) {
  const missing = packages.filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg)
  if (!missing.length) return
  log(`installing from Debian: ${missing.join(' ')}`)
  const sudo = process.getuid?.() === 0 ? [] : ['sudo']
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  // policy-rc.d 101: package scripts must not start docker-registry's own service.
  const policy = '/usr/sbin/policy-rc.d'
  const ownPolicy = !existsSync(policy) && sudo.length === 0
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 })
  try {
    for (const cmd of [['apt-get', 'update'], ['apt-get', 'install', '-y', '--no-install-recommends', ...missing]]) {
      const r = spawnSync(sudo[0] ?? cmd[0], [...sudo.slice(1), ...(sudo.length ? cmd : cmd.slice(1))], { stdio: 'inherit', env })
      if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed`)
    }
  } finally {
    if (ownPolicy) rmSync(policy, { force: true })
  }
}

function version(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] || null
}

async function main() {
  const workDir = mkdtempSync(join(os.tmpdir(), 'edge-registry-bench-'))
  log(`sections: ${opts.sections.join(', ')}; scratch: ${workDir}`)
  const root = opts.fromHead ? snapshot(workDir) : repoRoot
  const commit = git('rev-parse', 'HEAD')
  const dirty = !opts.fromHead && Boolean(git('status', '--porcelain', '--', 'src', 'wrangler.toml', 'scripts'))
  if (dirty) log('the work tree has uncommitted changes in src/ or scripts/: the figures are for those (use --from-head for HEAD)')
  const stamp = () => ({ measuredAt: new Date().toISOString(), commit, dirty, loadAverage: os.loadavg() })
  const fresh = {}

  try {
    if (opts.sections.includes('cost')) {
      fresh.cost = { ...(await runCost({ root, log, workDir })), ...stamp() }
      save(fresh)
    }
    const needs = opts.sections.filter((s) => s !== 'cost')
    if (needs.length) {
      const pkgs = []
      if (needs.includes('speed')) pkgs.push(['skopeo', 'skopeo'], ['docker-registry', 'docker-registry'])
      if (needs.includes('requests')) pkgs.push(['wrk', 'wrk'], ['docker-registry', 'docker-registry'])
      if (needs.includes('tool')) pkgs.push(['skopeo', 'skopeo'])
      ensureApt(pkgs)
    }
    if (opts.sections.includes('speed') || opts.sections.includes('requests')) {
      const ours = await startOurs({ root, port: opts.port, dir: join(workDir, 'ours') })
      const dist = await startDistribution({ port: opts.distPort, dir: join(workDir, 'distribution') })
      try {
        if (opts.sections.includes('speed')) {
          const images = await runSpeed({ registries: [ours, dist], runs: opts.runs, workDir, log })
          fresh.speed = {
            runs: opts.runs,
            skopeo: version('skopeo', ['--version']),
            distribution: version('docker-registry', ['--version']),
            images,
            ...stamp(),
          }
          save(fresh)
        }
        if (opts.sections.includes('requests')) {
          fresh.requests = {
            ...(await runRequests({
              targets: [
                { name: 'ours (http)', base: `http://${ours.host}` },
                { name: 'ours (https)', base: `https://${ours.host}` },
                { name: 'distribution (https)', base: `${dist.scheme}://${dist.host}` },
              ],
              workDir,
              log,
            })),
            wrk: version('wrk', ['--version']),
            ...stamp(),
          }
          save(fresh)
        }
      } finally {
        await ours.stop()
        await dist.stop()
      }
    }
    if (opts.sections.includes('uploads')) {
      const server = await startOurs({ root, port: opts.port, dir: join(workDir, 'ours-uploads') })
      try {
        fresh.uploads = { ...(await runUploads({ server, runs: opts.runs, log, workDir })), ...stamp() }
        save(fresh)
      } finally {
        await server.stop()
      }
    }
    if (opts.sections.includes('stages')) {
      fresh.stages = { ...(await runStages({ root, port: opts.port, runs: opts.runs, workDir, log })), ...stamp() }
      save(fresh)
    }
    if (opts.sections.includes('tool')) {
      // Its own registry: MAX_CHUNK_BYTES over the image, so skopeo's single PATCH is allowed.
      const server = await startOurs({ root, port: opts.port, dir: join(workDir, 'ours-tool'), args: ['--var', `MAX_CHUNK_BYTES:${TOOL_BENCH_MAX_CHUNK}`] })
      try {
        fresh.tool = { ...(await runTool({ root, server, runs: opts.runs, workDir, log })), ...stamp() }
        save(fresh)
      } finally {
        await server.stop()
      }
    }
    if (opts.sections.includes('memory')) {
      const server = await startOurs({ root, port: opts.port, dir: join(workDir, 'ours-memory') })
      try {
        fresh.memory = { ...(await runMemory({ server, log })), ...stamp() }
        save(fresh)
      } finally {
        await server.stop()
      }
    }
  } finally {
    if (!opts.keep) rmSync(workDir, { recursive: true, force: true })
    else log(`kept ${workDir}`)
  }
  const merged = save(fresh)
  console.log('\n' + report(merged))
  console.log(`\nwritten: ${resultsFile}`)
}

/** Merges this run's sections into bench/results.json (sections not run keep their last figures). */
function save(fresh) {
  let old = {}
  try {
    old = JSON.parse(readFileSync(resultsFile, 'utf8'))
  } catch {}
  const merged = {
    ...old,
    ...fresh,
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.type()} ${os.release()}` },
  }
  const ordered = {}
  for (const k of ['machine', ...SECTIONS]) if (merged[k]) ordered[k] = merged[k]
  // Keys other benches write (e.g. `gc`, bench/gc.mjs) stay as they were.
  for (const k of Object.keys(merged)) if (!(k in ordered)) ordered[k] = merged[k]
  writeFileSync(resultsFile, JSON.stringify(ordered, null, 2) + '\n')
  return ordered
}
