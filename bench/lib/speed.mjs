/**
 * The speed section: wall time of skopeo push and pull against ours and distribution,
 * alternating, fresh repositories and images, skopeo's blob-info cache cleared before
 * every call; and the floor (sha256sum + cp of the same bytes).
 *
 * Each image is pulled twice from each registry. The first pull (`pull`) is ours' cold one: it
 * reads R2 and fills the location's cache as it streams, which locally means miniflare's cache
 * simulator writes a second copy of every layer to disk on the same two cores. The second
 * (`pullAgain`) is served from that cache, as every later pull at a location is. For
 * distribution both pulls do the same work.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { buildImage } from './images.mjs'
import { cpuOfAll } from './proc.mjs'
import { quiet } from './quiet.mjs'

/** What is timed per image and registry: the push, the first pull (ours' cold one), the pull again right after. */
const OPS = ['push', 'pull', 'pullAgain']
const BLOB_INFO_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb'
const MiB = 1024 * 1024

/** The images measured: a ≥ 300 MB single-layer image and a two-platform index. */
export const IMAGES = {
  single: { label: 'single-layer 300 MiB', platforms: [[300 * MiB]] },
  multi: { label: 'two-platform (2×64 MiB + shared 4 MiB)', platforms: [[64 * MiB, { shared: 4 * MiB }], [64 * MiB, { shared: 4 * MiB }]] },
}

function timed(cmd, args, timeoutMs = 900_000) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint()
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d) => (err = (err + d).slice(-2000)))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      const seconds = Number(process.hrtime.bigint() - start) / 1e9
      resolve({ seconds, ok: code === 0, error: code === 0 ? null : `${cmd} exited ${code ?? signal}: ${err.trim().slice(-600)}` })
    })
    child.on('error', (e) => resolve({ seconds: 0, ok: false, error: String(e) }))
  })
}

export const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b)
  if (!s.length) return null
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

function skopeo(args) {
  rmSync(BLOB_INFO_CACHE, { force: true })
  return timed('skopeo', ['--insecure-policy', 'copy', '--quiet', ...args])
}

const push = (reg, image, repo, all) =>
  skopeo([...(all ? ['--all'] : []), '--dest-tls-verify=false', `oci:${image.dir}:${image.tag}`, `docker://${reg.host}/${repo}:${image.tag}`])
const pull = (reg, repo, tag, dest, all) =>
  skopeo([...(all ? ['--all'] : []), '--src-tls-verify=false', `docker://${reg.host}/${repo}:${tag}`, `oci:${dest}:${tag}`])

/** sha256sum then cp of every blob of the image: the floor a registry could reach. */
async function floor(image, dir) {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const hash = await timed('sha256sum', image.files)
  const copy = await timed('cp', [...image.files, dir])
  rmSync(dir, { recursive: true, force: true })
  return { sha256sum: hash.seconds, cp: copy.seconds, total: hash.seconds + copy.seconds }
}

const ROUTES = [
  [/\/blobs\/uploads\/$/, 'uploads'],
  [/\/blobs\/uploads\/[^/]+$/, 'upload session'],
  [/\/blobs\/[^/]+$/, 'blob'],
  [/\/manifests\/[^/]+$/, 'manifest'],
]

/**
 * Where ours spent its time: wrangler's request log (`[wrangler:info] PATCH /v2/… 202 Accepted (123ms)`)
 * summed per image and route. Time is from request start to response headers.
 */
export function serverTime(logFile) {
  const out = {}
  let text = ''
  try {
    text = readFileSync(logFile, 'utf8')
  } catch {
    return out
  }
  const line = /\[wrangler[^\]]*:info\] (\w+) (\/v2\/bench\/(\w+)-[^ ?]*)\S* (\d{3}) [^(]*\((\d+)ms\)/g
  for (const m of text.matchAll(line)) {
    const [, method, path, image, status, ms] = m
    const route = ROUTES.find(([re]) => re.test(path))?.[1] ?? 'other'
    const key = `${method} ${route}${status.startsWith('2') ? '' : ` ${status}`}`
    const r = ((out[image] ??= {})[key] ??= { requests: 0, ms: 0 })
    r.requests++
    r.ms += Number(ms)
  }
  return out
}

/**
 * `registries`: [ours, distribution] ({ name, host }). Returns per image: bytes, per registry
 * push/pull seconds of every run, medians, MB/s, and the floor.
 */
/** CPU seconds so far of every workerd under a registry we started (0 for distribution). */
function workerdCpu(reg) {
  return reg.workerd ? cpuOfAll(reg.workerd().map((p) => p.pid)) : 0
}

