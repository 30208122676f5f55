/**
 * The memory section: peak RSS of the workerd process that runs the worker while
 * streaming 100 MiB and then 1 GiB in one PATCH without Content-Length (chunked
 * transfer encoding, as docker sends). The figure is the growth between the two peaks.
 */
import { createHash, randomFillSync } from 'node:crypto'
import { cpuOf, memoryOf } from './proc.mjs'
import { request, resolve } from './http.mjs'

const MiB = 1024 * 1024

/** `size` pseudo-random bytes in 1 MiB chunks, each distinct; `hash` sees every byte. */
async function* pattern(size, hash) {
  const base = randomFillSync(Buffer.allocUnsafe(MiB))
  for (let at = 0, i = 0; at < size; at += MiB, i++) {
    const chunk = Buffer.from(base.subarray(0, Math.min(MiB, size - at)))
    chunk.writeUInt32BE(i, 0)
    hash.update(chunk)
    yield chunk
  }
}

const RESTARTED = /restarted mid-request/

/**
 * POST, one chunked PATCH of `size` bytes, PUT ?digest=: { seconds, putRetried }.
 * wrangler dev's proxy may answer the request after a long upload with 503 "Your worker
 * restarted mid-request" without passing it on; the PUT is then sent once more.
 */
export async function streamedPush(base, repo, size, { withLength = false } = {}) {
  const start = process.hrtime.bigint()
  const post = await request('POST', `${base}/v2/${repo}/blobs/uploads/`)
  if (post.status !== 202) throw new Error(`POST → ${post.status} ${post.body}`)
  const hash = createHash('sha256')
  const patch = await request('PATCH', resolve(post.headers.location, base), {
    headers: { 'Content-Type': 'application/octet-stream', ...(withLength ? { 'Content-Length': String(size) } : { 'Transfer-Encoding': 'chunked' }) },
    body: pattern(size, hash),
  })
  if (patch.status !== 202) throw new Error(`PATCH → ${patch.status} ${patch.body}`)
  const put = new URL(resolve(patch.headers.location, base))
  put.searchParams.set('digest', `sha256:${hash.digest('hex')}`)
  let done = await request('PUT', put.toString())
  const putRetried = done.status === 503 && RESTARTED.test(done.body.toString())
  if (putRetried) done = await request('PUT', put.toString())
  if (done.status !== 201) throw new Error(`PUT → ${done.status} ${done.body}`)
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, putRetried }
}

/** Samples VmRSS of `pids` every 50 ms while `work` runs: the largest seen per pid. */
async function sampled(pids, work) {
  const peak = Object.fromEntries(pids.map((p) => [p, 0]))
  const timer = setInterval(() => {
    for (const p of pids) {
      try {
        peak[p] = Math.max(peak[p], memoryOf(p).rss)
      } catch {}
    }
  }, 50)
  try {
    return { result: await work(), peak }
  } finally {
    clearInterval(timer)
  }
}

/** `server` from startOurs (fresh). Returns the figures in bytes. */
export async function runMemory({ server, log }) {
  const procs = server.workerd()
  if (!procs.length) throw new Error('memory: no workerd process under npm start')
  // The worker's own runtime is the one wrangler starts with an inspector; the other is its proxy.
  const worker = procs.find((p) => p.cmdline.includes('--inspector-addr')) ?? procs[0]
  const pids = procs.map((p) => p.pid)
  const base = `http://${server.host}`
  const snapshot = () => Object.fromEntries(pids.map((p) => [p, memoryOf(p)]))
  log(`memory: workerd ${pids.join(', ')} (worker: ${worker.pid})`)

  await streamedPush(base, 'bench/memory-warmup', 16 * MiB)
  const before = snapshot()
  const steps = []
  // The figure is the first two steps (chunked, as docker sends). The next show whether a second
  // gigabyte adds more (growth per byte) and what the Content-Length path (skopeo) peaks at.
  // Locally the same process runs the R2 simulator, whose own footprint grows with the first
  // gigabytes it stores (a plain R2 put of 1 GiB from a bare worker raises it ~150 MiB); the
  // last two steps repeat the figure once it has, to show the worker's own growth.
  const plan = [
    ['100 MiB', 100 * MiB, false],
    ['1 GiB', 1024 * MiB, false],
    ['1 GiB again', 1024 * MiB, false],
    ['1 GiB with Content-Length', 1024 * MiB, true],
    ['100 MiB (steady)', 100 * MiB, false],
    ['1 GiB (steady)', 1024 * MiB, false],
  ]
  for (const [i, [label, size, withLength]] of plan.entries()) {
    const cpu0 = Object.fromEntries(pids.map((p) => [p, cpuOf(p)]))
    const { result, peak } = await sampled(pids, () => streamedPush(base, `bench/memory-${i}`, size, { withLength }))
    const after = snapshot()
    const cpu = Object.fromEntries(pids.map((p) => [p, cpuOf(p) - cpu0[p]]))
    const { seconds, putRetried } = result
    steps.push({
      label, bytes: size, framing: withLength ? 'Content-Length' : 'chunked', seconds, MBps: size / 1e6 / seconds, putRetried,
      hwm: Object.fromEntries(pids.map((p) => [p, after[p].hwm])),
      peakRssSampled: peak,
      cpuSeconds: cpu,
      workerCpuMsPerMiB: (cpu[worker.pid] * 1000) / (size / MiB),
    })
    log(`memory: ${label} streamed in ${seconds.toFixed(1)} s${putRetried ? ' (PUT retried after wrangler 503)' : ''}; worker workerd VmHWM ${(after[worker.pid].hwm / MiB).toFixed(1)} MiB, CPU ${cpu[worker.pid].toFixed(1)} s`)
  }
  const growth = steps[1].hwm[worker.pid] - steps[0].hwm[worker.pid]
  const steadyGrowth = steps[5].hwm[worker.pid] - steps[4].hwm[worker.pid]
  return {
    steadyGrowthBytes: steadyGrowth,
    steadyPass: steadyGrowth < 32 * MiB,
    workerPid: worker.pid,
    processes: procs.map((p) => ({ pid: p.pid, role: p.pid === worker.pid ? 'worker' : 'wrangler proxy', baseline: before[p.pid] })),
    steps,
    growthBytes: growth,
    proxyGrowthBytes: procs.filter((p) => p.pid !== worker.pid).map((p) => steps[1].hwm[p.pid] - steps[0].hwm[p.pid]),
    limitBytes: 32 * MiB,
    pass: growth < 32 * MiB,
  }
}
