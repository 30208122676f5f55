/** npm start's blob GETs read as raw bytes (scripts/front-get.mjs): framing, integrity, failures, backpressure. */
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import zlib from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { ChunkedDecoder, getRaw } from '../../scripts/front-get.mjs'

const MiB = 1024 * 1024
const closers: (() => void)[] = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

/** A fake wrangler dev: for each connection, `answer` writes raw bytes to the socket. */
async function upstream(answer: (socket: net.Socket, head: string) => void): Promise<number> {
  const server = net.createServer((socket) => {
    let head = ''
    socket.on('error', () => {})
    socket.on('data', function onData(d) {
      head += d.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.off('data', onData)
      answer(socket, head)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  closers.push(() => server.close())
  return (server.address() as net.AddressInfo).port
}

/** A front of one route: every request forwarded with getRaw, its answer piped back (as start.mjs does). */
async function front(port: number): Promise<number> {
  const server = http.createServer(async (req, res) => {
    try {
      const answer = await getRaw({ port, path: req.url!, rawHeaders: ['Host', 'x', 'Accept', 'a'] })
      const back: string[] = []
      for (let i = 0; i < answer.rawHeaders.length; i += 2) {
        if (!/^(connection|keep-alive)$/i.test(answer.rawHeaders[i]!)) back.push(answer.rawHeaders[i]!, answer.rawHeaders[i + 1]!)
      }
      res.writeHead(answer.statusCode, answer.statusMessage, back)
      answer.pipeTo(res)
    } catch (err) {
      res.writeHead(502).end(String(err))
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  closers.push(() => server.close())
  return (server.address() as net.AddressInfo).port
}

/** GET through the front: status, headers, body (or the error that cut it). */
function get(port: number, path = '/v2/r/blobs/sha256:x'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; error: Error | null }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (d) => parts.push(d))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), error: null }))
      res.on('error', (error) => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), error }))
      res.on('aborted', () => {})
    }).on('error', reject)
  })
}

