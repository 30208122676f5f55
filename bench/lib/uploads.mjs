/**
 * The uploads section: one 300 MiB blob pushed to ours by each upload path, side by side
 * in one run (order rotated), median of `runs`. The body requests are sent by curl (the
 * fastest client here: the floor) and, beside them, by Node's HTTP client (which takes
 * about twice as long for the same request, so it may never be the floor):
 *   monolithic          POST ?digest= with the body, `curl -T file` (the floor:
 *                       one request, one R2 put; R2 checks the digest)
 *   patch-length        POST, one PATCH with Content-Length (curl -T file), PUT ?digest= without body (skopeo, crane)
 *   patch-chunked       POST, one PATCH with Transfer-Encoding: chunked (curl), PUT ?digest= (docker, podman)
 *   monolithic-node     the floor's request from Node's client (the floor this bench used before issue 18)
 *   patch-length-node   patch-length, the PATCH from Node's client
 *   patch-chunked-node  patch-chunked, the PATCH from Node's client (64 KiB chunks)
 *   patch-sha512        patch-length-node on a session opened with ?digest-algorithm=sha512, closed with sha512
 *   monolithic-direct   monolithic, straight to wrangler dev's own port (what the front in scripts/start.mjs costs)
 *   patch-length-direct patch-length, straight to wrangler dev's own port
 * and, after each run's monolithic push, the blob pulled back (`pull`: curl GET, to /dev/null).
 * Every push sends fresh bytes (no deduplication) to a fresh repository. The ratio is the
 * median of each run's time over the same run's curl monolithic push: on a shared machine the
 * load drifts between runs more than the paths differ. Each push also records the CPU seconds
 * the workerd processes under `npm start` used meanwhile (/proc utime + stime): the worker's
 * own, the R2/KV simulators' (same process) and wrangler's proxy.
 */
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { curl } from './curl.mjs'
import { request, resolve } from './http.mjs'
import { cpuOf } from './proc.mjs'
import { quiet } from './quiet.mjs'
import { median } from './speed.mjs'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
export const UPLOAD_BYTES = 300 * MiB
export const FLOOR = 'monolithic'
const PATHS = [
  'monolithic', 'patch-length', 'patch-chunked', 'monolithic-node', 'patch-length-node', 'patch-chunked-node', 'patch-sha512',
  'monolithic-direct', 'patch-length-direct',
]

/** 300 MiB of incompressible bytes, made once; each push stamps its own first 32 bytes. */
function blob() {
  const block = randomBytes(4 * MiB)
  const out = Buffer.allocUnsafe(UPLOAD_BYTES)
  for (let at = 0; at < UPLOAD_BYTES; at += block.length) block.copy(out, at)
  return out
}

async function* chunks(buffer, size = 64 * 1024) {
  for (let at = 0; at < buffer.length; at += size) yield buffer.subarray(at, at + size)
}

