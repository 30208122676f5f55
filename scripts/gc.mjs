#!/usr/bin/env node
/**
 * `npm run gc -- --url <registry> [--dry-run] [--untagged] [--repo <pattern>] [--json]`
 *
 * Starts a garbage collection run on the registry's admin endpoint (POST /admin/gc), follows it
 * with a progress line (stderr) and prints its report when it ends: a table, or with --json the
 * report as JSON on stdout (`totals: {manifests, links, blobs, uploads, bytes}`).
 *
 * Credentials (AUTH_MODE "token"; a user the AUTH_RULES `admin` rule names):
 *   --user <name> --password <password>, or env GC_USER / GC_PASSWORD; or --token <bearer token>
 *   (a token for scope `registry:admin:*`), or env GC_TOKEN. An open registry needs none but
 *   serves its admin endpoint on localhost only.
 * Exit status: 0 when the run completed, 1 when it failed, 2 on bad arguments.
 */
import { parseArgs } from 'node:util'

const usage = 'usage: npm run gc -- --url <registry> [--dry-run] [--untagged] [--repo <pattern>] [--json] [--user <u> --password <p> | --token <t>]'
let args
try {
  args = parseArgs({
    options: {
      url: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      untagged: { type: 'boolean', default: false },
      repo: { type: 'string' },
      json: { type: 'boolean', default: false },
      user: { type: 'string', default: process.env.GC_USER },
      password: { type: 'string', default: process.env.GC_PASSWORD },
      token: { type: 'string', default: process.env.GC_TOKEN },
      interval: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values
} catch (err) {
  console.error(`${err.message}\n${usage}`)
  process.exit(2)
}
if (args.help) {
  console.log(usage)
  process.exit(0)
}
if (!args.url) {
  console.error(`--url is required\n${usage}`)
  process.exit(2)
}

const base = args.url.replace(/\/+$/, '')
const headers = {}
if (args.token) headers.Authorization = `Bearer ${args.token}`
else if (args.user) headers.Authorization = `Basic ${Buffer.from(`${args.user}:${args.password ?? ''}`).toString('base64')}`

async function call(path, init = {}) {
  const res = await fetch(base + path, { ...init, headers })
  const text = await res.text()
  let body
  try {
    body = JSON.parse(text)
  } catch {
    body = { text }
  }
  if (!res.ok) {
    const e = body.errors?.[0]
    throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${e ? `${e.code}: ${e.message}` : text.slice(0, 200)}`)
  }
  return body
}

const query = new URLSearchParams()
if (args['dry-run']) query.set('dry-run', 'true')
if (args.untagged) query.set('untagged', 'true')
if (args.repo) query.set('repo', args.repo)

const fmt = (n) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`
}

try {
  const { id } = await call(`/admin/gc?${query}`, { method: 'POST' })
  const t0 = Date.now()
  const tty = process.stderr.isTTY
  let status
  for (;;) {
    status = await call(`/admin/gc/${id}`)
    const line = `gc ${id}: ${status.status} (${Math.round((Date.now() - t0) / 1000)} s)`
    if (tty) process.stderr.write(`\r${line}`)
    else if (status.status !== 'running' && status.status !== 'queued') process.stderr.write(`${line}\n`)
    if (!['queued', 'running', 'waiting', 'paused', 'waitingForPause'].includes(status.status)) break
    await new Promise((r) => setTimeout(r, Number(args.interval) * 1000))
  }
  if (tty) process.stderr.write('\n')
  if (status.status !== 'complete' || !status.report) {
    console.error(`gc ${id} ended ${status.status}: ${JSON.stringify(status.error)}`)
    process.exit(1)
  }
  const r = status.report
  if (args.json) {
    console.log(JSON.stringify(r, null, 2))
  } else {
    const verb = r.dryRun ? 'would delete' : 'deleted'
    console.log(`${r.dryRun ? 'Dry run' : 'Run'} ${r.id} (${r.untagged ? 'untagged' : 'default'} mode${r.repo ? `, repositories ${r.repo}` : ''}), ${r.started} → ${r.finished}`)
    for (const [name, repo] of Object.entries(r.repositories)) {
      console.log(`  ${name}: ${verb} ${repo.manifests.count} manifests (${fmt(repo.manifests.bytes)}), ${repo.links.count} blob links`)
      for (const t of repo.tags) console.log(`    tag ${t.tag} (${t.rule})`)
    }
    if (r.repositoriesOmitted) console.log(`  … and ${r.repositoriesOmitted} more repositories (counted in the total)`)
    const t = r.totals
    console.log(`Total: ${verb} ${t.manifests} manifests, ${t.links} links, ${t.blobs} blobs, ${t.uploads} uploads: ${fmt(t.bytes)} freed`)
    console.log(`Kept: ${r.kept.blobs} blobs, ${fmt(r.kept.bytes)}`)
    if (r.deferred) console.log(`Deferred: ${r.deferred} repositories left for the next run (GC_MAX_KV_WRITES)`)
  }
} catch (err) {
  console.error(`gc: ${err.message}`)
  process.exit(1)
}