/** A 200 of `total` zero bytes, written 1 MiB at a time as the socket takes them; `onWrite` hears each. */
function sendLarge(socket: net.Socket, total: number, onWrite: (bytes: number) => void = () => {}): void {
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`)
  const piece = Buffer.alloc(MiB)
  let written = 0
  const pump = () => {
    while (written < total) {
      written += piece.length
      onWrite(piece.length)
      if (!socket.write(piece)) return socket.once('drain', pump)
    }
  }
  pump()
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

describe('getRaw', () => {
  it('forwards a body of known length byte for byte, with its status and headers, and sends the request head as given', async () => {
    const body = randomBytes(5 * MiB + 7)
    let seen = ''
    const port = await upstream((socket, head) => {
      seen = head
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nDocker-Content-Digest: sha256:x\r\nX-Two: a\r\nX-Two: b\r\n\r\n`)
      // in uneven pieces, the first with the head's tail
      for (let at = 0; at < body.length; at += 333_333) socket.write(body.subarray(at, at + 333_333))
    })
    const res = await get(await front(port), '/v2/r/blobs/sha256:x?ns=docker.io')
    expect(res.status).toBe(200)
    expect(res.headers['content-length']).toBe(String(body.length))
    expect(res.headers['docker-content-digest']).toBe('sha256:x')
    expect(res.headers['x-two']).toBe('a, b')
    expect(sha(res.body)).toBe(sha(body))
    expect(seen).toBe('GET /v2/r/blobs/sha256:x?ns=docker.io HTTP/1.1\r\nHost: x\r\nAccept: a\r\n\r\n')
  })

  it('sends header bytes as the client sent them (a byte over 0x7f stays one byte, as Node\'s HTTP client sends it)', async () => {
    let seen = ''
    const port = await upstream((socket, head) => {
      seen = head
      socket.end('HTTP/1.1 204 No Content\r\n\r\n')
    })
    // Node's server hands a header's bytes on as latin1 characters: byte 0xe9 is 'é'.
    const answer = await getRaw({ port, path: '/v2/r/blobs/sha256:x', rawHeaders: ['Host', 'x', 'X-Note', 'caf\u00e9'] })
    expect(answer.statusCode).toBe(204)
    expect(seen).toContain('X-Note: caf\u00e9\r\n') // the upstream's head read as latin1
  })

  it('takes a head that comes a byte at a time, and an interim 1xx answer before the real one', async () => {
    const port = await upstream(async (socket) => {
      const text = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"errors":[]}'
      for (const ch of text) {
        socket.write(ch)
        await new Promise((r) => setImmediate(r))
      }
    })
    const res = await get(await front(port))
    expect(res.status).toBe(404)
    expect(res.body.toString()).toBe('{"errors":[]}')
  })

  it('decodes a chunked (gzip) answer, which the client gets framed again, whole', async () => {
    const json = JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'x'.repeat(5000) }] })
    const gz = zlib.gzipSync(json)
    const port = await upstream((socket) => {
      socket.write('HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n')
      for (let at = 0; at < gz.length; at += 50) socket.write(`${Math.min(50, gz.length - at).toString(16)};ext=1\r\n${gz.subarray(at, at + 50).toString('latin1')}\r\n`, 'latin1')
      socket.write('0\r\nX-Trailer: t\r\n\r\n')
    })
    const res = await get(await front(port))
    expect(res.status).toBe(404)
    expect(res.headers['content-encoding']).toBe('gzip')
    expect(zlib.gunzipSync(res.body).toString()).toBe(json)
  })

  it('reads a small body whole by iteration (the front reads a 503 to see whether wrangler lost the request)', async () => {
    const port = await upstream((socket) => {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 33\r\n\r\nYour worker restarted mid-request')
    })
    const answer = await getRaw({ port, path: '/', rawHeaders: ['Host', 'x'] })
    expect(answer.statusCode).toBe(503)
    expect(answer.headers['retry-after']).toBe('0')
    const parts: Buffer[] = []
    for await (const part of answer) parts.push(part)
    expect(Buffer.concat(parts).toString()).toBe('Your worker restarted mid-request')
  })

  it('ends a body without length or chunks when wrangler closes the connection', async () => {
    const port = await upstream((socket) => socket.end('HTTP/1.1 200 OK\r\n\r\nall of it'))
    const res = await get(await front(port))
    expect(res.body.toString()).toBe('all of it')
    expect(res.error).toBeNull()
  })

  it('cuts the client off when the answer breaks before its length: never a short body that looks whole', async () => {
    const port = await upstream((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${2 * MiB}\r\n\r\n`)
      socket.end(randomBytes(MiB))
    })
    const res = await get(await front(port))
    expect(res.status).toBe(200)
    expect(res.error).not.toBeNull()
    expect(res.body.length).toBeLessThan(2 * MiB)
  })

  it('rejects when wrangler closes before an answer, or answers what is not HTTP/1.1', async () => {
    const closes = await upstream((socket) => socket.destroy())
    await expect(getRaw({ port: closes, path: '/', rawHeaders: [] })).rejects.toThrow(/closed the connection/)
    const garbage = await upstream((socket) => socket.end('SSH-2.0-OpenSSH\r\n\r\n'))
    await expect(getRaw({ port: garbage, path: '/', rawHeaders: [] })).rejects.toThrow(/other than HTTP/)
    const huge = await upstream((socket) => socket.end(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`))
    await expect(getRaw({ port: huge, path: '/', rawHeaders: [] })).rejects.toThrow(/too large/)
  })

  it('reads no faster than the client takes: with the client not reading, wrangler cannot send much more than the socket buffers hold', async () => {
    const total = 200 * MiB
    let written = 0
    const port = await upstream((socket) => sendLarge(socket, total, (n) => (written += n)))
    const frontPort = await front(port)
    const client = net.connect(frontPort, '127.0.0.1')
    client.write('GET /v2/r/blobs/sha256:x HTTP/1.1\r\nHost: x\r\n\r\n')
    client.pause()
    await new Promise((r) => setTimeout(r, 1500))
    // Kernel buffers on both loopback connections (a few MiB each) plus what the front holds (3 MiB).
    expect(written).toBeLessThan(40 * MiB)
    let got = 0
    client.on('data', (d) => (got += d.length))
    client.resume()
    await new Promise<void>((r) => {
      const check = setInterval(() => {
        if (got >= total) {
          clearInterval(check)
          r()
        }
      }, 50)
    })
    client.destroy()
    expect(written).toBe(total)
  })
  it('drops the answers of a connection the client closed, also those queued behind another (pipelined GETs): none holds a wrangler connection', async () => {
    const total = 50 * MiB
    let open = 0
    const port = await upstream((socket) => {
      open++
      socket.on('close', () => open--)
      sendLarge(socket, total)
    })
    const frontPort = await front(port)
    const client = net.connect(frontPort, '127.0.0.1')
    client.on('error', () => {})
    client.write('GET /v2/r/blobs/sha256:a HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/r/blobs/sha256:b HTTP/1.1\r\nHost: x\r\n\r\n')
    client.pause()
    for (let i = 0; i < 100 && open < 2; i++) await new Promise((r) => setTimeout(r, 20))
    expect(open).toBe(2)
    await new Promise((r) => setTimeout(r, 200))
    client.destroy()
    for (let i = 0; i < 100 && open > 0; i++) await new Promise((r) => setTimeout(r, 20))
    expect(open).toBe(0)
  })
})

describe('ChunkedDecoder', () => {
  it('decodes sizes in any case, extensions, trailers, and input split anywhere', () => {
    const wire = Buffer.from('5;a=b\r\nhello\r\nA\r\n, chunked!\r\n0\r\nT: 1\r\n\r\n')
    for (const step of [1, 2, 7, wire.length]) {
      const d = new ChunkedDecoder()
      const out: Buffer[] = []
      for (let at = 0; at < wire.length; at += step) out.push(...d.push(wire.subarray(at, at + step)))
      expect(Buffer.concat(out).toString(), `step ${step}`).toBe('hello, chunked!')
      expect(d.done).toBe(true)
    }
  })

  it.each([
    ['an invalid size', 'zz\r\n'],
    ['data longer than its size', '2\r\nabc\r\n'],
    ['a size line without end', `${'1'.repeat(5000)}`],
  ])('refuses %s', (_what, wire) => {
    expect(() => new ChunkedDecoder().push(Buffer.from(wire))).toThrow()
  })
})
