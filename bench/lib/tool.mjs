/**
 * The tool section: `edge-registry push` of a 300 MiB single-layer image in chunks against
 * skopeo's single-request push of the same image to the same registry (ours, `npm start` with
 * MAX_CHUNK_BYTES raised so skopeo's one PATCH is allowed), alternating, fresh image and
 * repositories per run, skopeo's blob-info cache cleared. The tool sends 90 MiB chunks (the
 * default MAX_CHUNK_BYTES a deployed registry advertises) and 50 MB chunks (the e2e's limit).
 */
import { spawn, spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { buildImage } from './images.mjs'
import { cpuOfAll } from './proc.mjs'
import { quiet } from './quiet.mjs'
import { median } from './speed.mjs'

const MiB = 1024 * 1024
const BLOB_INFO_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb'
/** The registry's setting for this section: over the image, so skopeo's single PATCH is accepted. */
export const TOOL_BENCH_MAX_CHUNK = String(1024 * MiB)
export const CHUNKS = { '90MiB': 90 * MiB, '50MB': 50_000_000 }
const GNU_TIME = spawnSync('sh', ['-c', 'command -v /usr/bin/time']).status === 0

/** Runs a command; wall seconds, and its peak RSS when GNU time is there. */
function timed(cmd, args, timeoutMs = 900_000) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint()
    const [bin, argv] = GNU_TIME ? ['/usr/bin/time', ['-f', 'maxrss=%M', cmd, ...args]] : [cmd, args]
    const child = spawn(bin, argv, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      const seconds = Number(process.hrtime.bigint() - start) / 1e9
      const rss = /maxrss=(\d+)/.exec(err)
      resolve({
        seconds,
        peakRssMiB: rss ? Number(rss[1]) / 1024 : null,
        ok: code === 0,
        retries: (err.match(/; retry \d+ from/g) ?? []).length,
        error: code === 0 ? null : `${cmd} exited ${code ?? signal}: ${err.trim().slice(-600)}`,
      })
    })
    child.on('error', (e) => resolve({ seconds: 0, peakRssMiB: null, ok: false, retries: 0, error: String(e) }))
  })
}

/**
 * `server`: ours, started with MAX_CHUNK_BYTES = TOOL_BENCH_MAX_CHUNK. Returns the runs, medians
 * and the ratio tool/skopeo per chunk size (goal: ≤ 1.2).
 */
