/**
 * The stages section: where an upload's time and CPU go, one stage at a time. A worker of its
 * own (bench/stages/worker.ts, run by `wrangler dev` straight, no front) takes the same 300 MiB
 * body from `curl -T file` at each stage: read only, read and hash (native SHA-256, SHA-512),
 * handed to R2 as it is, pumped to R2 through a FixedLengthStream (with and without `onlyIf`, with
 * the native hash), into 10 MiB multipart parts; and the object read back (a pull). Per stage:
 * wall seconds and the CPU seconds of the workerd processes (the worker, the R2 simulator, which
 * runs in the same process, and wrangler's proxy), median of `runs`, order rotated.
 */
import { randomBytes, createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { curl } from './curl.mjs'
import { cmdlineOf, commOf, cpuOfAll, descendants, startDetached, stopTree } from './proc.mjs'
import { quiet } from './quiet.mjs'
import { freePorts } from './servers.mjs'
import { median } from './speed.mjs'

const MiB = 1024 * 1024
const BYTES = 300 * MiB
export const STAGES = [
  'read-as-it-comes', 'read', 'read+native-sha256', 'read+native-sha512',
  'r2-put-body', 'r2-put-body+checksum', 'r2-put-pumped', 'r2-put-pumped+onlyIf', 'r2-put-pumped+onlyIf+native-sha256',
  'r2-multipart-10MiB+native-sha256',
]

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** curl `args`; rejects unless it answered 200. */
async function curl200(args) {
  const { status } = await curl(args)
  if (status !== 200) throw new Error(`curl: ${status}`)
}

export async function runStages({ root, port: wanted, runs, workDir, log }) {
  const dir = join(workDir, 'stages')
  mkdirSync(dir, { recursive: true })
  const port = await freePorts(wanted)
  const child = startDetached(join(root, 'node_modules', '.bin', 'wrangler'), [
    'dev', '--config', join(root, 'bench', 'stages', 'wrangler.toml'), '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(port + 10000), '--persist-to', join(dir, 'state'),
  ], { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1', CI: '1' }, logFile: join(dir, 'wrangler.log') })
  try {
    const base = `http://127.0.0.1:${port}`
    for (let i = 0; ; i++) {
      try {
        const res = await fetch(`${base}/`, { method: 'POST', body: '' })
        await res.arrayBuffer()
        break
      } catch {
        if (i > 240) throw new Error(`the stages worker did not start; see ${join(dir, 'wrangler.log')}`)
        await sleep(500)
      }
    }
    const workerd = () => descendants(child.pid).filter((p) => commOf(p) === 'workerd')
    const cpu = () => cpuOfAll(workerd())
    const file = join(dir, 'blob')
    const bytes = randomBytes(BYTES)
    const out = { bytes: BYTES, runs, workerd: workerd().map((pid) => cmdlineOf(pid).slice(0, 3).join(' ')), stages: {}, loads: [] }
    for (const s of [...STAGES, 'r2-get']) out.stages[s] = { seconds: [], cpu: [] }
    const timed = async (stage, args) => {
      out.loads.push(await quiet(log))
      const c0 = cpu()
      const t0 = process.hrtime.bigint()
      await curl200(args)
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9
      const used = cpu() - c0
      out.stages[stage].seconds.push(seconds)
      out.stages[stage].cpu.push(used)
      log(`stages: ${stage}: ${seconds.toFixed(2)} s, workerd CPU ${used.toFixed(2)} s, load ${os.loadavg()[0].toFixed(2)}`)
    }
    for (let run = 0; run < runs; run++) {
      randomBytes(32).copy(bytes, 0)
      writeFileSync(file, bytes)
      const sha256 = createHash('sha256').update(bytes).digest('hex')
      const order = STAGES.map((_, i) => STAGES[(i + run) % STAGES.length])
      for (const stage of order) await timed(stage, ['-X', 'POST', '-T', file, `${base}/${stage}?sha256=${sha256}`])
      const key = `pull-${run}`
      await curl200(['-X', 'POST', '-T', file, `${base}/r2-put-body?key=${key}`])
      await timed('r2-get', [`${base}/?key=${key}`])
    }
    for (const s of Object.values(out.stages)) {
      s.secondsMedian = median(s.seconds)
      s.cpuMedian = median(s.cpu)
      s.cpuSecondsPerGiB = s.cpuMedian === null ? null : (s.cpuMedian * 1024 * MiB) / BYTES
    }
    return out
  } finally {
    await stopTree(child)
  }
}

const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d))

export function stagesReport(s) {
  const lines = [`STAGES: one ${f(s.bytes / MiB, 0)} MiB body (curl -T file, straight to wrangler dev, no front) through one stage of an upload each (bench/stages/worker.ts), median of ${s.runs}; CPU = every workerd under wrangler dev (the worker and the R2 simulator share one)`]
  const rows = [['stage', 'seconds', 'workerd CPU s', 'CPU s/GiB', 'runs (s)']]
  for (const [name, r] of Object.entries(s.stages)) rows.push([name, f(r.secondsMedian), f(r.cpuMedian), f(r.cpuSecondsPerGiB, 1), r.seconds.map((x) => f(x)).join(' ')])
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
  const line = (r) => r.map((c, i) => (i === 0 || i === 4 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ')
  lines.push(line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line))
  lines.push(`1-minute load before each stage: ${s.loads.map((l) => f(l)).join(' ')}`)
  return lines.join('\n')
}
