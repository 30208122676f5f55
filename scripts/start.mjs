#!/usr/bin/env node
/**
 * `npm start`: the registry on one local port that speaks both HTTP and HTTPS.
 *
 * skopeo, podman and docker try HTTPS first even with TLS verification off; a plain-HTTP
 * `wrangler dev` port never answers their ClientHello, so each call would wait 10 s before
 * falling back. Here a small TCP front owns the public port and looks at the first byte of each
 * connection: 0x16 (a TLS handshake record) is decrypted with a self-signed certificate, anything
 * else is passed through untouched. Both go, byte for byte, to `wrangler dev` on a loopback port.
 *
 * Bytes are piped, not re-parsed, so the worker sees the client's own Host header and path
 * (what it builds Location headers from), and chunked bodies, Expect: 100-continue and
 * keep-alive reach it exactly as sent.
 *
 * Env: PORT (public port, default 8787), WRANGLER_PORT (internal, default: a free loopback port).
 * Arguments go to `wrangler dev`, except `--port`/`--ip`, which apply to the public port.
 * SIGINT/SIGTERM/SIGHUP stop wrangler's whole process group, then this process.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const TLS_HANDSHAKE = 0x16

const { publicIp, publicPort, wranglerArgs } = parseArgs(process.argv.slice(2))
const innerPort = Number(process.env.WRANGLER_PORT) || (await freePort())
const log = (msg) => console.error(`[start] ${msg}`)

let stopping = false
let wrangler = null
const servers = []
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => stop(0))
process.on('uncaughtException', (err) => {
  log(`fatal: ${err.stack ?? err}`)
  stop(1)
})

const secureContext = loadCertificate()
let announced
const wranglerAnnounced = new Promise((resolve) => (announced = resolve))
wrangler = startWrangler()
// Connections made while wrangler boots wait for it instead of being refused.
const wranglerReady = waitForWrangler()
await listen()
await wranglerReady
log(`registry ready on http://localhost:${publicPort} and https://localhost:${publicPort} (self-signed${secureContext ? '' : ': unavailable, TLS is refused'})`)

/** `--port N` / `--ip A` (either form, `--port=N`) are ours; everything else is wrangler's. */
function parseArgs(args) {
  let port = Number(process.env.PORT || 8787)
  let ip = null
  const rest = []
  for (let i = 0; i < args.length; i++) {
    const m = /^--(port|ip)(?:=(.*))?$/.exec(args[i])
    if (!m) {
      rest.push(args[i])
      continue
    }
    const value = m[2] ?? args[++i]
    if (m[1] === 'port') port = Number(value)
    else ip = value
  }
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`bad port: ${port}`)
  return { publicIp: ip, publicPort: port, wranglerArgs: rest }
}

/**
 * A self-signed certificate for localhost, made once with the openssl CLI into .wrangler/certs.
 * Without openssl, TLS connections are closed at once: clients then fall back to HTTP without
 * waiting (they only wait when the handshake goes unanswered).
 */
function loadCertificate() {
  const dir = join(root, '.wrangler', 'certs')
  const key = join(dir, 'localhost-key.pem')
  const cert = join(dir, 'localhost-cert.pem')
  if (!existsSync(key) || !existsSync(cert)) {
    mkdirSync(dir, { recursive: true })
    const made = spawnSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '3650', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      '-keyout', key, '-out', cert,
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    if (made.error || made.status !== 0) {
      log(`cannot create a certificate with openssl (${made.error?.message ?? made.stderr}); serving HTTP only`)
      return null
    }
    log(`created a self-signed certificate in ${dir}`)
  }
  return tls.createSecureContext({ key: readFileSync(key), cert: readFileSync(cert) })
}

/** wrangler dev in its own process group, so stopping it also stops workerd. */
function startWrangler() {
  const bin = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js')
  const child = spawn(process.execPath, [
    bin, 'dev', '--ip', '127.0.0.1', '--port', String(innerPort),
    '--show-interactive-dev-session=false', ...wranglerArgs,
  ], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
  })
  // wrangler announces its internal address; users should see the public one.
  const inner = new RegExp(`(127\\.0\\.0\\.1|localhost):${innerPort}`, 'g')
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.includes('Ready on ') && line.includes(`:${innerPort}`)) announced()
    console.log(line.replace(inner, `localhost:${publicPort}`))
  })
  child.on('exit', (code, signal) => {
    if (stopping) return
    log(`wrangler dev exited (${signal ?? code})`)
    process.exit(code || 1)
  })
  return child
}

/** The public port, on both loopback stacks unless an address was given. */
async function listen() {
  const addresses = publicIp ? [publicIp] : ['127.0.0.1', '::1']
  for (const host of addresses) {
    const server = net.createServer(route)
    try {
      await new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host, port: publicPort }, resolve)
      })
      servers.push(server)
    } catch (err) {
      // No IPv6 loopback is fine; a port in use is not.
      if (host === '::1' && err.code === 'EADDRNOTAVAIL') continue
      log(`cannot listen on ${host}:${publicPort}: ${err.message}`)
      await stop(1)
    }
  }
}

/** Sniff the first byte, then pipe to wrangler in plain text or through TLS. */
function route(client) {
  client.on('error', () => client.destroy())
  client.once('data', (first) => {
    client.pause()
    client.unshift(first)
    if (first[0] !== TLS_HANDSHAKE) return pipeToWrangler(client)
    if (!secureContext) return client.destroy()
    const secure = new tls.TLSSocket(client, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] })
    secure.on('error', () => secure.destroy())
    pipeToWrangler(secure)
  })
}

async function pipeToWrangler(downstream) {
  await wranglerReady
  if (downstream.destroyed) return
  const upstream = net.connect({ host: '127.0.0.1', port: innerPort })
  upstream.setNoDelay(true)
  const close = () => {
    upstream.destroy()
    downstream.destroy()
  }
  upstream.on('error', close)
  downstream.on('error', close)
  upstream.on('close', close)
  downstream.on('close', close)
  downstream.pipe(upstream)
  upstream.pipe(downstream)
  downstream.resume()
}

/** A loopback port nothing listens on now (the kernel's pick). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().once('error', reject)
    probe.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

/**
 * Resolves once our wrangler has said it is ready (so another server that happens to hold the
 * port does not count) and answers /v2/.
 */
async function waitForWrangler() {
  await wranglerAnnounced
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${innerPort}/v2/`, { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      return
    } catch {
      await new Promise((r) => setTimeout(r, 250))
    }
  }
}

async function stop(code) {
  if (stopping) return
  stopping = true
  for (const s of servers) s.close()
  if (!wrangler) process.exit(code)
  const group = -wrangler.pid
  const alive = () => wrangler.exitCode === null && wrangler.signalCode === null
  const signal = (sig) => {
    try {
      process.kill(group, sig)
    } catch {}
  }
  signal('SIGTERM')
  const deadline = Date.now() + 5000
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  // workerd may outlive wrangler's node process; the group takes both.
  signal('SIGKILL')
  process.exit(code)
}
