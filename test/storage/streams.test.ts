import { describe, expect, it } from 'vitest'
import { batched, chunksOf, concat, discard, inStep } from '../../src/storage/streams'

const MiB = 1024 * 1024

/** `n` bytes that differ from position to position, so a misplaced byte shows. */
function bytes(n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + (i >> 8)) & 255
  return out
}

/** A default (not byte) stream handing out `data` in chunks of `size`. */
function chunkedStream(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0
  return new ReadableStream({
    pull(controller) {
      if (at >= data.byteLength) return controller.close()
      controller.enqueue(data.slice(at, at + size))
      at += size
    },
  })
}

/**
 * A byte stream as the runtime makes them (request, response and R2 bodies): the readable side of
 * an IdentityTransformStream, fed `data` in chunks of `size` as the reader drains it.
 */
function byteStream(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  const pipe = new IdentityTransformStream()
  void chunkedStream(data, size).pipeTo(pipe.writable)
  return pipe.readable as ReadableStream<Uint8Array>
}

async function collect(pieces: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const piece of pieces) out.push(piece)
  return out
}

/** Whether the pieces, in order, are exactly `data` (a plain loop: deep equality of MiBs is slow). */
function same(pieces: Uint8Array[], data: Uint8Array): boolean {
  let at = 0
  for (const p of pieces) {
    for (let i = 0; i < p.byteLength; i++) if (p[i] !== data[at + i]) return false
    at += p.byteLength
  }
  return at === data.byteLength
}

describe('batched', () => {
  it('reads a byte stream (a request body) in pieces of the batch size, the last shorter, bytes unchanged', async () => {
    const data = bytes(3 * MiB + 12_345)
    // Chunks of 5,000 bytes, no divisor of the batch: pieces of exactly the batch size come only
    // from reading into a buffer of that size.
    const pieces = await collect(batched(byteStream(data, 5000), MiB))
    expect(pieces.map((p) => p.byteLength)).toEqual([MiB, MiB, MiB, 12_345])
    expect(same(pieces, data)).toBe(true)
  })

  it('reads a stream that is not a byte stream the same way, its chunks joined', async () => {
    const data = bytes(2 * MiB + 7)
    const pieces = await collect(batched(chunkedStream(data, 1000), MiB))
    expect(pieces.slice(0, -1).every((p) => p.byteLength >= MiB)).toBe(true)
    expect(same(pieces, data)).toBe(true)
  })

  it('yields nothing for an empty body, and releases the stream when the reader stops early', async () => {
    expect(await collect(batched(byteStream(new Uint8Array(0), 1), MiB))).toEqual([])
    const body = byteStream(bytes(3 * MiB), 64 * 1024)
    for await (const piece of batched(body, MiB)) {
      expect(piece.byteLength).toBe(MiB)
      break
    }
    expect(body.locked).toBe(false)
  })
})

describe('discard', () => {
  /** A byte stream of `total` bytes that records how many it handed out, `pause` ms before each chunk after the first `paused`. */
  function counting(total: number, chunk: number, pause = 0, paused = Infinity) {
    let sent = 0
    const source = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (sent >= total) return c.close()
        if (sent >= paused) await new Promise((r) => setTimeout(r, pause))
        const n = Math.min(chunk, total - sent)
        c.enqueue(new Uint8Array(n))
        sent += n
      },
    })
    const pipe = new IdentityTransformStream()
    void source.pipeTo(pipe.writable).catch(() => {})
    return { stream: pipe.readable as ReadableStream<Uint8Array>, sent: () => sent }
  }

  it('reads the rest of a body to its end: true', async () => {
    const body = counting(5 * MiB + 3, 64 * 1024)
    expect(await discard(body.stream, 10 * MiB, 1000, 5000)).toBe(true)
    expect(body.sent()).toBe(5 * MiB + 3)
  })

  it('stops past the limit and cancels the body: false', async () => {
    const body = counting(20 * MiB, 64 * 1024)
    expect(await discard(body.stream, 2 * MiB, 1000, 5000)).toBe(false)
    expect(body.sent()).toBeLessThan(5 * MiB)
  })

  it('stops when the body pauses longer than the idle time: false, without waiting for it', async () => {
    const body = counting(4 * MiB, 64 * 1024, 60_000, MiB)
    const t0 = Date.now()
    expect(await discard(body.stream, 10 * MiB, 50, 5000)).toBe(false)
    expect(Date.now() - t0).toBeLessThan(5000)
  })

  it('leaves a locked stream alone', async () => {
    const body = counting(MiB, 1024)
    const reader = body.stream.getReader()
    expect(await discard(body.stream, 10 * MiB, 50, 5000)).toBe(false)
    reader.releaseLock()
  })
})

describe('inStep', () => {
  /** A default stream of `total` bytes in `size` chunks that counts what the source handed out and whether it was cancelled. */
  function source(total: number, size: number) {
    const data = bytes(total)
    let at = 0
    let cancelled = false
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= total) return controller.close()
        const n = Math.min(size, total - at)
        controller.enqueue(data.slice(at, at + n))
        at += n
      },
      cancel() {
        cancelled = true
      },
    }, { highWaterMark: 0 })
    return { stream, read: () => at, cancelled: () => cancelled }
  }

  const whole = async (stream: ReadableStream<Uint8Array>) => concat(await collect(chunksOf(stream)))

  it('gives both branches every byte, in order (a byte stream read in pieces of the size asked)', async () => {
    const data = bytes(3 * MiB + 5)
    const [a, b] = inStep(byteStream(data, 64 * 1024), MiB)
    const [x, y] = await Promise.all([whole(a), whole(b)])
    expect(same([x], data)).toBe(true)
    expect(same([y], data)).toBe(true)
  })

  it('holds back the faster branch: the source is read no further than one piece past the slower', async () => {
    const src = source(10 * MiB, 256 * 1024)
    const [fast, slow] = inStep(src.stream, 256 * 1024)
    const fastDone = whole(fast)
    const slowReader = slow.getReader()
    await slowReader.read()
    await new Promise((r) => setTimeout(r, 50))
    // The fast branch wants all of it; the slow one has taken one piece: at most two were read.
    expect(src.read()).toBeLessThanOrEqual(2 * 256 * 1024)
    slowReader.releaseLock()
    await whole(slow)
    expect((await fastDone).byteLength).toBe(10 * MiB)
  })

  it('lets the other branch go on alone when one is cancelled, and cancels the source when both are', async () => {
    const src = source(4 * MiB, 256 * 1024)
    const [a, b] = inStep(src.stream, 256 * 1024)
    await b.cancel()
    expect((await whole(a)).byteLength).toBe(4 * MiB)
    const again = source(4 * MiB, 256 * 1024)
    const [c, d] = inStep(again.stream, 256 * 1024)
    const reader = c.getReader()
    await reader.read()
    await reader.cancel()
    await d.cancel()
    await new Promise((r) => setTimeout(r, 10))
    expect(again.cancelled()).toBe(true)
    expect(again.read()).toBeLessThan(4 * MiB)
  })

  it('errors both branches when the source fails', async () => {
    let sent = 0
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ === 3) return controller.error(new Error('read broke off'))
        controller.enqueue(new Uint8Array(1000))
      },
    })
    const [a, b] = inStep(failing, 1000)
    const [x, y] = await Promise.allSettled([whole(a), whole(b)])
    expect(x).toMatchObject({ status: 'rejected', reason: { message: 'read broke off' } })
    expect(y).toMatchObject({ status: 'rejected', reason: { message: 'read broke off' } })
  })
})
