/** A minimal HTTP(S) client for the bench's own requests (no keep-alive, bodies from buffers or streams). */
import http from 'node:http'
import https from 'node:https'
import { once } from 'node:events'

/**
 * `body`: a Buffer, or an async iterable of Buffers sent with chunked transfer encoding
 * (unless a Content-Length header is given). Resolves { status, headers, body: Buffer }.
 */
export async function request(method, url, { headers = {}, body = null, timeoutMs = 600_000 } = {}) {
  const u = new URL(url)
  const lib = u.protocol === 'https:' ? https : http
  const req = lib.request(u, { method, headers, rejectUnauthorized: false, agent: false, timeout: timeoutMs })
  const response = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)))
  })
  if (body === null || Buffer.isBuffer(body) || typeof body === 'string') {
    req.end(body ?? undefined)
  } else {
    for await (const chunk of body) {
      if (!req.write(chunk)) await Promise.race([once(req, 'drain'), response])
    }
    req.end()
  }
  return response
}

/** The absolute URL of a Location header. */
export const resolve = (location, base) => new URL(location, base).toString()
