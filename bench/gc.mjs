#!/usr/bin/env node
/**
 * `npm run bench:gc -- [--objects N] [--json]`: the sharded collector on a synthetic registry of
 * about N objects (bench/gc/registry.bench-test.ts, inside workerd): a dry run and a real run,
 * their Workflow instances (the parent and one per shard), the most steps and step state of any
 * one instance (and of any shard), time, calls, and dollars at list prices (shared/COST.md). The
 * entry is merged into bench/results.json `gc.sizes` (one per size, replacing an earlier one of
 * that size); the raw run, with the load average, is kept in bench/gc/runs/. `--json` prints the
 * entry alone.
 * `--shard-scale K`: shards K times smaller than production's, to watch shard counts grow and
 * steps per shard stay flat at sizes this machine builds; such entries go to `gc.scaled`.
 * `--from-runs`: no run; every entry recomputed from the raw runs kept (the newest per size).
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { classify, PRICES, usd } from './lib/cost.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const runs = join(root, 'bench', 'gc', 'runs')
const file = join(root, 'bench', 'results.json')
const args = process.argv.slice(2)
const flag = (name) => args.indexOf(name)

/** One size's entry from a raw run (the bench's BENCH_GC line) and how it was measured. */
function entryOf(raw, { scale, loadAverage, measured }) {
  const o = raw.objects
  // Objects the collector looks at: blobs, manifests, tags and blob links (one link per blob here).
  const total = o.blobs + o.manifests + o.tags + o.blobs
  const figure = (r) => {
    const c = classify(r.calls)
    const runUsd = usd(c) / 1e6 // prices are per million calls
    const instances = Object.values(r.instances)
    const shards = Object.entries(r.instances).filter(([name]) => name !== 'parent').map(([, i]) => i)
    return {
      instances: instances.length,
      maxStepsPerInstance: Math.max(...instances.map((i) => i.steps)),
      maxStateBytesPerInstance: Math.max(...instances.map((i) => i.stateBytes)),
      ms: r.ms,
      usd: +runUsd.toFixed(6),
      maxStepsPerShard: Math.max(...shards.map((i) => i.steps)),
      maxStateBytesPerShard: Math.max(...shards.map((i) => i.stateBytes)),
      parentSteps: r.instances.parent.steps,
      parentStateBytes: r.instances.parent.stateBytes,
      maxStepResultBytes: Math.max(...instances.map((i) => i.maxStepBytes)),
      steps: r.steps,
      usdPerMillionObjects: +((runUsd * 1e6) / total).toFixed(4),
      calls: { r2A: c.r2A, r2B: c.r2B, kvRead: c.kvRead, kvWrite: c.kvWrite, free: c.free },
      totals: r.totals,
    }
  }
  return {
    objects: total,
    dryRun: figure(raw.dryRun),
    realRun: figure(raw.realRun),
    registry: { ...o, links: o.blobs },
    ...(scale > 1 ? { shardScale: scale, shardSizes: raw.sizes } : {}),
    buildMs: raw.buildMs,
    loadAverage,
    measured,
  }
}

/** Puts an entry in results.json: `gc.sizes`, or `gc.scaled` for scaled-down shards. */
function merge(results, entry) {
  const series = entry.shardScale ? 'scaled' : 'sizes'
  const same = (e) => e.objects === entry.objects && (e.shardScale ?? 1) === (entry.shardScale ?? 1)
  results.gc[series] = [...(results.gc[series] ?? []).filter((e) => !same(e)), entry].sort((a, b) => a.objects - b.objects)
}

const results = JSON.parse(readFileSync(file, 'utf8'))
results.gc ??= {}

if (flag('--from-runs') >= 0) {
  results.gc.sizes = []
  results.gc.scaled = []
  for (const name of readdirSync(runs).filter((n) => n.endsWith('.json')).sort()) {
    const kept = JSON.parse(readFileSync(join(runs, name), 'utf8'))
    merge(results, entryOf(kept.raw, { scale: kept.entry.shardScale ?? 1, loadAverage: kept.entry.loadAverage, measured: kept.entry.measured }))
  }
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n')
  console.log(JSON.stringify({ sizes: results.gc.sizes.map((e) => e.objects), scaled: results.gc.scaled.map((e) => e.objects) }))
  process.exit(0)
}

const asked = flag('--objects') >= 0 ? Number(args[flag('--objects') + 1]) : 49_400
if (!Number.isSafeInteger(asked) || asked < 247) {
  console.error('--objects must be a whole number ≥ 247 (one repository of the synthetic shape)')
  process.exit(2)
}
const scale = flag('--shard-scale') >= 0 ? Number(args[flag('--shard-scale') + 1]) : 1
if (!Number.isSafeInteger(scale) || scale < 1) {
  console.error('--shard-scale must be a whole number ≥ 1')
  process.exit(2)
}
const loadBefore = loadavg()
const run = spawnSync('npx', ['vitest', 'run', '--config', 'bench/vitest.gc.config.ts'], {
  cwd: root, encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, BENCH_GC_OBJECTS: String(asked), BENCH_GC_SHARD_SCALE: String(scale) },
})
const loadAfter = loadavg()
const line = (run.stdout + run.stderr).split('\n').find((l) => l.includes('BENCH_GC '))
if (!line) {
  console.error(run.stdout.slice(-3000), run.stderr.slice(-3000))
  process.exit(1)
}
const raw = JSON.parse(line.slice(line.indexOf('BENCH_GC ') + 9))
const loadAverage = { before: loadBefore.map((x) => +x.toFixed(2)), after: loadAfter.map((x) => +x.toFixed(2)) }
const entry = entryOf(raw, { scale, loadAverage, measured: new Date().toISOString() })
mkdirSync(runs, { recursive: true })
writeFileSync(join(runs, `${entry.objects}${scale > 1 ? `-scale${scale}` : ''}-${entry.measured.replace(/[:.]/g, '')}.json`), JSON.stringify({ entry, raw, prices: PRICES }, null, 2) + '\n')
// Read again: another bench may have written since this one started.
const latest = JSON.parse(readFileSync(file, 'utf8'))
latest.gc ??= {}
merge(latest, entry)
writeFileSync(file, JSON.stringify(latest, null, 2) + '\n')
console.log(args.includes('--json') ? JSON.stringify(entry) : JSON.stringify(entry, null, 2))