const expect = (res, status, what) => {
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${res.body.toString().slice(0, 300)}`)
  return res
}

const seconds = (start) => Number(process.hrtime.bigint() - start) / 1e9

const curlExpect = (res, status, what) => {
  if (res.status !== status) throw new Error(`${what} (curl): ${res.status}`)
  return res
}

/** One push by `path` of `bytes` (also in `file`): { total, patch } seconds. */
async function pushOnce(base, repo, path, bytes, file) {
  const alg = path === 'patch-sha512' ? 'sha512' : 'sha256'
  const digest = `${alg}:${createHash(alg).update(bytes).digest('hex')}`
  const byCurl = !path.endsWith('-node') && path !== 'patch-sha512'
  const start = process.hrtime.bigint()
  if (path === 'monolithic' || path === 'monolithic-direct') {
    // -T streams the file (`--data-binary @file` reads it all into memory first: 0.3 to 0.7 s more
    // per 300 MiB here); --request-target, as -T would append the file's name to a path ending in /.
    const target = `/v2/${repo}/blobs/uploads/?digest=${digest}`
    curlExpect(await curl(['-X', 'POST', '-T', file, '--request-target', target, '-H', 'Content-Type: application/octet-stream', `${base}/v2/${repo}/blobs/uploads/x`]), 201, 'POST ?digest=')
    return { total: seconds(start), patch: null, digest }
  }
  if (path === 'monolithic-node') {
    const url = `${base}/v2/${repo}/blobs/uploads/?digest=${digest}`
    expect(await request('POST', url, { body: bytes, headers: { 'Content-Length': String(bytes.length) } }), 201, 'POST ?digest=')
    return { total: seconds(start), patch: null }
  }
  const query = alg === 'sha512' ? '?digest-algorithm=sha512' : ''
  const post = expect(await request('POST', `${base}/v2/${repo}/blobs/uploads/${query}`), 202, 'POST')
  const location = resolve(post.headers.location, base)
  const chunked = path.startsWith('patch-chunked')
  const patchStart = process.hrtime.bigint()
  let next
  if (byCurl) {
    // -T streams the file (Content-Length from its size); with Transfer-Encoding: chunked, chunked.
    const framing = chunked ? ['-H', 'Transfer-Encoding: chunked'] : []
    next = curlExpect(await curl(['-X', 'PATCH', '-T', file, ...framing, '-H', 'Content-Type: application/octet-stream', location]), 202, 'PATCH').location
  } else {
    const body = chunked ? chunks(bytes) : bytes
    const headers = chunked ? {} : { 'Content-Length': String(bytes.length) }
    next = expect(await request('PATCH', location, { body, headers }), 202, 'PATCH').headers.location
  }
  const patchSeconds = seconds(patchStart)
  const put = new URL(resolve(next, base))
  put.searchParams.set('digest', digest)
  // no body (Node sends Content-Length: 0; the same PUT without the header touches no more
  // storage either: test/routes/uploads-sessions.test.ts "an empty append")
  expect(await request('PUT', put.toString()), 201, 'PUT ?digest=')
  return { total: seconds(start), patch: patchSeconds, digest }
}

/** CPU seconds so far of each workerd under the server: { [pid]: seconds }. */
function workerdCpu(server) {
  const out = {}
  for (const { pid } of server.workerd()) {
    try {
      out[pid] = cpuOf(pid)
    } catch {}
  }
  return out
}

/** CPU seconds used between two `workerdCpu` readings: { total, byProcess: { [pid]: s } }. */
function cpuUsed(before, after) {
  const byProcess = {}
  let total = 0
  for (const pid of Object.keys(after)) {
    byProcess[pid] = after[pid] - (before[pid] ?? 0)
    total += byProcess[pid]
  }
  return { total, byProcess }
}

/** `server`: ours ({ host, workerd() }). */
export async function runUploads({ server, runs, log, workDir = os.tmpdir() }) {
  const base = `http://${server.host}`
  const bytes = blob()
  const file = join(workDir, 'uploads-blob')
  const out = { bytes: UPLOAD_BYTES, runs, floor: `${FLOOR} (curl)`, workerd: server.workerd(), paths: {}, pull: { total: [], cpu: [], errors: [] }, loadBefore: [] }
  for (const p of PATHS) out.paths[p] = { total: [], patch: [], cpu: [], errors: [] }
  const stamp = Date.now().toString(36)
  for (let run = 0; run < runs; run++) {
    const order = PATHS.map((_, i) => PATHS[(i + run) % PATHS.length])
    for (const path of order) {
      randomBytes(32).copy(bytes, 0)
      writeFileSync(file, bytes)
      const repo = `bench/uploads-${path}-${stamp}-${run}`
      out.loadBefore.push({ run, path, load: await quiet(log) })
      try {
        const before = workerdCpu(server)
        const r = await pushOnce(path.endsWith('-direct') ? `http://${server.wranglerHost}` : base, repo, path, bytes, file)
        const cpu = cpuUsed(before, workerdCpu(server))
        out.paths[path].total.push(r.total)
        out.paths[path].patch.push(r.patch)
        out.paths[path].cpu.push(cpu)
        log(`uploads: run ${run + 1} ${path}: ${r.total.toFixed(2)} s${r.patch !== null ? ` (PATCH ${r.patch.toFixed(2)} s)` : ''}, workerd CPU ${cpu.total.toFixed(2)} s, load ${os.loadavg()[0].toFixed(2)}`)
        if (path === FLOOR) await pullOnce(base, repo, r.digest, server, out.pull, run, log)
      } catch (err) {
        out.paths[path].total.push(null)
        out.paths[path].patch.push(null)
        out.paths[path].cpu.push(null)
        out.paths[path].errors.push(`run ${run}: ${err.message ?? err}`)
        log(`uploads: run ${run + 1} ${path}: FAILED ${err.message ?? err}`)
      }
    }
  }
  const floor = out.paths[FLOOR].total
  const perGiB = (cpu) => (cpu ? (cpu.total * GiB) / UPLOAD_BYTES : null)
  for (const r of [...Object.values(out.paths), out.pull]) {
    r.median = median(r.total)
    r.cpuSecondsPerGiB = median(r.cpu.map(perGiB))
    r.MBps = r.median ? UPLOAD_BYTES / 1e6 / r.median : null
    if (r === out.pull) continue
    r.patchMedian = median(r.patch)
    // Per run, against that run's curl monolithic push (the machine's load drifts between runs).
    r.ratios = r.total.map((t, i) => (typeof t === 'number' && typeof floor[i] === 'number' ? t / floor[i] : null))
    r.vsFloor = median(r.ratios)
  }
  return out
}

/** GET of the blob just pushed, by curl, to /dev/null: time and workerd CPU into `into`. */
async function pullOnce(base, repo, digest, server, into, run, log) {
  try {
    const before = workerdCpu(server)
    const start = process.hrtime.bigint()
    curlExpect(await curl([`${base}/v2/${repo}/blobs/${digest}`]), 200, 'GET blob')
    const total = seconds(start)
    const cpu = cpuUsed(before, workerdCpu(server))
    into.total.push(total)
    into.cpu.push(cpu)
    log(`uploads: run ${run + 1} pull (curl GET): ${total.toFixed(2)} s, workerd CPU ${cpu.total.toFixed(2)} s`)
  } catch (err) {
    into.total.push(null)
    into.cpu.push(null)
    into.errors.push(`run ${run}: ${err.message ?? err}`)
    log(`uploads: run ${run + 1} pull: FAILED ${err.message ?? err}`)
  }
}