export async function runTool({ root, server, runs, workDir, log }) {
  const bin = join(root, 'bin', 'edge-registry.mjs')
  const out = { label: 'single-layer 300 MiB', bytes: 0, registryMaxChunkBytes: Number(TOOL_BENCH_MAX_CHUNK), skopeo: { push: [], errors: [] }, tool: {} }
  out.skopeo.cpuSeconds = []
  for (const name of Object.keys(CHUNKS)) out.tool[name] = { chunkBytes: CHUNKS[name], push: [], cpuSeconds: [], peakRssMiB: [], retries: 0, errors: [] }
  // CPU seconds of every workerd under npm start (the worker, its simulators, wrangler's proxy).
  const workerdCpu = () => cpuOfAll(server.workerd().map((p) => p.pid))
  const stamp = Date.now().toString(36)
  const ok = (xs) => xs.filter((x) => typeof x === 'number').length
  const enough = () => ok(out.skopeo.push) >= runs && Object.values(out.tool).every((t) => ok(t.push) >= runs)
  for (let run = 0; run < 3 * runs && !enough(); run++) {
    const image = await buildImage(join(workDir, 'images', `tool-${run}`), 'v1', [[300 * MiB]])
    out.bytes = image.bytes
    const jobs = [
      ['skopeo', async () => {
        rmSync(BLOB_INFO_CACHE, { force: true })
        return timed('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${image.dir}:v1`, `docker://${server.host}/bench/tool-${stamp}-${run}-skopeo:v1`])
      }],
      ...Object.entries(CHUNKS).map(([name, bytes]) => [name, () =>
        timed('node', [bin, 'push', `oci:${image.dir}:v1`, `${server.host}/bench/tool-${stamp}-${run}-${name.toLowerCase()}:v1`, '--chunk-size', String(bytes)])]),
    ]
    // Rotate the order: no push always runs first, or always right after another (reversing
    // every other run left the 90 MiB push always in the middle).
    for (const [name, job] of [...jobs.slice(run % jobs.length), ...jobs.slice(0, run % jobs.length)]) {
      const load = await quiet(log)
      ;(name === 'skopeo' ? out.skopeo : out.tool[name]).loads ??= []
      ;(name === 'skopeo' ? out.skopeo : out.tool[name]).loads.push(load)
      const cpuBefore = workerdCpu()
      const r = await job()
      const cpu = workerdCpu() - cpuBefore
      const into = name === 'skopeo' ? out.skopeo : out.tool[name]
      into.push.push(r.ok ? r.seconds : null)
      into.cpuSeconds.push(r.ok ? cpu : null)
      if (!r.ok) into.errors.push(`run ${run}: ${r.error}`)
      if (name !== 'skopeo') {
        into.peakRssMiB.push(r.peakRssMiB)
        into.retries += r.retries
      }
      log(`tool: run ${run + 1} ${name === 'skopeo' ? 'skopeo (one PATCH)' : `tool (${name} chunks)`}: ${r.ok ? `${r.seconds.toFixed(2)} s, workerd CPU ${cpu.toFixed(2)} s, load ${os.loadavg()[0].toFixed(2)}${r.retries ? `, ${r.retries} chunk(s) retried` : ''}` : `FAILED ${r.error}`}`)
    }
    rmSync(image.dir, { recursive: true, force: true })
  }
  out.skopeo.pushMedian = median(out.skopeo.push)
  const perGiB = (cpu) => (typeof cpu === 'number' && out.bytes ? (cpu * 2 ** 30) / out.bytes : null)
  out.skopeo.cpuSecondsPerGiB = median(out.skopeo.cpuSeconds.map(perGiB))
  for (const t of Object.values(out.tool)) {
    t.pushMedian = median(t.push)
    t.cpuSecondsPerGiB = median(t.cpuSeconds.map(perGiB))
    t.peakRssMiBMax = Math.max(0, ...t.peakRssMiB.filter((x) => typeof x === 'number'))
    t.vsSkopeo = t.pushMedian && out.skopeo.pushMedian ? t.pushMedian / out.skopeo.pushMedian : null
    t.vsSkopeoPaired = median(paired(t.push, out.skopeo.push))
  }
  return out
}

/** tool / skopeo within each run (every run pushes with each, a few minutes apart at most); null where one failed. */
const paired = (tool, skopeo) => tool.map((x, i) => (typeof x === 'number' && typeof skopeo[i] === 'number' ? x / skopeo[i] : null))

const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d))

/** The printed lines for bench/results.json's `tool` key. */
export function toolReport(t) {
  const lines = [`TOOL: edge-registry push (chunked) vs skopeo (one PATCH), ${t.label} (${f(t.bytes / 1e6, 0)} MB), same registry (npm start, MAX_CHUNK_BYTES ${t.registryMaxChunkBytes}), median wall time; the goal is checked on the median of the per-run tool/skopeo (paired)`]
  const cpu = (r) => (r.cpuSecondsPerGiB === undefined ? '' : `; workerd CPU ${f(r.cpuSecondsPerGiB, 1)} s/GiB`)
  lines.push(`  skopeo: ${f(t.skopeo.pushMedian)} s (runs ${t.skopeo.push.map((x) => (x === null ? 'FAIL' : f(x))).join(' ')}${cpu(t.skopeo)})`)
  for (const [name, r] of Object.entries(t.tool)) {
    const perRun = paired(r.push, t.skopeo.push)
    const ratio = r.vsSkopeoPaired ?? median(perRun)
    const goal = ratio === null ? 'no figure' : ratio <= 1.2 ? `pass (paired ${f(ratio)}× ≤ 1.2×)` : `MISS (paired ${f(ratio)}× > 1.2×)`
    lines.push(`  tool, ${name} chunks: ${f(r.pushMedian)} s (runs ${r.push.map((x) => (x === null ? 'FAIL' : f(x))).join(' ')}; per run ×${perRun.map((x) => f(x)).join(' ')}; ratio of medians ${f(r.vsSkopeo)}×; ${r.retries} chunk retries; peak RSS ${f(r.peakRssMiBMax, 0)} MiB${cpu(r)}): ${goal}`)
  }
  const loads = [t.skopeo, ...Object.values(t.tool)].flatMap((r) => r.loads ?? [])
  if (loads.length) lines.push(`  1-minute load before each timed push: ${loads.map((l) => f(l)).join(' ')}`)
  return lines.join('\n')
}
