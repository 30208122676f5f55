#!/usr/bin/env node
/**
 * `npm run bench:gc -- [--objects N] [--json]`: the sharded collector on a synthetic registry of
 * about N objects (bench/gc/registry.bench-test.ts, inside workerd): a dry run and a real run,
 * their Workflow instances (the parent and one per shard), the most steps and step state of any
 * one instance, time, calls, and dollars at list prices (shared/COST.md). The entry is merged
 * into bench/results.json `gc.sizes` (one per size, replacing an earlier one of that size); the
 * raw run, with the load average, is kept in bench/gc/runs/. `--json` prints the entry alone.
 * `--shard-scale K`: shards K times smaller than production's, to watch shard counts grow and
 * steps per instance stay flat at sizes this machine builds; such entries go to `gc.scaled`.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { classify, PRICES, usd } from './lib/cost.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const flag = (name) => args.indexOf(name)
const asked = flag('--objects') >= 0 ? Number(args[flag('--objects') + 1]) : 49_400
if (!Number.isSafeInteger(asked) || asked < 247) {
  console.error('--objects must be a whole number ≥ 247 (one repository of the synthetic shape)')
  process.exit(2)
}
const json = flag('--json') >= 0
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
const o = raw.objects
// Objects the collector looks at: blobs, manifests, tags and blob links (one link per blob here).
const total = o.blobs + o.manifests + o.tags + o.blobs
const figure = (r) => {
  const c = classify(r.calls)
  const runUsd = usd(c) / 1e6 // prices are per million calls
  const instances = Object.values(r.instances)
  return {
    instances: instances.length,
    maxStepsPerInstance: Math.max(...instances.map((i) => i.steps)),
    maxStateBytesPerInstance: Math.max(...instances.map((i) => i.stateBytes)),
    maxStepResultBytes: Math.max(...instances.map((i) => i.maxStepBytes)),
    parentSteps: r.instances.parent.steps,
    steps: r.steps,
    ms: r.ms,
    usd: +runUsd.toFixed(6),
    usdPerMillionObjects: +((runUsd * 1e6) / total).toFixed(4),
    calls: { r2A: c.r2A, r2B: c.r2B, kvRead: c.kvRead, kvWrite: c.kvWrite, free: c.free },
    totals: r.totals,
  }
}
const entry = {
  objects: total,
  registry: { ...o, links: o.blobs },
  dryRun: figure(raw.dryRun),
  realRun: figure(raw.realRun),
  ...(scale > 1 ? { shardScale: scale, shardSizes: raw.sizes } : {}),
  buildMs: raw.buildMs,
  loadAverage: { before: loadBefore.map((x) => +x.toFixed(2)), after: loadAfter.map((x) => +x.toFixed(2)) },
  measured: new Date().toISOString(),
}
const runs = join(root, 'bench', 'gc', 'runs')
mkdirSync(runs, { recursive: true })
writeFileSync(join(runs, `${total}${scale > 1 ? `-scale${scale}` : ''}-${entry.measured.replace(/[:.]/g, '')}.json`), JSON.stringify({ entry, raw, prices: PRICES }, null, 2) + '\n')
const file = join(root, 'bench', 'results.json')
const results = JSON.parse(readFileSync(file, 'utf8'))
results.gc ??= {}
const series = scale > 1 ? 'scaled' : 'sizes'
results.gc[series] = [...(results.gc[series] ?? []).filter((e) => e.objects !== total || (e.shardScale ?? 1) !== scale), entry].sort((a, b) => a.objects - b.objects)
writeFileSync(file, JSON.stringify(results, null, 2) + '\n')
console.log(json ? JSON.stringify(entry) : JSON.stringify(entry, null, 2))
