/**
 * A small keep-alive HTTP/1.1 load generator (closed loop: each connection sends its next
 * request when the last reply is complete). wrk and autocannon both wait for a body after
 * a HEAD reply that carries Content-Length (they do not tell their parser the request was
 * HEAD), so HEAD needs this; GET is measured with it too, and with wrk as a cross-check.
 */
import net from 'node:net'
import tls from 'node:tls'

const HEADER_END = Buffer.from('\r\n\r\n')

/** Runs `connections` loops for `seconds`: { requestsPerSec, p50Ms, p99Ms, total, non2xx, errors }. */
export async function load({ url, method = 'GET', headers = {}, connections = 32, seconds = 10 }) {
  const u = new URL(url)
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80))
  const lines = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
  const request = Buffer.from(lines.join('\r\n') + '\r\n\r\n')
  const latencies = []
  let non2xx = 0
  let errors = 0
  const start = performance.now()
  const deadline = start + seconds * 1000

  const open = () =>
    new Promise((resolve, reject) => {
      const s = u.protocol === 'https:'
        ? tls.connect({ host: u.hostname, port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => resolve(s))
        : net.connect({ host: u.hostname, port }, () => resolve(s))
      s.once('error', reject)
      s.setNoDelay(true)
    })

  /** Sends requests on one socket until the deadline or until the server closes it. */
  const session = (sock) =>
    new Promise((resolve) => {
      let buf = Buffer.alloc(0)
      let sent = 0
      let need = -1 // bytes of the current reply (head + body), once its head is parsed
      let close = false
      const send = () => {
        sent = performance.now()
        need = -1
        sock.write(request)
      }
      const done = (ok) => {
        sock.removeAllListeners('data')
        sock.destroy()
        resolve(ok)
      }
      sock.on('data', (chunk) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
        for (;;) {
          if (need < 0) {
            const end = buf.indexOf(HEADER_END)
            if (end < 0) return
            const head = buf.subarray(0, end).toString('latin1')
            const status = Number(head.slice(9, 12))
            if (status < 200 || status > 299) non2xx++
            const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
            close = /\r\nconnection:\s*close/i.test(head)
            if (/\r\ntransfer-encoding:\s*chunked/i.test(head) && method !== 'HEAD') {
              const term = buf.indexOf('\r\n0\r\n\r\n', end)
              if (term < 0) return
              need = term + 7
            } else {
              need = end + 4 + (method === 'HEAD' ? 0 : Number(length?.[1] ?? 0))
            }
          }
          if (buf.length < need) return
          latencies.push(performance.now() - sent)
          buf = buf.subarray(need)
          if (close || performance.now() >= deadline) return done(true)
          send()
        }
      })
      sock.on('error', () => {
        errors++
        done(false)
      })
      sock.on('close', () => done(false))
      send()
    })

  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < deadline) {
      try {
        await session(await open())
      } catch {
        errors++
        await new Promise((r) => setTimeout(r, 10))
      }
    }
  }))
  const elapsed = (performance.now() - start) / 1000
  const sorted = Float64Array.from(latencies).sort()
  const pct = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : null)
  return { requestsPerSec: latencies.length / elapsed, total: latencies.length, p50Ms: pct(50), p99Ms: pct(99), non2xx, errors }
}
