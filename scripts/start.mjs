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
 * wrangler's proxy lost on a stale connection is sent again (a blob GET's answer is read as raw
 * bytes: scripts/front-get.mjs, for the CPU a layer costs). Everything else reaches the worker
 * as sent: the client's Host (what the worker builds Location headers from), method, path,
 * headers and body bytes (chunked bodies stay chunked). Every request carries the socket's peer
 * address as `CF-Connecting-IP` (a client's own `CF-…` headers are dropped: the worker tells
 * local callers by it, and takes `CF-Ray` as the request id), HTTPS requests also
 * `X-Forwarded-Proto: https` (scripts/front-headers.mjs). A request with no, several or an
 * invalid Host header, or a target that is neither a path nor an absolute URL, gets 400 here
 * (RFC 9112 3.2), as wrangler dev cannot route it; an absolute URL goes on as its path, its
 * authority as the Host.
 *
 * People run this on a LAN, so every connection is bounded (issue 20): at most MAX_CONNECTIONS
 * at once, a request head within HEADERS_TIMEOUT_MS, no more than IDLE_TIMEOUT_MS without a
 * byte while the client sends its body or reads the answer, and no body held in memory beyond
 * the small copies kept for a retry (RETRY_BUDGET in all). An answer that leaves before the
 * client has sent its whole body (the 413 over MAX_CHUNK_BYTES) closes the connection after
 * it, and of a body the worker refuses no more goes to wrangler than it needs to refuse it
 * (see bodyCap).
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
import tls from 'node:tls'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'

import { clientGone, getRaw, hasRoom, whenClientLeaves } from './front-get.mjs'
import { badHost, forwardedHeaders, HOP_BY_HOP, originForm } from './front-headers.mjs'

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
// Node's own order puts AES-256-GCM first and picks by it whatever the client prefers; Go's TLS
// server (distribution's) and Go's clients (skopeo, docker, containerd) prefer AES-128-GCM, which
// takes 10 AES rounds a block instead of 14 on both ends.
const CIPHERS = ['TLS_AES_128_GCM_SHA256', ...tls.DEFAULT_CIPHERS.split(':').filter((c) => c !== 'TLS_AES_128_GCM_SHA256')].join(':')
// Idle connections are dropped before workerd's own 5 s keep-alive timeout can race a request.
const toWrangler = new http.Agent({ keepAlive: true, timeout: 2000 })
// A body of at most RETRY_BODY_LIMIT bytes (every manifest) is copied as it streams on, so that a
// request wrangler lost can be sent again; the copies of all requests together stay under
// RETRY_BUDGET (past it, a request streams without one and is not retried).
const RETRY_BODY_LIMIT = 4 * 1024 * 1024
const RETRY_BUDGET = 64 * 1024 * 1024
let heldForRetry = 0
// Connections served at once (see route).
const MAX_CONNECTIONS = 1000
// A connection's first byte, a TLS handshake, and each request head must come within this.
const HEADERS_TIMEOUT_MS = 15_000
// While the client sends its body or reads the answer, at most this long without a byte. No
// request timeout: a big layer may take minutes to upload.
const IDLE_TIMEOUT_MS = 60_000
// After an answer given before the whole body arrived: how long the client's remaining bytes are
// read (and dropped) before the connection is closed (see closeAfterAnswer).
const LINGER_MS = 2000
let connections = 0
let refusedLogged = 0
// Connections that have not sent a byte yet, oldest first.
const silentSockets = new Set()
const UPLOAD_PATH = /^\/v2\/.+\/blobs\/uploads\//
const UPLOAD_METHODS = new Set(['POST', 'PATCH', 'PUT'])
const BLOB_PATH = /^\/v2\/.+\/blobs\/[^/?]+(\?|$)/
// MAX_CHUNK_BYTES as the worker states it (OCI-Chunk-Max-Length on its upload replies); null until it has.
let chunkLimit = null
const serverOptions = {
  requestTimeout: 0, headersTimeout: HEADERS_TIMEOUT_MS, keepAliveTimeout: 5000, connectionsCheckingInterval: 1000,
}
const plain = http.createServer(serverOptions, handle)
const secure = certificate && https.createServer({
  ...certificate, ...serverOptions, handshakeTimeout: HEADERS_TIMEOUT_MS, ALPNProtocols: ['http/1.1'], ciphers: CIPHERS,
}, handle)
for (const server of [plain, secure].filter(Boolean)) {
  server.on('checkContinue', continueUnlessRefused)
  // Node times request heads (headersTimeout) only on a server that has emitted 'listening'
  // (setupConnectionsTracking); these two never listen: the sniffing front hands them connections.
  server.emit('listening')
}
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
    // A reload may bring another MAX_CHUNK_BYTES: the next POST's reply says.
    if (line.includes('Reloading local server')) chunkLimit = null
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
    // No Nagle: an answer goes out as its head and then its body, and the body would wait for
    // the client's delayed ACK of the head (40 ms per manifest, blob or error; a plain
    // http.Server sets this itself, but this one hands its sockets on, see route).
    const server = net.createServer({ noDelay: true }, route)
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

