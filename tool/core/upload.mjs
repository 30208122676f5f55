// @ts-check
/**
 * Pushing one blob (distribution-spec "Pushing blobs"): HEAD first and skip what exists; a
 * cross-repository mount when asked; otherwise an upload session fed in chunks of at most the
 * registry's `OCI-Chunk-Max-Length` (PATCH with `Content-Range`), closed by `PUT ?digest=`
 * carrying the last chunk (the spec allows it; one request fewer per blob). A blob that fits one
 * chunk goes in that one PUT (POST then PUT, the spec's monolithic upload).
 *
 * A chunk that fails (reset, 5xx, 416, timeout) is sent again after a backoff, from where the
 * session says it stands: GET on the last Location answers `Range: 0-<last byte received>`.
 * A session the registry no longer knows is started afresh.
 */
import { EXIT, ToolError } from './errors.mjs'
import { describeError, replyError } from './registry.mjs'

/** Chunk size when neither the registry nor the user names one: under every edge's body limit. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024

/**
 * @typedef {object} BlobSource
 * @property {string} digest
 * @property {number} size
 * @property {(start: number, end: number) => Promise<ReadableStream<Uint8Array>>} open bytes [start, end)
 */

/**
 * @typedef {object} UploadOptions
 * @property {number} [chunkSize] upper bound on a chunk (`--chunk-size`); the registry's limit still applies
 * @property {string} [mountFrom] repository to mount the blob from
 * @property {number} [retries] attempts per chunk after the first (default 5)
 * @property {number} [backoffMs] first backoff; doubles per attempt (default 1000)
 * @property {(ms: number) => Promise<void>} [sleep]
 * @property {(event: BlobEvent) => void} [onEvent]
 */

/**
 * @typedef {{ type: 'exists' | 'mounted' | 'uploaded', digest: string }
 *   | { type: 'progress', digest: string, position: number }
 *   | { type: 'chunk', digest: string, start: number, end: number, size: number }
 *   | { type: 'retry', digest: string, attempt: number, reason: string, resumeAt: number }} BlobEvent
 */

/** A failure worth another attempt (as opposed to a refusal). */
class Transient extends Error {}

/** 413 naming a smaller `OCI-Chunk-Max-Length` than the chunk sent: send smaller chunks. */
class ChunkLimit extends Error {
  constructor(/** @type {number} */ max) {
    super(`chunk limit ${max}`)
    this.max = max
  }
}

/** The ChunkLimit of a 413 reply, if it names a limit under `sent`. */
function smallerLimit(/** @type {Response} */ res, /** @type {number} */ sent) {
  const max = header(res, 'oci-chunk-max-length')
  return res.status === 413 && max !== null && max < sent ? new ChunkLimit(max) : null
}

