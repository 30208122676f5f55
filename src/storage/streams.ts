/** Small stream helpers: bounded buffering and byte counting. */

/** Hex of bytes (its home is digest/hex.ts; re-exported for the stream code that hashes). */
export { toHex } from '../digest/hex'

/** Reads a stream in chunks as they come (async iteration of a reader). */
export async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      if (value.byteLength) yield value
    }
  } finally {
    reader.releaseLock()
  }
}

/**
 * Re-chunks a stream into pieces of at least `size` bytes (the last may be shorter).
 * Request bodies arrive in 4 KiB chunks: read one by one, a 300 MiB body takes 76,800 reads,
 * each a promise turn, and that alone cost more CPU than hashing the bytes (1.2 s against
 * 0.2 s per 300 MiB in workerd). A byte stream (request and response bodies, R2 bodies) is
 * read with workerd's BYOB `readAtLeast` straight into a buffer of `size` bytes (0.16 s);
 * any other stream chunk by chunk, the chunks joined.
 */
export async function* batched(stream: ReadableStream<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let reader: ReadableStreamBYOBReader
  try {
    reader = stream.getReader({ mode: 'byob' })
  } catch {
    yield* joined(stream, size) // not a byte stream
    return
  }
  for (;;) {
    // A new buffer each time: the one read into is handed on (to R2, a part) as it is.
    const { done, value } = await reader.readAtLeast(size, new Uint8Array(size))
    // Unlocked while the caller holds the piece: a caller that stops reading (a refusal) leaves
    // the stream free for `discard`.
    reader.releaseLock()
    if (value?.byteLength) yield value
    if (done) return
    reader = stream.getReader({ mode: 'byob' })
  }
}

/**
 * Two readers of one stream that go at the pace of the slower: the next piece (at least `size`
 * bytes of a byte stream, a chunk of any other) is read from the source only once both branches
 * have taken the one before, so one piece is all that is held however slowly either reads.
 * `ReadableStream.tee` keeps what the faster branch read and the slower has not: a whole blob
 * behind a slow client. A cancelled branch drops out and the other goes on alone; the source is
 * cancelled when both are. A failing source errors both.
 */
export function inStep(source: ReadableStream<Uint8Array>, size: number): [ReadableStream<Uint8Array>, ReadableStream<Uint8Array>] {
  const reader = readerOf(source)
  const readPiece = () => readSome(reader, size, new Uint8Array(size))
  // Piece `index` is `current` (read once, for both); `next[b]` is the piece branch b takes next.
  let index = 0
  let current: Promise<ReadableStreamReadResult<Uint8Array>> | null = null
  const next = [0, 0]
  const live = [true, true]
  let waiting: (() => void)[] = []
  const advanceIfAllTook = () => {
    if (next.every((n, b) => !live[b] || n > index)) {
      index++
      current = null
      for (const wake of waiting) wake()
      waiting = []
    }
  }
  const branch = (b: number) => new ReadableStream<Uint8Array>({
    async pull(controller) {
      // Ahead of the other branch: wait until it has taken this piece too.
      while (next[b]! > index) await new Promise<void>((wake) => waiting.push(wake))
      // Cancelled while it waited: its controller takes nothing more (a close would throw, uncaught).
      if (!live[b]) return
      const piece = await (current ??= readPiece())
      next[b]!++
      advanceIfAllTook()
      if (!live[b]) return
      if (piece.done) controller.close()
      if (piece.value?.byteLength) controller.enqueue(piece.value)
    },
    async cancel() {
      live[b] = false
      if (live.some(Boolean)) return advanceIfAllTook()
      await reader.cancel().catch(() => {})
    },
  }, { highWaterMark: 0 })
  return [branch(0), branch(1)]
}

