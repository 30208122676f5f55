/**
 * The cost section: runs bench/cost/*.bench-test.ts inside workerd (vitest pool workers),
 * reads the `BENCH_COST` lines and prices the calls at list prices (shared/COST.md).
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** USD per million calls (Workers Paid list prices). */
export const PRICES = { r2A: 4.5, r2B: 0.36, kvRead: 0.5, kvWrite: 5.0, queue: 0.4 }

/** Binding method → billing class. resumeMultipartUpload is not an API call. */
const CLASS = {
  'r2.put': 'r2A', 'r2.createMultipartUpload': 'r2A', 'r2.uploadPart': 'r2A', 'r2.complete': 'r2A', 'r2.list': 'r2A',
  'r2.get': 'r2B', 'r2.head': 'r2B',
  'r2.delete': 'free', 'r2.abort': 'free', 'r2.resumeMultipartUpload': 'free',
  'kv.get': 'kvRead', 'kv.getWithMetadata': 'kvRead',
  'kv.put': 'kvWrite', 'kv.delete': 'kvWrite', 'kv.list': 'kvWrite',
  // Queues: a message written, read (each delivery, retries too) and deleted (acked), per 64 KB.
  'queue.write': 'queue', 'queue.read': 'queue', 'queue.delete': 'queue',
}

/** The peer's figures (shared/COST.md), by reading its code: no edge cache. */
export const PEER = {
  push: { r2A: 29, r2B: 24, kvRead: 0, kvWrite: 0 },
  'pull-cold': { r2A: 0, r2B: 5, kvRead: 0, kvWrite: 0 },
  'pull-warm': { r2A: 0, r2B: 5, kvRead: 0, kvWrite: 0 },
}

/** Targets in USD per million workloads. */
export const TARGETS = { push: 70, 'pull-cold': 5, 'pull-warm': 1, 'pull-warm-stats': 2 }

export const usd = (c) => c.r2A * PRICES.r2A + c.r2B * PRICES.r2B + c.kvRead * PRICES.kvRead + c.kvWrite * PRICES.kvWrite + (c.queue ?? 0) * PRICES.queue

/** Sums call counts by class; `unknown` lists any binding method not in the price table. */
export function classify(counts) {
  const out = { r2A: 0, r2B: 0, kvRead: 0, kvWrite: 0, queue: 0, free: 0, cacheMatch: 0, cacheHit: 0, cachePut: 0, cacheDelete: 0, r2BytesWritten: 0, r2BytesRead: 0, unknown: [] }
  for (const [k, n] of Object.entries(counts)) {
    if (CLASS[k]) out[CLASS[k]] += n
    else if (k === 'cache.match') out.cacheMatch += n
    else if (k === 'cache.hit') out.cacheHit += n
    else if (k === 'cache.put') out.cachePut += n
    else if (k === 'cache.delete') out.cacheDelete += n
    else if (k === 'bytes.r2.written') out.r2BytesWritten += n
    else if (k === 'bytes.r2.read') out.r2BytesRead += n
    else out.unknown.push(k)
  }
  return out
}

function add(a, b) {
  const out = { ...a }
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v
  return out
}

/** One workload's totals, per-method counts and per-route breakdown. */
export function summarize(w) {
  let byMethod = {}
  const routes = {}
  const failed = []
  for (const s of w.steps) {
    byMethod = add(byMethod, s.calls)
    const r = (routes[s.route] ??= { requests: 0, byMethod: {} })
    r.requests++
    r.byMethod = add(r.byMethod, s.calls)
    if (!s.expected.includes(s.status)) failed.push(`${s.step} → ${s.status}`)
  }
  for (const r of Object.values(routes)) {
    const c = classify(r.byMethod)
    Object.assign(r, { r2A: c.r2A, r2B: c.r2B, kvRead: c.kvRead, kvWrite: c.kvWrite, queue: c.queue, usdPerMillion: round(usd(c)) })
  }
  const c = classify(byMethod)
  return {
    requests: w.steps.length,
    ok: failed.length === 0 && c.unknown.length === 0,
    failed,
    calls: { r2A: c.r2A, r2B: c.r2B, kvRead: c.kvRead, kvWrite: c.kvWrite, queue: c.queue, free: c.free },
    cache: { match: c.cacheMatch, hit: c.cacheHit, put: c.cachePut, delete: c.cacheDelete },
    r2Bytes: { written: c.r2BytesWritten, read: c.r2BytesRead },
    unknownMethods: c.unknown,
    byMethod,
    routes,
    usdPerMillion: round(usd(c)),
    ...(w.blobs ? { blobSizes: w.blobs } : {}),
  }
}

const round = (x) => Math.round(x * 100) / 100

/** Runs the workerd cost tests in `root`: { workloads, peer, targets, prices }. */
export async function runCost({ root, log, workDir }) {
  const args = ['vitest', 'run', '--config', 'bench/vitest.cost.config.ts', '--reporter=default']
  log(`cost: npx ${args.join(' ')}`)
  const output = await new Promise((resolve, reject) => {
    const child = spawn('npx', args, { cwd: root, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, out }))
  })
  writeFileSync(join(workDir, 'cost-vitest.log'), output.out)
  const lines = output.out.split('\n').filter((l) => l.includes('BENCH_COST {'))
  if (!lines.length) throw new Error(`cost: vitest printed no BENCH_COST line (exit ${output.code}); see ${join(workDir, 'cost-vitest.log')}`)
  const workloads = {}
  for (const line of lines) {
    const w = JSON.parse(line.slice(line.indexOf('BENCH_COST {') + 'BENCH_COST '.length))
    workloads[w.workload] = summarize(w)
  }
  if (output.code !== 0) log(`cost: vitest exited ${output.code}; see ${join(workDir, 'cost-vitest.log')}`)
  const peer = Object.fromEntries(Object.entries(PEER).map(([k, c]) => [k, { calls: c, usdPerMillion: round(usd(c)) }]))
  return { prices: PRICES, targets: TARGETS, peer, workloads, vitestExit: output.code }
}
