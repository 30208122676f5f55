/**
 * A blob GET forwarded by `npm start`'s front (scripts/start.mjs) with its answer read as raw
 * bytes. Node's HTTP client reads a body into a newly allocated 64 KiB buffer per socket read
 * and hands each on through two streams: a warm 300 MiB layer cost the front 0.45–0.64 s of CPU
 * over HTTP and 0.8 s over HTTPS, twice what wrangler dev spent serving it, on the cores the
 * client needs to hash and write it. Here the socket reads into a few reused buffers (`onread`),
 * the head is parsed once, and a body of known length goes to the client piece by piece, each
 * buffer back in the pool once its write is done: 0.16–0.19 s over HTTP, 0.27–0.30 s over HTTPS;
 * curl's GET through the front 0.51–0.66 → 0.25–0.30 s (wrangler dev's own port: 0.21–0.29 s),
 * over HTTPS 0.83–0.96 → 0.39–0.45 s.
 *
 * One connection per GET, closed by the front once the answer is read: blob GETs are few and
 * large, and no idle connection is left to race workerd's keep-alive timeout.
 */
import net from 'node:net'

/**
 * Bytes a socket read takes at most, and how many such pieces one answer may have written and
 * not yet flushed. Measured (300 MiB, curl through the front over HTTP / HTTPS, front CPU):
 * 64 KiB × 4 0.37–0.49 / 0.55–0.73 s, 256 KiB × 4 0.21–0.30 / 0.39–0.48 s, 1 MiB × 2
 * 0.16–0.19 / 0.27–0.30 s: each write to the client costs about the same whatever its size.
 */
const PIECE = 1024 * 1024
const IN_FLIGHT = 2
/**
 * Answers read this way at once; a blob GET beyond them goes through Node's HTTP client. With
 * the read buffer, an answer holds at most (1 + IN_FLIGHT) pieces: 48 MiB for all of them.
 */
const ANSWERS_MAX = 16
/** Buffers kept for reuse across answers (at most this many; others are left to the GC). */
const POOL_MAX = 8
/** An answer's head (status line and headers) must fit in this. */
const HEAD_MAX = 64 * 1024

let answersOpen = 0
/** Whether another answer may be read this way now (see ANSWERS_MAX). */
export const hasRoom = () => answersOpen < ANSWERS_MAX

/** @type {Buffer[]} */
const pool = []
const takeBuffer = () => pool.pop() ?? Buffer.allocUnsafe(PIECE)
/** @param {Buffer} buf */
const giveBack = (buf) => {
  if (pool.length < POOL_MAX) pool.push(buf)
}

/**
 * Sends `GET path` with `rawHeaders` ([name, value, …], already checked by the front's HTTP
 * server: no CR or LF in them) to 127.0.0.1:`port`; resolves with the answer once its head has
 * come (see RawAnswer), rejects if the connection fails or closes before it.
 * @param {{ port: number, path: string, rawHeaders: string[] }} request
 * @returns {Promise<RawAnswer>}
 */
