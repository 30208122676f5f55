#!/usr/bin/env node
/**
 * `node bench/gc.mjs`: the collector on a synthetic registry (bench/gc/registry.bench-test.ts,
 * inside workerd): time and R2/KV calls of a dry run and a real run, per object, and the price
 * of a run over 1 million objects at list prices (shared/COST.md). Merges the figures into
 * bench/results.json under "gc".
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { classify, PRICES, usd } from './lib/cost.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = spawnSync('npx', ['vitest', 'run', '--config', 'bench/vitest.gc.config.ts'], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28 })
const line = (run.stdout + run.stderr).split('\n').find((l) => l.includes('BENCH_GC '))
if (!line) {
  console.error(run.stdout.slice(-3000), run.stderr.slice(-3000))
  process.exit(1)
}
const raw = JSON.parse(line.slice(line.indexOf('BENCH_GC ') + 9))
const o = raw.objects
// Objects the collector looks at: blobs, manifests, tags and blob links (one link per blob here).
const total = o.blobs + o.manifests + o.tags + o.blobs
const deleted = (t) => t.manifests + t.links + t.blobs + t.uploads
const figure = (r) => {
  const c = classify(r.calls)
  const runUsd = usd(c) / 1e6 // prices are per million calls
  return {
    ms: r.ms,
    steps: r.steps,
    msPerObject: +(r.ms / total).toFixed(4),
    calls: { r2A: c.r2A, r2B: c.r2B, kvRead: c.kvRead, kvWrite: c.kvWrite, free: c.free },
    callsPerObject: +((c.r2A + c.r2B + c.kvRead + c.kvWrite) / total).toFixed(4),
    usd: +runUsd.toFixed(6),
    usdPerMillionObjects: +((runUsd * 1e6) / total).toFixed(4),
    // What deleting costs, apart from looking: (this run − the dry run) per object deleted.
    ...(r === raw.realRun ? { usdPerMillionDeleted: +(((runUsd - usd(classify(raw.dryRun.calls)) / 1e6) * 1e6) / deleted(r.totals)).toFixed(4) } : {}),
    totals: r.totals,
    kept: r.kept,
  }
}
const gc = { objects: { ...o, links: o.blobs, total }, buildMs: raw.buildMs, prices: PRICES, dryRun: figure(raw.dryRun), realRun: figure(raw.realRun), byMethod: { dryRun: raw.dryRun.calls, realRun: raw.realRun.calls } }
const file = join(root, 'bench', 'results.json')
const results = JSON.parse(readFileSync(file, 'utf8'))
results.gc = gc
writeFileSync(file, JSON.stringify(results, null, 2) + '\n')
console.log(JSON.stringify({ objects: gc.objects, dryRun: gc.dryRun, realRun: gc.realRun }, null, 2))