export async function runSpeed({ registries, runs, workDir, log }) {
  const out = {}
  for (const [key, spec] of Object.entries(IMAGES)) {
    out[key] = { label: spec.label, bytes: 0, platforms: spec.platforms.length, runs: [], floor: [], loads: [], paired: Object.fromEntries(OPS.map((op) => [op, []])) }
    for (const r of registries) out[key][r.name] = { push: [], pull: [], pullAgain: [], errors: [], ...(r.workerd ? { pushCpu: [], pullCpu: [], pullAgainCpu: [] } : {}) }
  }
  const stamp = Date.now().toString(36)
  // wrangler dev sometimes drops the request after a long upload (see the bench's report):
  // runs that fail are kept as failures and more are made, up to three times `runs`, until
  // every figure has `runs` successes.
  const successes = (m, op) => m[op].filter((x) => typeof x === 'number').length
  const enough = () => Object.values(out).every((res) => registries.every((r) => OPS.every((op) => successes(res[r.name], op) >= runs)))
  for (let run = 0; run < 3 * runs && !enough(); run++) {
    const order = run % 2 === 0 ? registries : [...registries].reverse()
    for (const [key, spec] of Object.entries(IMAGES)) {
      const all = spec.platforms.length > 1
      const image = await buildImage(join(workDir, 'images', `${key}-${run}`), 'v1', spec.platforms)
      const res = out[key]
      res.bytes = image.bytes
      const repo = `bench/${key}-${stamp}-${run}`
      const pushed = new Set()
      /** This run's seconds, by `${registry} ${op}` (for the paired ratios). */
      const thisRun = {}
      for (const reg of order) {
        res.loads.push(await quiet(log))
        const cpu = workerdCpu(reg)
        const r = await push(reg, image, repo, all)
        res[reg.name].pushCpu?.push(r.ok ? workerdCpu(reg) - cpu : null)
        if (r.ok) pushed.add(reg.name)
        res[reg.name].push.push(r.ok ? r.seconds : null)
        thisRun[`${reg.name} push`] = r.ok ? r.seconds : null
        if (!r.ok) res[reg.name].errors.push(`push run ${run}: ${r.error}`)
        log(`speed: ${key} run ${run + 1} push ${reg.name}: ${r.ok ? r.seconds.toFixed(2) + ' s' : 'FAILED ' + r.error} (load before ${res.loads.at(-1).toFixed(2)})`)
      }
      for (const op of ['pull', 'pullAgain']) {
        for (const reg of order) {
          if (!pushed.has(reg.name)) continue // nothing to pull
          const dest = join(workDir, 'pulled', `${key}-${reg.name}-${run}`)
          rmSync(dest, { recursive: true, force: true })
          mkdirSync(join(workDir, 'pulled'), { recursive: true })
          res.loads.push(await quiet(log))
          const cpu = workerdCpu(reg)
          const r = await pull(reg, repo, image.tag, dest, all)
          res[reg.name][`${op}Cpu`]?.push(r.ok ? workerdCpu(reg) - cpu : null)
          rmSync(dest, { recursive: true, force: true })
          res[reg.name][op].push(r.ok ? r.seconds : null)
          thisRun[`${reg.name} ${op}`] = r.ok ? r.seconds : null
          if (!r.ok) res[reg.name].errors.push(`${op} run ${run}: ${r.error}`)
          log(`speed: ${key} run ${run + 1} ${op} ${reg.name}: ${r.ok ? r.seconds.toFixed(2) + ' s' : 'FAILED ' + r.error} (load before ${res.loads.at(-1).toFixed(2)})`)
        }
      }
      // ours / distribution within the run: the two ran minutes apart at most, so a machine that
      // is slower for a while slows both (the uploads section's ratios are per run too).
      const [a, b] = registries.map((r) => r.name)
      for (const op of OPS) {
        const x = thisRun[`${a} ${op}`]
        const y = thisRun[`${b} ${op}`]
        res.paired[op].push(x && y ? x / y : null)
      }
      const f = await floor(image, join(workDir, 'floor'))
      res.floor.push(f)
      log(`speed: ${key} run ${run + 1} floor (sha256sum + cp): ${f.total.toFixed(2)} s`)
      rmSync(image.dir, { recursive: true, force: true })
    }
  }
  for (const res of Object.values(out)) {
    const floorMedian = median(res.floor.map((f) => f.total))
    res.floorMedian = { seconds: floorMedian, sha256sum: median(res.floor.map((f) => f.sha256sum)), cp: median(res.floor.map((f) => f.cp)) }
    for (const r of registries) {
      const m = res[r.name]
      for (const op of OPS) {
        m[`${op}Ok`] = `${successes(m, op)}/${m[op].length}`
        const s = median(m[op])
        m[`${op}Median`] = s
        m[`${op}MBps`] = s ? res.bytes / 1e6 / s : null
        if (m[`${op}Cpu`]) m[`${op}CpuSecondsPerGiB`] = median(m[`${op}Cpu`].map((c) => (typeof c === 'number' ? (c * 2 ** 30) / res.bytes : null)))
      }
    }
    const [ours, dist] = registries.map((r) => res[r.name])
    const ratio = (a, b) => (a && b ? a / b : null)
    res.ratios = {
      // The goal's figure: the median of the per-run ratios (see `paired`).
      ...Object.fromEntries(OPS.map((op) => [`${op}PairedVsDistribution`, median(res.paired[op])])),
      pushVsDistribution: ratio(ours.pushMedian, dist.pushMedian),
      pullVsDistribution: ratio(ours.pullMedian, dist.pullMedian),
      pullAgainVsDistribution: ratio(ours.pullAgainMedian, dist.pullAgainMedian),
      pullAgainVsFloor: ratio(ours.pullAgainMedian, floorMedian),
      pushVsFloor: ratio(ours.pushMedian, floorMedian),
      pullVsFloor: ratio(ours.pullMedian, floorMedian),
      distributionPushVsFloor: ratio(dist.pushMedian, floorMedian),
      distributionPullVsFloor: ratio(dist.pullMedian, floorMedian),
    }
    res.floorMBps = floorMedian ? res.bytes / 1e6 / floorMedian : null
  }
  const ours = registries.find((r) => r.logFile && r.name === 'ours')
  const times = ours ? serverTime(ours.logFile) : {}
  for (const [key, res] of Object.entries(out)) res.oursServerTime = times[key] ?? {}
  return out
}
