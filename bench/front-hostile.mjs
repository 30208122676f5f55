#!/usr/bin/env node
/**
 * The local front (`npm start`, scripts/start.mjs) under the hostile cases of issue 20: many idle
 * connections, many half-sent bodies, many connections sending their headers a byte a second.
 * While a case runs, a well-behaved client asks `GET /v2/` once a second; the case reports the
 * front's RSS and open file descriptors (from /proc), how many hostile connections the front
 * still holds, and what the well-behaved client got.
 *
 *   node bench/front-hostile.mjs --port 9800 --case idle --connections 20000
 *   node bench/front-hostile.mjs --port 9800 --case half-bodies --connections 200
 *   node bench/front-hostile.mjs --port 9800 --case slow-headers --connections 2000
 *
 * --pid: the front's process (default: the process listening on --port, from `ss`).
 * --seconds: how long the case holds its connections (default 30).
 * The client opens its connections from worker processes of at most 9,000 sockets each, so one
 * process's descriptor limit does not cap the attack.
 */
import { execFileSync, fork } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'

const args = parseArgs(process.argv.slice(2))
const PER_PROCESS = 9000

function parseArgs(argv) {
  const out = { port: 8787, case: 'idle', connections: 1000, seconds: 30, pid: null }
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z]+)$/.exec(argv[i] ?? '')
    if (m) out[m[1]] = argv[++i]
  }
  out.port = Number(out.port)
  out.connections = Number(out.connections)
  out.seconds = Number(out.seconds)
  return out
}

/** The pid listening on the port (the front), from `ss -ltnp`. */
function listener(port) {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' })
  const m = /pid=(\d+)/.exec(out)
  if (!m) throw new Error(`nothing listens on ${port}`)
  return Number(m[1])
}

function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Math.round(Number(m[1]) / 1024) : null
}

const fds = (pid) => readdirSync(`/proc/${pid}/fd`).length

/** One well-behaved request on a new connection: its status (0: none) and time. */
function probe(port) {
  const t0 = Date.now()
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/v2/', agent: false, timeout: 5000 }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - t0 }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (err) => resolve({ status: 0, ms: Date.now() - t0, error: err.code ?? err.message }))
  })
}

async function main() {
  const pid = args.pid ? Number(args.pid) : listener(args.port)
  const before = { rss: rssMiB(pid), fds: fds(pid) }
  console.log(`case ${args.case}, ${args.connections} connections, ${args.seconds} s; front pid ${pid}: RSS ${before.rss} MiB, ${before.fds} fds before`)
  const children = []
  const state = new Map()
  for (let left = args.connections, i = 0; left > 0; left -= PER_PROCESS, i++) {
    const n = Math.min(PER_PROCESS, left)
    const child = fork(new URL(import.meta.url).pathname, [], {
      env: { ...process.env, FRONT_HOSTILE_CHILD: JSON.stringify({ ...args, connections: n }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    child.on('message', (m) => state.set(i, m))
    children.push(child)
  }
  let peak = before.rss
  let peakFds = before.fds
  const probes = []
  const t0 = Date.now()
  while (Date.now() - t0 < args.seconds * 1000) {
    await new Promise((r) => setTimeout(r, 1000))
    const p = await probe(args.port)
    probes.push(p)
    const rss = rssMiB(pid)
    const open = fds(pid)
    peak = Math.max(peak, rss)
    peakFds = Math.max(peakFds, open)
    const totals = sum([...state.values()])
    console.log(`t=${Math.round((Date.now() - t0) / 1000)}s RSS ${rss} MiB, fds ${open}; hostile: ${totals.open} open, ${totals.closed} closed by the front, ${totals.refused} refused; GET /v2/ → ${p.status || p.error} in ${p.ms} ms`)
  }
  for (const c of children) c.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 2000))
  const after = { rss: rssMiB(pid), fds: fds(pid) }
  const good = probes.filter((p) => p.status === 200).length
  console.log(`summary: RSS ${before.rss} → peak ${peak} → ${after.rss} MiB 2 s after; fds ${before.fds} → peak ${peakFds} → ${after.fds}; GET /v2/ answered 200 ${good}/${probes.length}, slowest ${Math.max(...probes.map((p) => p.ms))} ms`)
}

function sum(list) {
  const out = { open: 0, closed: 0, refused: 0 }
  for (const s of list) for (const k of Object.keys(out)) out[k] += s[k]
  return out
}

/** A worker process: opens its connections and reports how many the front still holds. */
async function attack(opts) {
  const counts = { open: 0, closed: 0, refused: 0 }
  const sockets = new Set()
  const report = () => process.send?.(counts)
  setInterval(report, 500).unref()
  process.on('SIGTERM', () => {
    for (const s of sockets) s.destroy()
    process.exit(0)
  })
  const half = Buffer.alloc(2 * 1024 * 1024, 0x61)
  const open = (i) =>
    new Promise((resolve) => {
      const s = net.connect({ port: opts.port, host: '127.0.0.1' })
      let connected = false
      s.on('connect', () => {
        connected = true
        counts.open++
        sockets.add(s)
        resolve()
        if (opts.case === 'half-bodies') {
          s.write(`PUT /v2/hostile/half/manifests/t${i} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: ${4 * 1024 * 1024}\r\n\r\n`)
          s.write(half)
        } else if (opts.case === 'slow-headers') {
          const text = `GET /v2/ HTTP/1.1\r\nHost: localhost\r\nX-Slow: ${'a'.repeat(1000)}\r\n\r\n`
          let at = 0
          const timer = setInterval(() => {
            if (s.destroyed) return clearInterval(timer)
            s.write(text[at++ % text.length])
          }, 1000)
        }
      })
      s.on('data', () => {})
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        if (connected) {
          counts.open--
          counts.closed++
        } else {
          counts.refused++
          resolve()
        }
      })
    })
  // Connect in bursts of 100, as a flood would, without overrunning the listen backlog.
  for (let i = 0; i < opts.connections; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, opts.connections - i) }, (_, k) => open(i + k)))
  }
  report()
  await new Promise(() => {})
}

if (process.env.FRONT_HOSTILE_CHILD) await attack(JSON.parse(process.env.FRONT_HOSTILE_CHILD))
else await main()
