// @ts-check
/**
 * The tool's fetch on Node: requests whose body is a stream go through node:http(s), which
 * waits for the socket to drain before reading more; everything else through the global fetch.
 * (Node 20's fetch reads a stream body as fast as the disk gives it, whatever the network
 * takes: a 300 MB chunk grew the process by 300 MB. Through node:http it stays at a few MiB.)
 */
import http from 'node:http'
import https from 'node:https'
import { Readable } from 'node:stream'

const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
}

/** @type {typeof fetch} */
export const nodeFetch = async (input, init) => {
  const body = init?.body
  if (!(body instanceof ReadableStream)) return fetch(input, init)
  const url = new URL(input instanceof Request ? input.url : String(input))
  const protocol = /** @type {'http:' | 'https:'} */ (url.protocol)
  const send = protocol === 'https:' ? https.request : http.request
  /** @type {Record<string, string>} */
  const headers = {}
  new Headers(init?.headers).forEach((value, key) => { headers[key] = value })
  const source = Readable.fromWeb(/** @type {import('node:stream/web').ReadableStream<Uint8Array>} */ (body))
  return new Promise((resolve, reject) => {
    const req = send(url, { method: init?.method ?? 'POST', headers, agent: agents[protocol] }, (res) => {
      // A reply before the whole body was sent (a 413, a 401, a proxy's 503): stop sending, and
      // drop the connection once the reply is read, as it can carry no other request.
      if (!req.writableFinished) {
        source.unpipe(req)
        source.destroy()
        res.once('close', () => req.destroy())
      }
      /** @type {[string, string][]} */
      const pairs = []
      for (let i = 0; i < res.rawHeaders.length; i += 2) pairs.push([/** @type {string} */ (res.rawHeaders[i]), /** @type {string} */ (res.rawHeaders[i + 1])])
      const status = res.statusCode ?? 502
      const empty = status === 204 || status === 304 || init?.method === 'HEAD'
      if (empty) res.resume()
      resolve(new Response(empty ? null : /** @type {ReadableStream<Uint8Array>} */ (Readable.toWeb(res)), {
        status, statusText: res.statusMessage, headers: pairs,
      }))
    })
    req.on('error', (err) => reject(new TypeError(`fetch failed: ${err.message}`, { cause: err })))
    source.on('error', (err) => req.destroy(err))
    source.pipe(req)
  })
}
