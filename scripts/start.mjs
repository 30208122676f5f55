#!/usr/bin/env node
/**
 * `npm start`: the registry on one local port that speaks both HTTP and HTTPS.
 *
 * skopeo, podman and docker try HTTPS first even with TLS verification off; a plain-HTTP
 * `wrangler dev` port never answers their ClientHello, so each call would wait 10 s before
 * falling back. Here a small front owns the public port and looks at the first byte of each
 * connection: 0x16 (a TLS handshake record) goes to an HTTPS server with a self-signed
 * certificate, anything else to a plain HTTP server. Both forward every request (large bodies
 * streamed) to `wrangler dev` on a loopback port.
 *
 * The front forwards HTTP, not bytes, for two wrangler dev 4.86 quirks that broke big pushes
 * (the PUT right after a 300 MB PATCH answered 503 "Your worker restarted mid-request", though
 * nothing restarted): hop-by-hop headers stop here (skopeo and podman send `Connection: close`,
 * which wrangler's own proxy passes on to the worker), and a request with a small body that
 * wrangler's proxy lost on a stale connection is sent again. Everything else reaches the worker
 * as sent: the client's Host (what the worker builds Location headers from), method, path,
 * headers and body bytes (chunked bodies stay chunked). Every request carries the socket's peer
 * address as `CF-Connecting-IP` (a client's own is dropped: the worker tells local callers by
 * it), HTTPS requests also `X-Forwarded-Proto: https` (scripts/front-headers.mjs). A request
 * with no, several or an invalid Host header gets 400 here (RFC 9112 3.2), as wrangler dev
 * cannot route it.
 *
 * Env: PORT (public port, default 8787), WRANGLER_PORT (internal, default: a free loopback port).
 * Arguments go to `wrangler dev`, except `--port`/`--ip`, which apply to the public port.
 * SIGINT/SIGTERM/SIGHUP stop wrangler's whole process group, then this process.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'

import { badHost, forwardedHeaders, HOP_BY_HOP } from './front-headers.mjs'

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

const certificate = loadCertificate()
// Idle connections are dropped before workerd's own 5 s keep-alive timeout can race a request.
const toWrangler = new http.Agent({ keepAlive: true, timeout: 2000 })
const RETRY_BODY_LIMIT = 4 * 1024 * 1024
// No request timeout: a big layer may take minutes to upload.
const plain = http.createServer({ requestTimeout: 0 }, handle)
const secure = certificate && https.createServer({ ...certificate, requestTimeout: 0, ALPNProtocols: ['http/1.1'] }, handle)
let announced
const wranglerAnnounced = new Promise((resolve) => (announced = resolve))
wrangler = startWrangler()
// Connections made while wrangler boots wait for it instead of being refused.
const wranglerReady = waitForWrangler()
await listen()
await wranglerReady
log(`registry ready on http://localhost:${publicPort} and https://localhost:${publicPort} (self-signed${secure ? '' : ': unavailable, TLS is refused'})`)

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
 * A self-signed certificate for localhost (key and cert PEM), made once with the openssl CLI
 * into .wrangler/certs.
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
  return { key: readFileSync(key), cert: readFileSync(cert) }
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

/** Sniff the first byte and hand the connection to the HTTPS or the HTTP server. */
function route(socket) {
  socket.on('error', () => socket.destroy())
  socket.once('data', (first) => {
    socket.pause()
    socket.unshift(first)
    if (first[0] === TLS_HANDSHAKE) {
      // The TLS socket reads what was put back; resuming this one would hand it to no one.
      if (secure) secure.emit('connection', socket)
      else socket.destroy()
      return
    }
    plain.emit('connection', socket)
    socket.resume()
  })
}

/** A client that goes away mid-request loses its request, nothing more. */
function handle(req, res) {
  forward(req, res).catch(() => res.destroy())
}

/**
 * One request to wrangler and its answer back, streamed. A request whose whole body is small
 * (at most RETRY_BODY_LIMIT bytes: every bodiless request, manifests) is held so it can be sent
 * again when wrangler's proxy lost its connection to the worker before any answer (see
 * lostByWrangler); large bodies are streamed once.
 */
