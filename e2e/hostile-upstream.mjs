#!/usr/bin/env node
/**
 * A hostile upstream registry for e2e/proxy.sh: what an upstream that is compromised, or a man
 * in the middle of an http:// one, could answer. The registry must read none of it further than
 * its limits (docs/limits.md, "proxied reads").
 *
 *   node e2e/hostile-upstream.mjs PORT LOG-FILE
 *
 *   GET /v2/endless/manifests/<ref>   200, a manifest body without Content-Length that never ends
 *                                      (up to 2 GiB, at the reader's pace)
 *   GET /v2/deep/tags/list            200, 4 MiB of nested arrays
 *   GET /v2/                          200 {}; anything else 404
 * LOG-FILE gets one line per request, and for the endless body how many MiB were read of it.
 */
import { appendFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'

const [port, logFile] = process.argv.slice(2)
const MiB = 1024 * 1024
const log = (line) => appendFileSync(logFile, `${line}\n`)
writeFileSync(logFile, '')

http.createServer((req, res) => {
  const path = new URL(req.url, 'http://upstream.invalid').pathname
  log(`${req.method} ${path}`)
  if (path === '/v2/') return res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}')
  if (/^\/v2\/endless\/manifests\//.test(path)) {
    res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' })
    const chunk = Buffer.alloc(MiB, 0x20)
    let sent = 0
    res.on('close', () => log(`endless: ${sent / MiB} MiB read`))
    const pump = () => {
      while (sent < 2048 * MiB) {
        sent += MiB
        if (!res.write(chunk)) return res.once('drain', pump)
      }
      res.end()
    }
    return pump()
  }
  if (path === '/v2/deep/tags/list') {
    const n = 2 * MiB
    return res.writeHead(200, { 'Content-Type': 'application/json' }).end(`{"tags":${'['.repeat(n)}${']'.repeat(n)}}`)
  }
  res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}')
}).listen(Number(port), '127.0.0.1')
