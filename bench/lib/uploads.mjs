/**
 * The uploads section: one 300 MiB blob pushed to ours by each upload path, side by side
 * in one run (order rotated), median of `runs`:
 *   monolithic       POST ?digest= with the body (the floor of this stack: R2 plus one native hash)
 *   patch-length     POST, one PATCH with Content-Length, PUT ?digest= without body (skopeo, crane)
 *   patch-chunked    POST, one PATCH without Content-Length (chunked), PUT ?digest= (docker, podman)
 *   patch-sha512     patch-length on a session opened with ?digest-algorithm=sha512, closed with sha512
 * Every run pushes fresh bytes (no deduplication), to a fresh repository. The ratio is the
 * median of each run's time over the same run's monolithic push: on a shared machine the
 * load drifts between runs more than the paths differ.
 */
import { createHash, randomBytes } from 'node:crypto'
import { request, resolve } from './http.mjs'
import { median } from './speed.mjs'

const MiB = 1024 * 1024
export const UPLOAD_BYTES = 300 * MiB
const PATHS = ['monolithic', 'patch-length', 'patch-chunked', 'patch-sha512']

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

/** One push by `path`: { total, patch } seconds. */
async function pushOnce(base, repo, path, bytes) {
  const alg = path === 'patch-sha512' ? 'sha512' : 'sha256'
  const digest = `${alg}:${createHash(alg).update(bytes).digest('hex')}`
  const start = process.hrtime.bigint()
  if (path === 'monolithic') {
    const url = `${base}/v2/${repo}/blobs/uploads/?digest=${digest}`
    expect(await request('POST', url, { body: bytes, headers: { 'Content-Length': String(bytes.length) } }), 201, 'POST ?digest=')
    return { total: seconds(start), patch: null }
  }
  const query = alg === 'sha512' ? '?digest-algorithm=sha512' : ''
  const post = expect(await request('POST', `${base}/v2/${repo}/blobs/uploads/${query}`), 202, 'POST')
  const location = resolve(post.headers.location, base)
  const patchStart = process.hrtime.bigint()
  const body = path === 'patch-chunked' ? chunks(bytes) : bytes
  const headers = path === 'patch-chunked' ? {} : { 'Content-Length': String(bytes.length) }
  const patch = expect(await request('PATCH', location, { body, headers }), 202, 'PATCH')
  const patchSeconds = seconds(patchStart)
  const put = new URL(resolve(patch.headers.location, base))
  put.searchParams.set('digest', digest)
  // no body (Node sends Content-Length: 0; the same PUT without the header touches no more
  // storage either: test/routes/uploads-sessions.test.ts "an empty append")
  expect(await request('PUT', put.toString()), 201, 'PUT ?digest=')
  return { total: seconds(start), patch: patchSeconds }
}

/** `server`: ours ({ host }). */
export async function runUploads({ server, runs, log }) {
  const base = `http://${server.host}`
  const bytes = blob()
  const out = { bytes: UPLOAD_BYTES, runs, paths: {} }
  for (const p of PATHS) out.paths[p] = { total: [], patch: [], errors: [] }
  const stamp = Date.now().toString(36)
  for (let run = 0; run < runs; run++) {
    const order = PATHS.map((_, i) => PATHS[(i + run) % PATHS.length])
    for (const path of order) {
      randomBytes(32).copy(bytes, 0)
      try {
        const r = await pushOnce(base, `bench/uploads-${path}-${stamp}-${run}`, path, bytes)
        out.paths[path].total.push(r.total)
        out.paths[path].patch.push(r.patch)
        log(`uploads: run ${run + 1} ${path}: ${r.total.toFixed(2)} s${r.patch !== null ? ` (PATCH ${r.patch.toFixed(2)} s)` : ''}`)
      } catch (err) {
        out.paths[path].total.push(null)
        out.paths[path].errors.push(`run ${run}: ${err.message ?? err}`)
        log(`uploads: run ${run + 1} ${path}: FAILED ${err.message ?? err}`)
      }
    }
  }
  const mono = out.paths.monolithic.total
  for (const r of Object.values(out.paths)) {
    r.median = median(r.total)
    r.patchMedian = median(r.patch)
    // Per run, against that run's monolithic push (the machine's load drifts between runs).
    r.ratios = r.total.map((t, i) => (typeof t === 'number' && typeof mono[i] === 'number' ? t / mono[i] : null))
    r.vsMonolithic = median(r.ratios)
    r.MBps = r.median ? UPLOAD_BYTES / 1e6 / r.median : null
  }
  return out
}
