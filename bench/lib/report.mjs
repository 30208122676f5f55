/** The printed table: every section present in the results, targets marked pass/miss. */
import { stagesReport } from './stages.mjs'
import { toolReport } from './tool.mjs'

const MiB = 1024 * 1024
const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d))

/** "pass (52% of limit)" / "miss (+23% over)". */
export function verdict(value, limit, strict = false) {
  if (value === null || value === undefined || Number.isNaN(value)) return 'miss (no figure)'
  const ok = strict ? value < limit : value <= limit
  const pct = (value / limit) * 100
  return ok ? `pass (${pct.toFixed(0)}% of limit)` : `MISS (+${(pct - 100).toFixed(0)}% over)`
}

function table(rows, align) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
  const line = (r) => r.map((c, i) => (align?.[i] === 'l' ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ')
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n')
}

const COST_ROWS = [
  ['push', 'reference push (skopeo: HEAD, POST, PATCH+length, PUT; HEAD+PUT manifest)'],
  ['pull-cold', 'cold pull (manifest by tag, config, 3 layers)'],
  ['pull-warm', 'warm pull (same location, right after)'],
  ['pull-warm-links-expired', 'warm pull after the 60 s link cache expired'],
  ['isolate-first-upload', 'once per isolate: first upload request (loads the upload key)'],
  ['push-unchanged', 'push again, unchanged (every HEAD hits)'],
  ['push-docker', 'docker push (PATCH chunked, no length; HEAD after PUT)'],
  ['push-chunked', 'reference push with chunked PATCHes (skopeo compressing)'],
  ['push-monolithic', 'containerd push (POST + PUT with body)'],
  ['upload-64MiB-1MiB-chunks', '64 MiB blob, 1 MiB PATCHes with Content-Range'],
  ['upload-2GiB-95MB-chunks', '2 GiB blob, 95 MB PATCHes with Content-Range (23 chunks)'],
  ['upload-64MiB-16MiB-chunks', '64 MiB blob, 16 MiB PATCHes with Content-Range'],
  ['upload-64MiB-one-patch-chunked', '64 MiB blob, one chunked PATCH (docker)'],
  ['upload-64MiB-one-patch-length', '64 MiB blob, one PATCH with Content-Length'],
  ['push-1-endpoint', 'reference push, one NOTIFICATIONS endpoint (deliveries in one batch)'],
  ['push-1-endpoint-batch-per-message', 'reference push, one endpoint, each delivery in its own batch'],
  ['pull-warm-stats', 'warm pull with PULL_STATS (the count in a batch of 100)'],
  ['pull-warm-stats-alone', 'warm pull with PULL_STATS, the count alone in its batch'],
  ['delivery-retried-twice', 'one delivery answered 503, 503, then 204'],
]

export function costReport(cost) {
  const out = []
  const p = cost.prices
  out.push(`COST per million workloads at list prices (R2 class A $${p.r2A}/M, class B $${p.r2B}/M, KV read $${p.kvRead}/M, KV write/delete/list $${p.kvWrite}/M, Queue operation $${p.queue}/M; Cache API free)`)
  const rows = [['workload', 'req', 'R2 A', 'R2 B', 'KV rd', 'KV wr', 'Q ops', 'cache m/hit/put', 'R2 MiB w/r', '$/M', 'target']]
  const seen = new Set()
  const add = (key, label) => {
    const w = cost.workloads[key]
    if (!w) return
    seen.add(key)
    const t = cost.targets[key]
    rows.push([
      label + (w.ok ? '' : ' [INCOMPLETE: ' + [...w.failed, ...w.unknownMethods].join('; ') + ']'),
      w.requests, w.calls.r2A, w.calls.r2B, w.calls.kvRead, w.calls.kvWrite, w.calls.queue ?? 0,
      `${w.cache.match}/${w.cache.hit}/${w.cache.put}`,
      `${f(w.r2Bytes.written / MiB, 1)}/${f(w.r2Bytes.read / MiB, 1)}`,
      f(w.usdPerMillion), t !== undefined ? `≤ ${t}: ${w.ok ? verdict(w.usdPerMillion, t) : 'MISS (incomplete)'}` : '',
    ])
    if (cost.peer[key]) {
      const c = cost.peer[key]
      rows.push([`  peer (shared/COST.md)`, '', c.calls.r2A, c.calls.r2B, c.calls.kvRead, c.calls.kvWrite, '', 'no cache', '', f(c.usdPerMillion), ''])
    }
  }
  for (const [key, label] of COST_ROWS) add(key, label)
  for (const key of Object.keys(cost.workloads)) if (!seen.has(key)) add(key, key)
  out.push(table(rows, ['l']))
  out.push('')
  out.push('Where the calls go (per route, summed over the workload):')
  const rrows = [['workload', 'route', 'requests', 'R2 A', 'R2 B', 'KV rd', 'KV wr', '$/M', 'binding calls']]
  for (const key of ['push', 'pull-cold', 'pull-warm', 'push-docker', 'upload-64MiB-1MiB-chunks', 'upload-64MiB-16MiB-chunks', 'upload-64MiB-one-patch-chunked', 'upload-2GiB-95MB-chunks']) {
    const w = cost.workloads[key]
    if (!w) continue
    for (const [route, r] of Object.entries(w.routes)) {
      const calls = Object.entries(r.byMethod).filter(([k]) => !k.startsWith('bytes.')).map(([k, v]) => `${k}×${v}`).join(' ')
      rrows.push([key, route, r.requests, r.r2A, r.r2B, r.kvRead, r.kvWrite, f(r.usdPerMillion), calls || '—'])
    }
  }
  out.push(table(rrows, ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l']))
  return out.join('\n')
}

const OP_LABELS = { push: 'push', pull: 'pull (ours: cold, fills the cache)', pullAgain: 'pull again (ours: warm)' }

export function speedReport(speed) {
  const out = [`SPEED: ${speed.skopeo ?? "skopeo"}, wall time, median of the successful runs (${speed.runs} wanted; failed runs are retried up to ${3 * speed.runs} in all) (MB = 10^6 bytes); ours = npm start over TLS, distribution (${speed.distribution ?? ""}) over TLS, filesystem storage; floor = sha256sum + cp of the same blobs; paired = median of the per-run ours/dist (the two minutes apart at most), which the target is checked on`]
  const rows = [['image', 'op', 'ours s', 'ours MB/s', 'dist s', 'dist MB/s', 'floor s', 'floor MB/s', 'ours/dist', 'paired', 'ours/floor', 'target']]
  for (const [key, r] of Object.entries(speed.images)) {
    for (const op of ['push', 'pull', 'pullAgain']) {
      const ours = r.ours
      const dist = r.distribution
      const paired = r.ratios[`${op}PairedVsDistribution`]
      const ratio = paired ?? r.ratios[`${op}VsDistribution`] // results from before the paired ratios
      // issue 18's goals: skopeo push ≤ 3× distribution's, pull ≤ 1.2×.
      const limit = key === 'single' ? (op === 'push' ? 3 : 1.2) : null
      if (ours[`${op}Median`] === undefined) continue // results from before pullAgain
      rows.push([
        `${r.label} (${f(r.bytes / 1e6, 0)} MB)`, OP_LABELS[op],
        f(ours[`${op}Median`]), f(ours[`${op}MBps`], 0), f(dist[`${op}Median`]), f(dist[`${op}MBps`], 0),
        f(r.floorMedian.seconds), f(r.floorMBps, 0), f(r.ratios[`${op}VsDistribution`]), f(paired), f(r.ratios[`${op}VsFloor`]),
        limit ? `ours/dist ≤ ${limit}×: ${verdict(ratio, limit)}${Number((ours[`${op}Ok`] ?? '0').split('/')[0]) < speed.runs ? ` [only ${ours[`${op}Ok`]} runs ok]` : ''}` : '',
      ])
    }
  }
  out.push(table(rows, ['l', 'l']))
  for (const [key, r] of Object.entries(speed.images)) {
    const runs = (m, op) => `${m[op].map((x) => (x === null ? 'FAIL' : f(x))).join(' ')} (${m[`${op}Ok`] ?? '?'} ok)`
    const again = (m) => (m.pullAgain ? ` | pull again ${runs(m, 'pullAgain')}` : '')
    if (r.paired) out.push(`  ${key}: ours/dist per run: ${Object.entries(r.paired).map(([op, xs]) => `${op} ${xs.map((x) => (x === null ? '—' : f(x))).join(' ')}`).join(' | ')}`)
    out.push(`  ${key}: seconds per run: ours push ${runs(r.ours, 'push')} | pull ${runs(r.ours, 'pull')}${again(r.ours)}; distribution push ${runs(r.distribution, 'push')} | pull ${runs(r.distribution, 'pull')}${again(r.distribution)}; floor sha256sum ${f(r.floorMedian.sha256sum)} + cp ${f(r.floorMedian.cp)}`)
    if (r.ours.pushCpuSecondsPerGiB !== undefined) out.push(`  ${key}: ours' workerd CPU (every workerd under npm start) per GiB: push ${f(r.ours.pushCpuSecondsPerGiB, 1)} s, pull ${f(r.ours.pullCpuSecondsPerGiB, 1)} s${r.ours.pullAgainCpuSecondsPerGiB !== undefined ? `, pull again ${f(r.ours.pullAgainCpuSecondsPerGiB, 1)} s` : ''}`)
    if (r.loads?.length) out.push(`  ${key}: 1-minute load before each timed run: ${r.loads.map((l) => f(l, 2)).join(' ')}`)
    const st = Object.entries(r.oursServerTime ?? {}).sort((a, b) => b[1].ms - a[1].ms)
    if (st.length) out.push(`  ${key}: ours' time by route over all runs (wrangler log, to response headers): ${st.map(([k, v]) => `${k} ×${v.requests} ${f(v.ms / 1000, 1)} s`).join('; ')}`)
    for (const e of [...r.ours.errors, ...r.distribution.errors]) out.push(`  ${key} error: ${e.split(':')[0]}: …${e.slice(-160)}`)
  }
  return out.join('\n')
}

export function uploadsReport(u) {
  const goals = { 'patch-length': 1.3, 'patch-chunked': 2 }
  // Results written before issue 18 measured against Node's monolithic push (`vsMonolithic`).
  const floorName = u.floor ?? 'monolithic (Node client)'
  const out = [`UPLOADS: one ${f(u.bytes / 2 ** 20, 0)} MiB blob to ours by each upload path, same run, order rotated, median of ${u.runs}; vs the floor, ${floorName} (median of per-run ratios); workerd CPU: every workerd under npm start (worker, R2/KV simulators, wrangler's proxy)`]
  const rows = [['path', 'seconds', 'PATCH s', 'MB/s', 'vs floor', 'goal', 'workerd CPU s/GiB', 'runs (s)', 'runs ok']]
  const runs = (r) => r.total.map((x) => (typeof x === 'number' ? f(x, 2) : 'FAIL')).join(' ')
  for (const [path, r] of Object.entries(u.paths)) {
    const ok = r.total.filter((x) => typeof x === 'number').length
    const ratio = r.vsFloor ?? r.vsMonolithic
    rows.push([path, f(r.median, 2), f(r.patchMedian, 2), f(r.MBps, 0), ratio ? `${f(ratio, 2)}×` : '', goals[path] ? `≤ ${goals[path]}×: ${verdict(ratio, goals[path])}` : '', f(r.cpuSecondsPerGiB, 1), runs(r), `${ok}/${r.total.length}`])
  }
  if (u.pull) {
    const ok = u.pull.total.filter((x) => typeof x === 'number').length
    rows.push(['pull (curl GET)', f(u.pull.median, 2), '', f(u.pull.MBps, 0), '', '', f(u.pull.cpuSecondsPerGiB, 1), runs(u.pull), `${ok}/${u.pull.total.length}`])
  }
  out.push(table(rows, ['l']))
  if (u.loadBefore) out.push(`1-minute load before each push: ${u.loadBefore.map((l) => f(l.load, 2)).join(' ')}`)
  return out.join('\n')
}

export function memoryReport(m) {
  const out = ['MEMORY: VmHWM of the workerd that runs the worker (and, locally, the R2/KV/cache simulators) while streaming one PATCH; the figure is chunked 100 MiB → 1 GiB']
  const rows = [['step', 'seconds', 'MB/s', 'worker VmHWM MiB', 'Δ MiB', 'worker peak VmRSS MiB', 'proxy workerd VmHWM MiB', 'worker CPU s', 'CPU ms/MiB', 'note']]
  const proxies = m.processes.filter((p) => p.role !== 'worker').map((p) => p.pid)
  const base = m.processes.find((p) => p.role === 'worker').baseline.hwm
  rows.push(['baseline (after a 16 MiB warm-up)', '', '', f(base / MiB, 1), '', '', proxies.map((p) => f(m.processes.find((x) => x.pid === p).baseline.hwm / MiB, 1)).join(' '), '', '', ''])
  let prev = base
  for (const s of m.steps) {
    const delta = s.hwm[m.workerPid] - prev
    prev = s.hwm[m.workerPid]
    rows.push([`${s.label} (${s.framing ?? 'chunked'})`, f(s.seconds, 1), f(s.MBps, 0), f(s.hwm[m.workerPid] / MiB, 1), f(delta / MiB, 1), f(s.peakRssSampled[m.workerPid] / MiB, 1), proxies.map((p) => f(s.hwm[p] / MiB, 1)).join(' '),
      f(s.cpuSeconds?.[m.workerPid], 1), f(s.workerCpuMsPerMiB, 1), s.putRetried ? 'PUT got wrangler 503, retried' : ''])
  }
  out.push(table(rows, ['l']))
  out.push(`growth 100 MiB → 1 GiB: ${f(m.growthBytes / MiB, 1)} MiB (limit < 32 MiB): ${verdict(m.growthBytes / MiB, 32, true)}; wrangler's proxy workerd grew ${m.proxyGrowthBytes.map((b) => f(b / MiB, 1)).join(', ')} MiB`)
  if (m.steadyGrowthBytes !== undefined) {
    out.push(`growth 100 MiB → 1 GiB once the R2 simulator has grown (steady steps): ${f(m.steadyGrowthBytes / MiB, 1)} MiB (limit < 32 MiB): ${verdict(m.steadyGrowthBytes / MiB, 32, true)}`)
  }
  return out.join('\n')
}

export function requestsReport(r) {
  const out = [`REQUESTS: manifest by tag, ${r.connections} connections, ${r.seconds} s (node: bench/lib/load.mjs; wrk -t2 for GET as a cross-check)`]
  const rows = [['target', 'method', 'tool', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors']]
  for (const x of Object.values(r.results)) {
    rows.push([x.target, x.method, x.tool, f(x.requestsPerSec, 0), f(x.p50Ms), f(x.p99Ms), x.non2xx, x.errors ?? x.socketErrors])
  }
  out.push(table(rows, ['l', 'l']))
  return out.join('\n')
}

export function report(results) {
  const parts = []
  const when = (s) => `  [${s.measuredAt}, ${s.commit?.slice(0, 7) ?? '?'}${s.dirty ? ' + uncommitted src' : ''}${s.loadAverage ? `, load average ${s.loadAverage.map((x) => x.toFixed(1)).join(' ')} on ${results.machine?.cpus ?? '?'} CPUs` : ''}]`
  if (results.cost) parts.push(costReport(results.cost) + '\n' + when(results.cost))
  if (results.speed) parts.push(speedReport(results.speed) + '\n' + when(results.speed))
  if (results.uploads) parts.push(uploadsReport(results.uploads) + '\n' + when(results.uploads))
  if (results.stages) parts.push(stagesReport(results.stages) + '\n' + when(results.stages))
  if (results.memory) parts.push(memoryReport(results.memory) + '\n' + when(results.memory))
  if (results.requests) parts.push(requestsReport(results.requests) + '\n' + when(results.requests))
  if (results.tool) parts.push(toolReport(results.tool) + '\n' + when(results.tool))
  return parts.join('\n\n')
}