const sleepMs = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** `Range: 0-<end>` → bytes the session holds. `0-0` is also "nothing yet" (distribution's habit). */
export function receivedBytes(/** @type {string | null} */ header, /** @type {number} */ known) {
  const m = /^(?:bytes=)?0-(\d+)$/.exec((header ?? '').trim())
  if (!m) return null
  const end = Number(m[1])
  return end === 0 && known === 0 ? 0 : end + 1
}

/** Appends `digest=` to a Location, keeping its own query (the session state travels there). */
function withDigest(/** @type {string} */ location, /** @type {string} */ digest) {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`
}

/** A stream that reports how far it has been read. */
function counted(/** @type {ReadableStream<Uint8Array>} */ stream, /** @type {number} */ start, /** @type {(position: number) => void} */ report) {
  let position = start
  return stream.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      position += chunk.byteLength
      report(position)
      controller.enqueue(chunk)
    },
  }))
}

/**
 * Pushes one blob to the registry's repository unless it is already there.
 * @param {import('./registry.mjs').Registry} registry
 * @param {BlobSource} blob
 * @param {UploadOptions} [options]
 * @returns {Promise<'exists' | 'mounted' | 'uploaded'>}
 */
export async function uploadBlob(registry, blob, options = {}) {
  const emit = options.onEvent ?? (() => {})
  const retries = options.retries ?? 5
  const backoff = options.backoffMs ?? 1000
  const sleep = options.sleep ?? sleepMs
  const { digest, size } = blob

  const head = await retrying(() => registry.request('HEAD', `blobs/${digest}`))
  if (head.ok) {
    emit({ type: 'exists', digest })
    return 'exists'
  }
  if (head.status !== 404) throw await replyError(`HEAD blob ${digest}`, head)

  let session = await open(registry, digest, options.mountFrom)
  if (session === 'mounted') {
    emit({ type: 'mounted', digest })
    return 'mounted'
  }
  let chunk = chunkSize(session, options.chunkSize)
  let offset = 0
  let attempt = 0
  /** Waits, then learns where the session stands (or opens a new one). */
  const recover = async (/** @type {unknown} */ err) => {
    if (!(err instanceof Transient)) throw err
    if (++attempt > retries) {
      throw new ToolError(`blob ${digest}: ${err.message} (gave up after ${retries} retries)`, EXIT.UNAVAILABLE, { cause: err })
    }
    await sleep(backoff * 2 ** (attempt - 1))
    /** @type {{ at: number, location: string } | null} */
    let stands
    try {
      stands = await sessionStatus(registry, /** @type {Session} */ (session).location, offset)
    } catch (e) {
      if (e instanceof ToolError && e.exitCode !== EXIT.UNAVAILABLE) throw e
      return recover(e instanceof Transient ? e : new Transient(e instanceof Error ? e.message : String(e)))
    }
    if (stands === null) {
      session = await open(registry, digest, undefined)
      if (session === 'mounted') throw new ToolError('unexpected mount', EXIT.FAILED)
      offset = 0
    } else {
      const current = /** @type {Session} */ (session)
      current.location = stands.location
      offset = stands.at
    }
    emit({ type: 'retry', digest, attempt, reason: err.message, resumeAt: offset })
    emit({ type: 'progress', digest, position: offset })
  }

  // Chunks, the last one on the closing PUT; a session lost on the way sends the chunks again.
  for (;;) {
    while (size - offset > chunk) {
      const start = offset
      const end = start + chunk
      try {
        emit({ type: 'chunk', digest, start, end, size })
        const res = await transient(registry.request('PATCH', session.location, {
          headers: {
            'Content-Type': 'application/octet-stream',
            'Content-Length': String(end - start),
            'Content-Range': `${start}-${end - 1}`,
          },
          body: async () => counted(await blob.open(start, end), start, (position) => emit({ type: 'progress', digest, position })),
        }))
        if (res.status === 202) {
          await res.body?.cancel()
          session.location = res.headers.get('location') ?? session.location
          offset = receivedBytes(res.headers.get('range'), end) ?? end
          attempt = 0
          continue
        }
        const limit = smallerLimit(res, end - start)
        if (limit) {
          await res.body?.cancel()
          // The session stays where it was: send again, smaller.
          chunk = chunkSize({ ...session, max: limit.max }, chunk)
          continue
        }
        if (res.status === 416 || res.status === 404 || res.status >= 500 || res.status === 408 || res.status === 429) {
          throw new Transient(`PATCH ${start}-${end - 1}: ${(await describeError(res)).line}`)
        }
        throw await replyError(`blob ${digest}: PATCH ${start}-${end - 1}`, res)
      } catch (err) {
        await recover(err)
      }
    }
    try {
      emit({ type: 'chunk', digest, start: offset, end: size, size })
      await finish(registry, session.location, blob, offset, size, emit)
      break
    } catch (err) {
      if (err instanceof ChunkLimit) {
        chunk = chunkSize({ ...session, max: err.max }, chunk)
        continue
      }
      if (await landed(registry, digest)) break
      await recover(err)
    }
  }
  emit({ type: 'uploaded', digest })
  return 'uploaded'
}

/** @typedef {{ location: string, max: number | null, min: number | null }} Session */

/**
 * The chunk size for a session: the smallest of the user's and the registry's maximum, and a
 * whole number of the registry's minimum when it states one (`OCI-Chunk-Min-Length`): a store
 * that assembles blobs from equal parts (R2, S3 multipart) then never carries a remainder from
 * one chunk into the next.
 */
function chunkSize(/** @type {Session} */ session, /** @type {number | undefined} */ wanted) {
  let size = Math.min(wanted ?? Infinity, session.max ?? Infinity)
  if (size === Infinity) size = DEFAULT_CHUNK_BYTES
  if (session.min) size = Math.max(session.min, Math.floor(size / session.min) * session.min)
  if (session.max) size = Math.min(size, session.max)
  return Math.max(1, size)
}

const header = (/** @type {Response} */ res, /** @type {string} */ name) => {
  const n = Number(res.headers.get(name))
  return res.headers.has(name) && Number.isSafeInteger(n) && n > 0 ? n : null
}

/**
 * POST: a new session (202, with its chunk limits), or a mount (201).
 * @returns {Promise<Session | 'mounted'>}
 */
async function open(
  /** @type {import('./registry.mjs').Registry} */ registry,
  /** @type {string} */ digest,
  /** @type {string | undefined} */ mountFrom,
) {
  const query = mountFrom ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}` : ''
  const res = await retrying(() => registry.request('POST', `blobs/uploads/${query}`, { headers: { 'Content-Length': '0' } }))
  if (res.status === 201 && mountFrom) {
    await res.body?.cancel()
    return 'mounted'
  }
  if (res.status !== 202) throw await replyError(`blob ${digest}: POST upload`, res)
  await res.body?.cancel()
  const location = res.headers.get('location')
  if (!location) throw new ToolError(`blob ${digest}: POST upload answered no Location`, EXIT.FAILED)
  return { location, max: header(res, 'oci-chunk-max-length'), min: header(res, 'oci-chunk-min-length') }
}

/**
 * GET on the Location: bytes received so far and the Location to go on with, or null when the
 * registry no longer knows the session. A registry whose Location carries the session's state
 * (this one's `?_state=`) answers an old Location with the current one: after a lost reply,
 * only that one can continue the session.
 */
async function sessionStatus(
  /** @type {import('./registry.mjs').Registry} */ registry,
  /** @type {string} */ location,
  /** @type {number} */ known,
) {
  const res = await registry.request('GET', location)
  await res.body?.cancel()
  if (res.status === 404) return null
  if (res.status >= 500) throw new Transient(`GET upload status: ${res.status}`)
  if (res.status !== 204 && res.status !== 200) throw await replyError('GET upload status', res)
  return { at: receivedBytes(res.headers.get('range'), known) ?? known, location: res.headers.get('location') ?? location }
}

/** PUT ?digest=, with the last bytes [start, end) of the blob (all of it when start is 0). */
async function finish(
  /** @type {import('./registry.mjs').Registry} */ registry,
  /** @type {string} */ location,
  /** @type {BlobSource} */ blob,
  /** @type {number} */ start,
  /** @type {number} */ end,
  /** @type {(event: BlobEvent) => void} */ emit,
) {
  const { digest } = blob
  const res = await transient(registry.request('PUT', withDigest(location, digest), {
    headers: {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(end - start),
      // The closing chunk of a chunked upload says where it goes; a whole blob needs nothing.
      ...(start > 0 && end > start ? { 'Content-Range': `${start}-${end - 1}` } : {}),
    },
    body: end > start
      ? async () => counted(await blob.open(start, end), start, (position) => emit({ type: 'progress', digest, position }))
      : undefined,
  }))
  if (res.status === 201) {
    await res.body?.cancel()
    return
  }
  const limit = smallerLimit(res, end - start)
  if (limit) {
    await res.body?.cancel()
    throw limit
  }
  if (res.status >= 500 || res.status === 408 || res.status === 429) throw new Transient(`PUT: ${(await describeError(res)).line}`)
  throw await replyError(`blob ${digest}: PUT`, res)
}

/** Whether the blob is in the repository after all (a PUT whose reply was lost). */
async function landed(/** @type {import('./registry.mjs').Registry} */ registry, /** @type {string} */ digest) {
  try {
    const res = await registry.request('HEAD', `blobs/${digest}`)
    return res.ok
  } catch {
    return false
  }
}

/** Network errors and refusals-to-serve become Transient. */
async function transient(/** @type {Promise<Response>} */ pending) {
  try {
    return await pending
  } catch (err) {
    if (err instanceof ToolError) {
      if (err.exitCode === EXIT.UNAVAILABLE) throw new Transient(err.message)
      throw err
    }
    throw new Transient(err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err))
  }
}

/** Small requests (HEAD, POST, GET status) get a few quick retries on network errors and 5xx. */
async function retrying(/** @type {() => Promise<Response>} */ request, attempts = 4) {
  for (let i = 1; ; i++) {
    try {
      const res = await request()
      if (res.status < 500 || i >= attempts) return res
      await res.body?.cancel()
    } catch (err) {
      if (err instanceof ToolError || i >= attempts) throw err
    }
    await sleepMs(200 * i)
  }
}