async function forward(req, res) {
  const invalid = badHost(req.rawHeaders)
  if (invalid) {
    const body = JSON.stringify({ errors: [{ code: 'BAD_REQUEST', message: invalid, detail: null }] })
    res.writeHead(400, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' }).end(body)
    return
  }
  await wranglerReady
  const headers = forwardedHeaders(req.rawHeaders, { remoteAddress: req.socket.remoteAddress, encrypted: !!req.socket.encrypted })
  const body = await smallBody(req)
  for (let attempt = 1; ; attempt++) {
    const retryable = body !== null && attempt < 4
    let answer
    try {
      answer = await send(req, headers, body, res)
    } catch (err) {
      if (res.destroyed) return
      if (retryable && err.reusedSocket) continue
      res.writeHead(502, { 'Content-Type': 'text/plain' }).end(`wrangler dev: ${err.message}\n`)
      return
    }
    const lost = await lostByWrangler(answer)
    if (lost?.retry && retryable) continue
    const back = []
    for (let i = 0; i < answer.rawHeaders.length; i += 2) {
      if (!HOP_BY_HOP.has(answer.rawHeaders[i].toLowerCase())) back.push(answer.rawHeaders[i], answer.rawHeaders[i + 1])
    }
    res.writeHead(answer.statusCode, answer.statusMessage, back)
    if (lost) return res.end(lost.bytes)
    answer.on('error', () => res.destroy())
    answer.pipe(res)
    return
  }
}

/** The body when it is known to be at most RETRY_BODY_LIMIT bytes (empty: none), else null. */
async function smallBody(req) {
  const chunked = req.headers['transfer-encoding'] !== undefined
  const length = Number(req.headers['content-length'] ?? (chunked ? NaN : 0))
  if (!(length <= RETRY_BODY_LIMIT)) return null
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/**
 * The request target with each backslash of its path percent-encoded. URL parsing (workerd's,
 * as any WHATWG parser) turns a raw `\` in a path into `/`, so `/v2/a\b/…` would reach the
 * worker as repository `a/b`; encoded, it reaches it as the invalid name it is (NAME_INVALID).
 */
function literalPath(target) {
  const q = target.indexOf('?')
  const path = q < 0 ? target : target.slice(0, q)
  return path.replaceAll('\\', '%5C') + (q < 0 ? '' : target.slice(q))
}

/** Sends the request (the held body, or the client's streamed); resolves with wrangler's answer. */
function send(req, headers, body, res) {
  return new Promise((resolve, reject) => {
    const upstream = http.request({
      host: '127.0.0.1', port: innerPort, method: req.method, path: literalPath(req.url), headers, agent: toWrangler,
    }, resolve)
    upstream.on('error', (err) => reject(Object.assign(err, { reusedSocket: upstream.reusedSocket })))
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    if (body) upstream.end(body)
    else req.pipe(upstream)
  })
}

/**
 * wrangler dev's own proxy answers 503 "Your worker restarted mid-request" when its connection
 * to the worker failed before any answer. With wrangler 4.86 that happens without any restart,
 * on a pooled connection the worker's runtime has just closed (the PUT right after a long
 * PATCH); the request never reached the worker. For a 503 with `Retry-After: 0` this reads the
 * (small) body and says whether it is that one; null for any other answer, left unread.
 */
async function lostByWrangler(answer) {
  if (answer.statusCode !== 503 || answer.headers['retry-after'] !== '0') return null
  const chunks = []
  for await (const chunk of answer) chunks.push(chunk)
  const bytes = Buffer.concat(chunks)
  let text = bytes
  try {
    const encoding = answer.headers['content-encoding']
    if (encoding === 'gzip') text = zlib.gunzipSync(bytes)
    else if (encoding === 'br') text = zlib.brotliDecompressSync(bytes)
  } catch {}
  return { bytes, retry: text.toString().startsWith('Your worker restarted mid-request') }
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
  toWrangler.destroy()
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
