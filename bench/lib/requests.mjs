/**
 * The requests section: manifest HEAD and GET by tag at 32 connections for 10 s, against
 * each registry after pushing a small image by tag. HEAD and GET with bench/lib/load.mjs
 * (wrk and autocannon hang on HEAD replies that carry Content-Length), GET also with wrk.
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from './http.mjs'
import { load } from './load.mjs'

export const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ')

const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** Pushes a one-layer image as `repo:tag` with monolithic uploads. */
export async function pushSmallImage(base, repo, tag) {
  const layer = randomBytes(64 * 1024)
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] } }))
  for (const blob of [layer, config]) {
    const post = await request('POST', `${base}/v2/${repo}/blobs/uploads/`)
    if (post.status !== 202) throw new Error(`POST → ${post.status} ${post.body}`)
    const put = new URL(post.headers.location, base)
    put.searchParams.set('digest', sha(blob))
    const res = await request('PUT', put.toString(), {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(blob.length) },
      body: blob,
    })
    if (res.status !== 201) throw new Error(`PUT ?digest= → ${res.status} ${res.body}`)
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
  }))
  const res = await request('PUT', `${base}/v2/${repo}/manifests/${tag}`, {
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': String(manifest.length) },
    body: manifest,
  })
  if (res.status !== 201) throw new Error(`manifest PUT → ${res.status} ${res.body}`)
}

const UNITS = { us: 1e-3, ms: 1, s: 1000, m: 60000 }
const toMs = (v, unit) => Number(v) * UNITS[unit]

/** wrk's text report → { requestsPerSec, p50Ms, p99Ms, non2xx, socketErrors, total }. */
export function parseWrk(text) {
  const pct = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text)
    return m ? toMs(m[1], m[2]) : null
  }
  const num = (re) => Number(re.exec(text)?.[1] ?? 0)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  return {
    requestsPerSec: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN),
    total: num(/(\d+) requests in/),
    p50Ms: pct(50),
    p99Ms: pct(99),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  }
}

function wrk(url, script, { connections, seconds, threads }) {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('error', reject)
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited ${code}: ${out}`))))
  })
}

/** `targets`: [{ name, base }] (base: scheme://host:port). */
export async function runRequests({ targets, workDir, log, connections = 32, seconds = 10 }) {
  const scripts = {}
  scripts.GET = join(workDir, 'wrk-GET.lua')
  writeFileSync(scripts.GET, `wrk.method = "GET"\nwrk.headers["Accept"] = "${ACCEPT}"\n`)
  const out = { connections, seconds, results: {} }
  for (const t of targets) {
    const repo = `bench/requests-${Date.now().toString(36)}`
    await pushSmallImage(t.base, repo, 'latest')
    const url = `${t.base}/v2/${repo}/manifests/latest`
    const runs = [
      ['HEAD', 'node', () => load({ url, method: 'HEAD', headers: { Accept: ACCEPT }, connections, seconds })],
      ['GET', 'node', () => load({ url, method: 'GET', headers: { Accept: ACCEPT }, connections, seconds })],
      ['GET', 'wrk', async () => parseWrk(await wrk(url, scripts.GET, { connections, seconds, threads: 2 }))],
    ]
    // A short warm-up, so first-connection setup and cold caches are not in the figures.
    await load({ url, method: 'GET', headers: { Accept: ACCEPT }, connections: 4, seconds: 1 })
    for (const [method, tool, run] of runs) {
      const r = await run()
      out.results[`${t.name} ${method} ${tool}`] = { target: t.name, method, tool, url: t.base, ...r }
      log(`requests: ${t.name} ${method} manifest by tag (${tool}): ${r.requestsPerSec.toFixed(0)} req/s, p99 ${r.p99Ms?.toFixed(2)} ms${r.non2xx ? `, ${r.non2xx} non-2xx` : ''}${r.errors || r.socketErrors ? `, ${r.errors ?? r.socketErrors} errors` : ''}`)
    }
  }
  return out
}