/**
 * Sniff the first byte and hand the connection to the HTTPS or the HTTP server. A connection
 * that sends nothing within HEADERS_TIMEOUT_MS is closed; at MAX_CONNECTIONS, a new one takes
 * the place of the oldest that has sent nothing yet (clients speak as soon as they connect; a
 * flood of silent connections cannot lock them out), and is closed when there is none.
 */
function route(socket) {
  socket.on('error', () => socket.destroy())
  if (connections >= MAX_CONNECTIONS) {
    const oldest = silentSockets.values().next().value
    if (oldest) {
      oldest.destroy()
    } else {
      if (Date.now() - refusedLogged > 60_000) {
        refusedLogged = Date.now()
        log(`${connections} connections open (the most served at once): new ones are closed until some end`)
      }
      socket.destroy()
      return
    }
  }
  connections++
  silentSockets.add(socket)
  socket.once('close', () => {
    connections--
    silentSockets.delete(socket)
  })
  const silent = () => socket.destroy()
  socket.setTimeout(HEADERS_TIMEOUT_MS, silent)
  socket.once('data', (first) => {
    silentSockets.delete(socket)
    socket.setTimeout(0)
    socket.removeListener('timeout', silent)
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
 * `Expect: 100-continue`: a body the worker will refuse unread (see bodyCap) is not asked for;
 * the refusal comes instead (RFC 9110 10.1.1), so the client never sends it.
 */
function continueUnlessRefused(req, res) {
  if (bodyCap(req) > 0) res.writeContinue()
  handle(req, res)
}

/**
 * One request to wrangler and its answer back, both streamed. The body's first bytes are kept
 * (ClientBody) so that a request wrangler's proxy lost before any answer is sent again (see
 * lostByWrangler). An answer that comes before the client has sent its whole body is passed on
 * at once, and the connection closed after it.
 */
async function forward(req, res) {
  const form = originForm(req.url, req.rawHeaders)
  const invalid = form ? badHost(form.rawHeaders) : 'the request target is not a path or an absolute http(s) URL (RFC 9112 3.2)'
  if (invalid || !form) {
    const body = JSON.stringify({ errors: [{ code: 'BAD_REQUEST', message: invalid, detail: null }] })
    res.writeHead(400, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' }).end(body)
    return
  }
  // From here on the target is a path (an absolute-form one's Host is now its authority).
  req.url = form.path
  await wranglerReady
  const headers = forwardedHeaders(form.rawHeaders, { remoteAddress: req.socket.remoteAddress, encrypted: !!req.socket.encrypted })
  // An upload's answers have no body but errors, and wrangler dev gzips those (Cloudflare does
  // not compress a 413) and holds the gzip's last bytes until the request body has ended: the
  // answer to a body the worker refuses unread would never end. Uncompressed, it comes whole.
  const sent = isUpload(req) ? withoutHeaders(headers, /^accept-encoding$/i) : headers
  if (isBlobGet(req)) return forwardBlobGet(req, res, sent)
  if (chunkLimit === null && isUpload(req) && hasBody(req)) await askChunkLimit(req, sent)
  // Before the answer, the client may be silent only when it is not its turn: its body is
  // all sent, or wrangler is not taking more of it yet.
  let answered = false
  const idle = () => req.socket.setTimeout((body.done || body.held) && !answered ? 0 : IDLE_TIMEOUT_MS)
  const body = new ClientBody(req, bodyCap(req), idle)
  idle()
  // The copy is freed when the answer is done, however it ends (a 502 too), or when the client leaves.
  res.once('close', () => body.release())
  whenClientLeaves(res, () => body.release())
  for (let attempt = 1; ; attempt++) {
    const retryable = attempt < 4
    let answer
    try {
      answer = await send(req, sent, body, res)
    } catch (err) {
      if (res.destroyed) return
      if (retryable && err.reusedSocket && body.resendable) continue
      if (!body.done) closeAfterAnswer(req, res)
      res.writeHead(502, { 'Content-Type': 'text/plain' }).end(`wrangler dev: ${err.message}\n`)
      return
    }
    const lost = await lostByWrangler(answer)
    if (lost?.retry && retryable && body.resendable) continue
    body.release()
    answered = true
    idle()
    if (isUpload(req)) learnChunkLimit(answer)
    if (!body.done) closeAfterAnswer(req, res)
    res.writeHead(answer.statusCode, answer.statusMessage, backHeaders(answer.rawHeaders))
    if (lost) return res.end(lost.bytes)
    answer.on('error', () => res.destroy())
    answer.pipe(res)
    return
  }
}

/**
 * A blob GET: its answer read as raw bytes (scripts/front-get.mjs: a fraction of the CPU a
 * layer costs through Node's HTTP client). Sent again when wrangler's proxy lost it, as any
 * request (lostByWrangler).
 */
async function forwardBlobGet(req, res, headers) {
  req.resume()
  // The client waits for the answer: no idle bound until it comes, as in forward.
  req.socket.setTimeout(0)
  for (let attempt = 1; ; attempt++) {
    let answer
    try {
      answer = await getRaw({ port: innerPort, path: literalPath(req.url), rawHeaders: headers })
    } catch (err) {
      if (res.destroyed) return
      res.writeHead(502, { 'Content-Type': 'text/plain' }).end(`wrangler dev: ${err.message}\n`)
      return
    }
    if (clientGone(res)) return answer.destroy()
    const lost = await lostByWrangler(answer)
    if (lost?.retry && attempt < 4) continue
    req.socket.setTimeout(IDLE_TIMEOUT_MS)
    res.writeHead(answer.statusCode, answer.statusMessage, backHeaders(answer.rawHeaders))
    if (lost) return res.end(lost.bytes)
    answer.pipeTo(res)
    return
  }
}

/** An answer's raw headers without the hop-by-hop ones. */
function backHeaders(rawHeaders) {
  const back = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!HOP_BY_HOP.has(rawHeaders[i].toLowerCase())) back.push(rawHeaders[i], rawHeaders[i + 1])
  }
  return back
}

function learnChunkLimit(answer) {
  const n = Number(answer.headers['oci-chunk-max-length'])
  if (Number.isSafeInteger(n) && n > 0) chunkLimit = n
}

/** Raw headers (name, value, …) without those whose name matches. */
function withoutHeaders(headers, names) {
  const kept = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!names.test(headers[i])) kept.push(headers[i], headers[i + 1])
  }
  return kept
}

