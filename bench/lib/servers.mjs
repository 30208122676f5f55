/** The two registries under test: ours (`npm start`, fresh state) and CNCF distribution 2.8. */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { cmdlineOf, commOf, descendants, startDetached, stopTree } from './proc.mjs'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen({ host: '127.0.0.1', port }, () => s.close(() => resolve(true)))
  })
}

/** The first port from `start` on where `count` consecutive ports are free (others may run servers here too). */
export async function freePorts(start, count = 1) {
  for (let p = start; p < start + 200; p += count) {
    let ok = true
    for (let i = 0; i < count && ok; i++) ok = await portFree(p + i)
    if (ok) return p
  }
  throw new Error(`no ${count} free consecutive ports from ${start}`)
}

async function waitReady(url, child, timeoutMs, logFile) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited early; see ${logFile}`)
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      if (res.status === 200) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs / 1000} s; see ${logFile}`)
    await sleep(250)
  }
}

/**
 * `npm start` on `port` with its state under `dir` (fresh), in its own session; `args` go to wrangler.
 * Returns { name, port, url, stop(), workerd() }.
 */
export async function startOurs({ root, port: wanted, dir, args = [] }) {
  mkdirSync(dir, { recursive: true })
  const port = await freePorts(wanted, 2)
  const logFile = join(dir, 'npm-start.log')
  // The sections push 300 MiB and 1 GiB in one request, as a plan without a body limit would
  // take them: MAX_CHUNK_BYTES (default 90 MiB, a Free/Pro plan's) raised to 4 GiB unless `args` set it.
  const limit = args.some((a) => a.startsWith('MAX_CHUNK_BYTES:')) ? [] : ['--var', `MAX_CHUNK_BYTES:${4 * 1024 ** 3}`]
  // The inspector on port + 10000 (this project's convention), never wrangler's default 9229 that another dev server may hold.
  const inspector = args.includes('--inspector-port') ? [] : ['--inspector-port', String(port + 10000)]
  const child = startDetached('npm', ['start', '--', '--port', String(port), '--persist-to', join(dir, 'state'), ...inspector, ...limit, ...args], {
    cwd: root,
    env: { ...process.env, PORT: String(port), WRANGLER_PORT: String(port + 1), NO_COLOR: '1', CI: '1' },
    logFile,
  })
  await waitReady(`http://127.0.0.1:${port}/v2/`, child, 180_000, logFile)
  return {
    name: 'ours',
    port,
    host: `127.0.0.1:${port}`,
    /** wrangler dev's own port behind the front (scripts/start.mjs): plain HTTP, no front. */
    wranglerHost: `127.0.0.1:${port + 1}`,
    logFile,
    stop: () => stopTree(child),
    /** The workerd process that runs the worker (the largest workerd under npm start). */
    workerd() {
      const procs = descendants(child.pid).filter((p) => commOf(p) === 'workerd')
      return procs.map((pid) => ({ pid, cmdline: cmdlineOf(pid).join(' ') }))
    },
  }
}

/** A self-signed certificate for 127.0.0.1 (distribution speaks TLS, as ours does to skopeo). */
function certificate(dir) {
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  const made = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', key, '-out', cert,
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`)
  return { key, cert }
}

/** Debian's `docker-registry` (distribution 2.8) on `port`, filesystem storage in `dir`, its own config. */
export async function startDistribution({ port: wanted, dir, tls = true }) {
  mkdirSync(join(dir, 'storage'), { recursive: true })
  const port = await freePorts(wanted, 1)
  const logFile = join(dir, 'registry.log')
  const { key, cert } = tls ? certificate(dir) : {}
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    '  cache:',
    '    blobdescriptor: inmemory',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...(tls ? ['  tls:', `    certificate: ${cert}`, `    key: ${key}`] : []),
    '',
  ].join('\n')
  const configFile = join(dir, 'config.yml')
  writeFileSync(configFile, config)
  const child = startDetached('docker-registry', ['serve', configFile], { cwd: dir, env: process.env, logFile })
  const scheme = tls ? 'https' : 'http'
  const prev = process.env.NODE_TLS_REJECT_UNAUTHORIZED
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
  try {
    await waitReady(`${scheme}://127.0.0.1:${port}/v2/`, child, 30_000, logFile)
  } finally {
    if (prev === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = prev
  }
  return { name: 'distribution', port, host: `127.0.0.1:${port}`, scheme, logFile, stop: () => stopTree(child) }
}