/**
 * Reads and drops what is left of a request body, up to `limit` bytes and while it keeps
 * coming (no `idleMs` without a byte, `maxMs` in all): true when it ended. Answering before a
 * body has been read to its end can lose the answer (a connection closed on unread bytes is
 * reset, and the reset overtakes the answer): under wrangler dev, of two PATCHes racing for one
 * offset, the loser's 416 reached the client as 502/503 in 8 of 15 races once bodies were read
 * with `readAtLeast` (1 of 40 with the loser reading chunk by chunk); read to its end, 0 of 50.
 * A body that passes the limit or stalls is cancelled instead (its answer still goes; the
 * connection closes). An unlocked stream only (a locked one is left as it is).
 */
export async function discard(stream: ReadableStream<Uint8Array>, limit: number, idleMs: number, maxMs: number): Promise<boolean> {
  if (stream.locked) return false
  const reader = readerOf(stream)
  let buffer = new Uint8Array(1024 * 1024)
  let left = limit
  let timer: ReturnType<typeof setTimeout> | undefined
  const end = Date.now() + maxMs
  const silence = () => new Promise<'idle'>((resolve) => (timer = setTimeout(() => resolve('idle'), Math.max(0, Math.min(idleMs, end - Date.now())))))
  try {
    for (;;) {
      // At least 64 KiB a read (a chunked body comes ~2 KB at a time): few turns, and a body
      // slower than 32 KB/s counts as stalled.
      const next = await Promise.race([readSome(reader, 64 * 1024, buffer), silence()])
      clearTimeout(timer)
      if (next === 'idle') break
      if (next.done) return true
      left -= next.value.byteLength
      if (left < 0) break
      if ('readAtLeast' in reader) buffer = new Uint8Array(next.value.buffer as ArrayBuffer)
    }
    await reader.cancel().catch(() => {})
    return false
  } catch {
    return false
  } finally {
    clearTimeout(timer)
  }
}

type AnyReader = ReadableStreamBYOBReader | ReadableStreamDefaultReader<Uint8Array>

/** A BYOB reader of a byte stream (request, response and R2 bodies), a default one of any other. */
function readerOf(stream: ReadableStream<Uint8Array>): AnyReader {
  try {
    return stream.getReader({ mode: 'byob' })
  } catch {
    return stream.getReader()
  }
}

/** At least `min` bytes into `buffer` (fewer at the end) from a BYOB reader; a chunk as it comes from any other. */
const readSome = (reader: AnyReader, min: number, buffer: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>> =>
  'readAtLeast' in reader ? reader.readAtLeast(min, buffer) : reader.read()

async function* joined(stream: ReadableStream<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array[] = []
  let length = 0
  for await (const chunk of chunksOf(stream)) {
    pending.push(chunk)
    length += chunk.byteLength
    if (length >= size) {
      yield pending.length === 1 ? pending[0]! : concat(pending)
      pending = []
      length = 0
    }
  }
  if (length) yield pending.length === 1 ? pending[0]! : concat(pending)
}

/** Writes every piece to `writable`, then closes it; on a failure the writable is aborted. */
export async function pumpTo(pieces: AsyncIterable<Uint8Array>, writable: WritableStream<Uint8Array>, each: (piece: Uint8Array) => unknown): Promise<void> {
  const writer = writable.getWriter()
  try {
    for await (const piece of pieces) {
      await each(piece)
      await writer.write(piece)
    }
    await writer.close()
  } catch (err) {
    await writer.abort(err).catch(() => {})
    throw err
  }
}

/** Reads exactly `n` bytes (or fewer at the end of the stream) into memory; `n` must be bounded by the caller. */
export async function readAtMost(chunks: AsyncIterator<Uint8Array>, n: number, carry: Carry): Promise<Uint8Array> {
  const out = new Uint8Array(n)
  let filled = 0
  while (filled < n) {
    let chunk = carry.pending
    carry.pending = null
    if (!chunk) {
      const next = await chunks.next()
      if (next.done) break
      chunk = next.value
    }
    const take = Math.min(chunk.byteLength, n - filled)
    out.set(chunk.subarray(0, take), filled)
    filled += take
    if (take < chunk.byteLength) carry.pending = chunk.subarray(take)
  }
  return filled === n ? out : out.slice(0, filled)
}

/** What `readAtMost` read past its limit, kept for the next call. */
export interface Carry {
  pending: Uint8Array | null
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