const isUpload = (req) => UPLOAD_METHODS.has(req.method) && UPLOAD_PATH.test(req.url)
const isBlobGet = (req) => req.method === 'GET' && BLOB_PATH.test(req.url) && !hasBody(req) && hasRoom()
const hasBody = (req) => req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0

/**
 * Learns MAX_CHUNK_BYTES before an upload body goes on while it is unknown (a monolithic
 * `POST ?digest=` as the first upload since start): the worker states it on every POST that
 * opens a session, so one is opened on the request's repository with the request's headers
 * (credentials, Host). Opening one costs no storage call, and the session is never used.
 * When the worker answers otherwise (no access, read-only), the request goes on uncapped.
 */
function askChunkLimit(req, headers) {
  const sessions = UPLOAD_PATH.exec(req.url)[0]
  return new Promise((resolve) => {
    const ask = http.request({
      host: '127.0.0.1', port: innerPort, method: 'POST', path: literalPath(sessions), agent: toWrangler,
      headers: withoutHeaders(headers, /^(content-|transfer-encoding$)/i),
    }, (answer) => {
      learnChunkLimit(answer)
      answer.resume().on('end', resolve).on('error', resolve)
    })
    ask.on('error', resolve)
    ask.end()
  })
}

/**
 * How many body bytes of a request go on to wrangler: all of them, except for an upload (POST,
 * PATCH, PUT under …/blobs/uploads/) once the worker has stated its MAX_CHUNK_BYTES (every POST
 * that opens a session does): a declared length over it sends none, and a chunked body ends one
 * byte past it (ClientBody). The worker refuses either at once (413), and no bytes it would
 * leave unread pile up on the way: wrangler dev resets a connection with unread bytes, and the
 * answer on it can be lost.
 */
function bodyCap(req) {
  if (chunkLimit === null || !isUpload(req)) return Infinity
  const declared = req.headers['transfer-encoding'] === undefined ? Number(req.headers['content-length']) : NaN
  return declared > chunkLimit ? 0 : chunkLimit + 1
}

/**
 * A request's body on its way to wrangler: streamed at the client's pace (backpressure), no
 * more than `cap` bytes (see bodyCap; a chunked body ends there, so the worker sees it is over
 * its limit without waiting for more), and copied while it stays within RETRY_BODY_LIMIT and
 * the shared RETRY_BUDGET, so it can be sent again (`resendable`: the copy holds every byte
 * received so far). `onChange` is called when `done` (the client has sent it all) or `held`
 * (wrangler takes no more for now) changes.
 */
