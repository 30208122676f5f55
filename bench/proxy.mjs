#!/usr/bin/env node
/**
 * `node bench/proxy.mjs`: what a pull through the pull-through cache costs and how long it takes.
 *
 * - cost: bench/proxy/pull.bench-test.ts inside workerd (simulated R2/KV, a fake upstream that
 *   counts what it is asked): the reference image (shared/COST.md) pulled cold, warm, warm at
 *   another location, after the tag TTL; and the upstream's requests for 10 pulls of one tag
 *   within the TTL (target: at most 1 manifest GET).
 * - time: CNCF distribution (Debian's docker-registry) as the upstream and `npm start` with
 *   UPSTREAMS pointing at it; skopeo pulls the reference image through the cache, cold (a new
 *   repository each run) and warm, median of 3.
 *
 * Merges its figures into bench/results.json under "proxy". `--only cost` skips the timing.
 * Ports: PROXY_BENCH_PORT (8840) for the registry, +5 (8845) for the upstream.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { classify, usd } from './lib/cost.mjs'
import { buildImage } from './lib/images.mjs'
import { startDetached, stopTree } from './lib/proc.mjs'
import { startDistribution } from './lib/servers.mjs'
import { median } from './lib/speed.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const resultsFile = join(root, 'bench', 'results.json')
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null
const PORT = Number(process.env.PROXY_BENCH_PORT ?? 8840)
const MiB = 1024 * 1024
const RUNS = 3
const round = (x) => Math.round(x * 100) / 100
const log = (s) => console.error(`[proxy-bench] ${s}`)

function run(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint()
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], ...opts })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('exit', (code) => resolve({ code, out, seconds: Number(process.hrtime.bigint() - start) / 1e9 }))
  })
}

async function cost() {
  const { code, out } = await run('npx', ['vitest', 'run', '--config', 'bench/vitest.proxy.config.ts'], { env: { ...process.env, NO_COLOR: '1' } })
  const lines = out.split('\n').filter((l) => l.includes('BENCH_PROXY {'))
  if (!lines.length) throw new Error(`no BENCH_PROXY line (vitest exit ${code}):\n${out.slice(-3000)}`)
  const workloads = {}
  for (const line of lines) {
    const w = JSON.parse(line.slice(line.indexOf('BENCH_PROXY {') + 'BENCH_PROXY '.length))
    const entry = { ok: w.ok, upstream: w.upstream }
    if (w.byMethod) {
      const c = classify(w.byMethod)
      Object.assign(entry, { requests: w.requests, calls: { r2A: c.r2A, r2B: c.r2B, kvRead: c.kvRead, kvWrite: c.kvWrite }, cache: { match: c.cacheMatch, hit: c.cacheHit, put: c.cachePut }, usdPerMillion: round(usd(c)) })
    }
    workloads[w.workload] = entry
  }
  return workloads
}

async function time(work) {
  const upstream = await startDistribution({ port: PORT + 5, dir: join(work, 'upstream'), tls: false })
  const upstreams = JSON.stringify([{ prefix: 'up', url: `http://${upstream.host}` }])
  const logFile = join(work, 'npm-start.log')
  const ours = startDetached('npm', ['start', '--', '--persist-to', join(work, 'state'), '--var', `UPSTREAMS:${upstreams}`], {
    cwd: root,
    env: { ...process.env, PORT: String(PORT), NO_COLOR: '1', CI: '1', WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
    logFile,
  })
  try {
    for (let i = 0; i < 60; i++) {
      const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${PORT}/v2/`])
      if (r.out === '200') break
      await new Promise((res) => setTimeout(res, 1000))
    }
    const skopeo = (args) => {
      rmSync('/var/lib/containers/cache/blob-info-cache-v1.boltdb', { force: true })
      return run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', ...args])
    }
    const cold = []
    const warm = []
    const direct = []
    for (let i = 0; i < RUNS; i++) {
      // A new image each run (random layers): a cold pull must find none of its blobs in the registry.
      const image = join(work, `ref${i}`)
      await buildImage(image, 'latest', [[2 * MiB, 700 * 1024, 7 * MiB]])
      const repo = `bench/ref${i}-${Date.now().toString(36)}`
      const pushed = await skopeo([`oci:${image}:latest`, `docker://${upstream.host}/${repo}:latest`])
      if (pushed.code !== 0) throw new Error(`push to the upstream failed: ${pushed.out.slice(-500)}`)
      const pull = async (from, into) => {
        rmSync(into, { recursive: true, force: true })
        const r = await skopeo([`docker://${from}:latest`, `oci:${into}:latest`])
        if (r.code !== 0) throw new Error(`pull ${from} failed: ${r.out.slice(-500)}`)
        return r.seconds
      }
      direct.push(await pull(`${upstream.host}/${repo}`, join(work, 'direct')))
      cold.push(await pull(`127.0.0.1:${PORT}/up/${repo}`, join(work, 'cold')))
      warm.push(await pull(`127.0.0.1:${PORT}/up/${repo}`, join(work, 'warm')))
    }
    return { runs: RUNS, coldSeconds: round(median(cold)), warmSeconds: round(median(warm)), upstreamDirectSeconds: round(median(direct)), all: { cold: cold.map(round), warm: warm.map(round), direct: direct.map(round) } }
  } finally {
    await stopTree(ours)
    await upstream.stop()
  }
}

const work = mkdtempSync(join(tmpdir(), 'edge-registry-proxy-bench-'))
try {
  const results = { image: 'reference (config + 2 MiB, 700 KiB, 7 MiB layers)', at: new Date().toISOString() }
  log('cost (workerd)…')
  results.cost = await cost()
  if (only !== 'cost') {
    log('time (npm start + docker-registry + skopeo)…')
    results.time = await time(work)
  }
  const all = JSON.parse(readFileSync(resultsFile, 'utf8'))
  all.proxy = { ...(all.proxy ?? {}), ...results }
  writeFileSync(resultsFile, JSON.stringify(all, null, 2) + '\n')
  console.log(JSON.stringify(results, null, 2))
} finally {
  rmSync(work, { recursive: true, force: true })
}