export function getRaw({ port, path, rawHeaders }) {
  let head = `GET ${path} HTTP/1.1\r\n`
  for (let i = 0; i < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`
  return new Promise((resolve, reject) => {
    const answer = new RawAnswer(resolve, reject)
    const socket = net.connect({
      host: '127.0.0.1', port, noDelay: true,
      onread: { buffer: takeBuffer, callback: (n, buf) => answer.take(n, /** @type {Buffer} */ (buf)) },
    })
    answer.attach(socket)
    socket.write(`${head}\r\n`, 'latin1') // each character one byte, as Node's server read them
  })
}

/**
 * An answer from wrangler dev: `statusCode`, `statusMessage`, `rawHeaders`, `headers` (lower-cased
 * names, repeated ones joined by ", "), then its body, either piped to a client's response
 * (`pipeTo`) or read whole (async iteration, for small bodies). A body of known length
 * (Content-Length) goes on as it came; a chunked one is decoded (the client's response frames
 * it again); one with neither ends when wrangler closes the connection.
 */
export class RawAnswer {
  statusCode = 0
  statusMessage = ''
  /** @type {string[]} */
  rawHeaders = []
  /** @type {Record<string, string>} */
  headers = {}
  #socket = /** @type {net.Socket | null} */ (null)
  #resolve
  #reject
  /** Bytes of the head read so far (copies), until it is complete. */
  #headParts = /** @type {Buffer[]} */ ([])
  #framing = /** @type {'length' | 'chunked' | 'close' | null} */ (null)
  /** Body bytes still to come (framing 'length'). */
  #left = 0
  #chunked = new ChunkedDecoder()
  /** Body pieces not yet taken (copies): before `pipeTo`, or for the async iteration. */
  #queued = /** @type {Buffer[]} */ ([])
  /** Where body pieces go once `pipeTo` is called: (piece, its pooled buffer or null). */
  #sink = /** @type {((piece: Buffer, buf: Buffer | null) => void) | null} */ (null)
  #ended = false
  #error = /** @type {Error | null} */ (null)
  /** Called on every new piece, the end or a failure. */
  #wake = () => {}

  /**
   * @param {(answer: RawAnswer) => void} resolve
   * @param {(err: Error) => void} reject
   */
  constructor(resolve, reject) {
    this.#resolve = resolve
    this.#reject = reject
    answersOpen++
  }

  /** @param {net.Socket} socket */
  attach(socket) {
    this.#socket = socket
    socket.on('error', (err) => this.#fail(err))
    socket.on('close', () => {
      if (this.#framing === 'close') this.#finish()
      else this.#fail(new Error('wrangler dev closed the connection before the answer ended'))
    })
  }

  /**
   * The socket read `n` bytes into `buf` (onread); true: go on reading.
   * @param {number} n
   * @param {Buffer} buf
   */
  take(n, buf) {
    if (this.#ended || this.#error) giveBack(buf)
    else if (this.#framing !== null) this.#body(buf.subarray(0, n), buf)
    else {
      const bytes = Buffer.from(buf.subarray(0, n))
      giveBack(buf)
      this.#takeHead(bytes)
    }
    return true
  }

  /** @param {Buffer} bytes */
  #takeHead(bytes) {
    this.#headParts.push(bytes)
    const all = this.#headParts.length === 1 ? bytes : Buffer.concat(this.#headParts)
    const end = all.indexOf('\r\n\r\n')
    if ((end < 0 ? all.length : end) > HEAD_MAX) return this.#fail(new Error('the answer\'s head is too large'))
    if (end < 0) return
    this.#headParts = [all]
    const lines = all.subarray(0, end).toString('latin1').split('\r\n')
    const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? '')
    if (!status) return this.#fail(new Error('wrangler dev answered something other than HTTP/1.1'))
    const rest = all.subarray(end + 4)
    const code = Number(status[1])
    // An interim answer (1xx) is followed by the real one.
    if (code < 200) {
      this.#headParts = []
      if (rest.length) this.#takeHead(rest)
      return
    }
    this.statusCode = code
    this.statusMessage = status[2] ?? ''
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      if (colon <= 0) return this.#fail(new Error('wrangler dev sent a malformed header'))
      const name = line.slice(0, colon)
      const value = line.slice(colon + 1).trim()
      this.rawHeaders.push(name, value)
      const lower = name.toLowerCase()
      this.headers[lower] = lower in this.headers ? `${this.headers[lower]}, ${value}` : value
    }
    const length = this.headers['content-length']
    if (code === 204 || code === 304) {
      this.#framing = 'length'
    } else if (/(^|,)\s*chunked\s*$/i.test(this.headers['transfer-encoding'] ?? '')) {
      this.#framing = 'chunked'
    } else if (length !== undefined) {
      if (!/^\d{1,15}$/.test(length)) return this.#fail(new Error('wrangler dev sent an invalid Content-Length'))
      this.#framing = 'length'
      this.#left = Number(length)
    } else {
      this.#framing = 'close'
    }
    this.#headParts = []
    // Nothing more is read until someone takes the body (pipeTo, or the iteration).
    this.#socket?.pause()
    this.#resolve(this)
    if (rest.length) this.#body(rest, null)
    else if (this.#framing === 'length' && this.#left === 0) this.#finish()
  }

  /**
   * Body bytes (in `buf`, a pooled buffer to give back once written; null: not pooled).
   * @param {Buffer} bytes
   * @param {Buffer | null} buf
   */
  #body(bytes, buf) {
    if (this.#framing === 'chunked') {
      let data
      try {
        data = this.#chunked.push(bytes)
      } catch (err) {
        this.#fail(/** @type {Error} */ (err))
      }
      if (buf) giveBack(buf)
      for (const piece of data ?? []) this.#deliver(piece, null)
      if (this.#chunked.done) this.#finish()
      return
    }
    let piece = bytes
    if (this.#framing === 'length') {
      if (piece.length > this.#left) piece = piece.subarray(0, this.#left) // nothing may follow a GET's answer
      this.#left -= piece.length
    }
    if (piece.length) this.#deliver(piece, buf)
    else if (buf) giveBack(buf)
    if (this.#framing === 'length' && this.#left === 0) this.#finish()
  }

  /** @param {Buffer} piece @param {Buffer | null} buf */
  #deliver(piece, buf) {
    if (this.#sink) {
      this.#sink(piece, buf)
      return
    }
    this.#queued.push(buf ? Buffer.from(piece) : piece) // copied: the buffer is reused
    if (buf) giveBack(buf)
    this.#wake()
  }

  #finish() {
    if (this.#ended || this.#error) return
    this.#ended = true
    answersOpen--
    this.#socket?.destroy()
    this.#wake()
  }

  /** @param {Error} err */
  #fail(err) {
    if (this.#ended || this.#error) return
    this.#error = err
    answersOpen--
    this.#socket?.destroy()
    this.#reject(err)
    this.#wake()
  }

  /** Stops reading and drops the connection (the client went away). */
  destroy() {
    this.#fail(new Error('dropped'))
  }

  /**
   * Writes the body to `res` (its head already written), then ends it. A buffer goes back to
   * the pool once its write is done; with IN_FLIGHT writes pending, reading pauses (a slow
   * client holds at most IN_FLIGHT pieces here). If wrangler's answer breaks off, `res` is
   * destroyed: the client sees a cut body, never a short one that looks whole.
   * @param {import('node:http').ServerResponse} res
   */
  pipeTo(res) {
    if (clientGone(res)) return this.destroy() // the client left while the head was coming
    let pending = 0
    let paused = false
    const settle = () => {
      if (this.#error) res.destroy()
      else if (this.#ended && pending === 0 && !res.writableEnded) res.end()
    }
    this.#sink = (piece, buf) => {
      pending++
      res.write(piece, () => {
        pending--
        if (buf) giveBack(buf)
        if (paused && pending < IN_FLIGHT) {
          paused = false
          this.#socket?.resume()
        }
        settle()
      })
      if (pending >= IN_FLIGHT && !paused) {
        paused = true
        this.#socket?.pause()
      }
    }
    this.#wake = settle
    whenClientLeaves(res, () => this.destroy())
    for (const piece of this.#queued.splice(0)) this.#sink(piece, null)
    settle()
    if (!paused) this.#socket?.resume()
  }

  /** The body's pieces (copies), for a small body read whole. */
  async *[Symbol.asyncIterator]() {
    this.#socket?.resume()
    for (;;) {
      if (this.#queued.length) {
        yield /** @type {Buffer} */ (this.#queued.shift())
        continue
      }
      if (this.#error) throw this.#error
      if (this.#ended) return
      await new Promise((resolve) => (this.#wake = () => resolve(undefined)))
    }
  }
}

/**
 * Whether the client of `res` has left: `res` itself is destroyed, or its connection is. An
 * answer queued behind another on a connection (pipelined requests) has no socket of its own
 * yet, and is never destroyed when the client leaves.
 * @param {import('node:http').ServerResponse} res
 */
export const clientGone = (res) => res.destroyed || !!res.req?.socket?.destroyed

/**
 * Calls `left` once if the client of `res` leaves before the answer is all written: on `res`'s
 * 'close', or its connection's (see clientGone: a queued answer gets no 'close' of its own).
 * @param {import('node:http').ServerResponse} res
 * @param {() => void} left
 */
export function whenClientLeaves(res, left) {
  const connection = res.req?.socket
  const onClose = () => {
    if (connection) closing.get(connection)?.delete(onClose)
    res.off('close', onClose)
    if (!res.writableFinished) left()
  }
  res.once('close', onClose)
  if (!connection) return
  // One 'close' listener per connection, however many answers are queued on it.
  let calls = closing.get(connection)
  if (!calls) {
    const all = new Set()
    closing.set(connection, (calls = all))
    connection.once('close', () => {
      for (const call of all) call()
    })
  }
  calls.add(onClose)
}

/** @type {WeakMap<import('node:net').Socket, Set<() => void>>} */
const closing = new WeakMap()

/**
 * Decodes a chunked body (RFC 9112 7.1): `push` takes raw bytes and returns the data they carry;
 * `done` once the last chunk and the trailer section have come.
 */
export class ChunkedDecoder {
  done = false
  /** 'size' (reading a size line), 'data', 'data-end' (its CRLF), 'trailer' (reading trailer lines). */
  #state = 'size'
  #line = ''
  #left = 0

  /** @param {Buffer} bytes @returns {Buffer[]} */
  push(bytes) {
    const out = []
    let i = 0
    while (i < bytes.length && !this.done) {
      if (this.#state === 'data') {
        const n = Math.min(this.#left, bytes.length - i)
        out.push(Buffer.from(bytes.subarray(i, i + n)))
        i += n
        this.#left -= n
        if (this.#left === 0) this.#state = 'data-end'
        continue
      }
      const nl = bytes.indexOf(0x0a, i)
      const end = nl < 0 ? bytes.length : nl + 1
      this.#line += bytes.subarray(i, end).toString('latin1')
      i = end
      if (this.#line.length > 4096) throw new Error('a chunk line is too long')
      if (nl < 0) continue
      const line = this.#line.replace(/\r?\n$/, '')
      this.#line = ''
      if (this.#state === 'data-end') {
        if (line !== '') throw new Error('a chunk does not end where its size says')
        this.#state = 'size'
      } else if (this.#state === 'size') {
        const m = /^([0-9a-fA-F]{1,12})(?:\s*;.*)?$/.exec(line)
        if (!m) throw new Error('a chunk size is invalid')
        this.#left = parseInt(/** @type {string} */ (m[1]), 16)
        this.#state = this.#left === 0 ? 'trailer' : 'data'
      } else if (line === '') {
        this.done = true
      }
    }
    return out
  }
}