class ClientBody {
  done = false
  held = false
  #req
  #cap
  #onChange
  #target = null
  #sent = 0
  #received = 0
  #kept = []
  #keptBytes = 0
  #keeping = true

  constructor(req, cap, onChange) {
    this.#req = req
    this.#cap = cap
    this.#onChange = onChange
    req.pause()
    req.on('data', (chunk) => this.#take(chunk))
    req.on('end', () => {
      this.done = true
      if (this.#target && !this.#target.writableEnded && this.#sent === this.#received) this.#target.end()
      onChange()
    })
  }

  get resendable() {
    return this.#keeping
  }

  /** Sends the body (what is kept of it, then the rest as it comes) as the body of `upstream`. */
  sendTo(upstream) {
    this.#target = upstream
    this.#sent = 0
    this.held = false
    if (!hasBody(this.#req)) {
      upstream.end()
      this.#req.resume()
      return
    }
    // The head goes at once: the worker may answer it (a declared length over the limit) alone.
    upstream.flushHeaders()
    for (const chunk of this.#kept) this.#forward(chunk)
    if (this.done && this.#sent === this.#received) upstream.end()
    else if (this.#sent < this.#cap) this.#req.resume()
  }

  /** Sends nothing more to `upstream` (it answered); what the client still sends is dropped. */
  stop(upstream) {
    if (this.#target !== upstream) return
    this.#target = null
    this.#req.pause()
  }

  /** Frees the copy (the request is answered: it will not be sent again). */
  release() {
    heldForRetry -= this.#keptBytes
    this.#kept = []
    this.#keptBytes = 0
    this.#keeping = false
  }

  #take(chunk) {
    this.#received += chunk.byteLength
    if (this.#keeping) {
      if (this.#keptBytes + chunk.byteLength > RETRY_BODY_LIMIT || heldForRetry + chunk.byteLength > RETRY_BUDGET) {
        this.release()
      } else {
        this.#kept.push(chunk)
        this.#keptBytes += chunk.byteLength
        heldForRetry += chunk.byteLength
      }
    }
    const target = this.#target
    if (!target) return
    if (!this.#forward(chunk)) {
      this.#req.pause()
      this.#hold(true)
      target.once('drain', () => {
        this.#hold(false)
        if (this.#target === target && this.#sent < this.#cap) this.#req.resume()
      })
    }
    // Past the cap, the client waits: the worker refuses what it has, and the rest is dropped then.
    if (this.#sent >= this.#cap) this.#req.pause()
  }

  #hold(held) {
    this.held = held
    this.#onChange()
  }

  /** Writes what of `chunk` fits under the cap (ending a chunked body there); false when the upstream wants a pause. */
  #forward(chunk) {
    const room = this.#cap - this.#sent
    if (room <= 0) return true
    const part = chunk.byteLength > room ? chunk.subarray(0, room) : chunk
    this.#sent += part.byteLength
    const more = this.#target.write(part)
    if (this.#sent === this.#cap) this.#target.end()
    return more
  }
}

/**
 * An answer that leaves before the client has sent its whole body (a refusal, such as the 413
 * over MAX_CHUNK_BYTES) ends the connection, in stages (RFC 9112 9.6, "Tear-down"): the answer
 * with `Connection: close`, then FIN, then whatever the client still sends is read and dropped
 * for LINGER_MS, then the socket is closed. Closing at once, with the client's bytes unread,
 * would reset the connection, and a reset can wipe the answer out of the client's buffers
 * before it reads it. The client is not waited for: it has its answer, and most stop sending.
 */
function closeAfterAnswer(req, res) {
  res.shouldKeepAlive = false
  // Node's server calls destroySoon() on the socket once the last answer is written.
  req.socket.destroySoon = function lingeringClose() {
    this.end()
    req.resume()
    setTimeout(() => this.destroy(), LINGER_MS).unref()
  }
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

/**
 * Sends the request with its body (see ClientBody); resolves with wrangler's answer, once it
 * begins. A request whose body was not sent whole is not reused: it ends with the answer.
 */
function send(req, headers, body, res) {
  return new Promise((resolve, reject) => {
    const upstream = http.request({
      host: '127.0.0.1', port: innerPort, method: req.method, path: literalPath(req.url), headers, agent: toWrangler,
    }, (answer) => {
      body.stop(upstream)
      if (!upstream.writableFinished) answer.once('end', () => upstream.destroy())
      resolve(answer)
    })
    upstream.on('error', (err) => {
      body.stop(upstream)
      reject(Object.assign(err, { reusedSocket: upstream.reusedSocket }))
    })
    whenClientLeaves(res, () => upstream.destroy())
    body.sendTo(upstream)
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
