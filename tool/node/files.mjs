// @ts-check
/**
 * Read-only views of a directory or a tar file as "paths → byte ranges": a blob is streamed
 * from the file, any range of it, as often as needed (a chunk sent again is read again), and
 * nothing is extracted or held in memory.
 *
 * The tar reader indexes headers only (ustar, pax `path`/`size`, GNU long names, symbolic and
 * hard links, which `docker save` uses for layers shared by two images); tar-stream and the
 * like read an archive front to back, while several blobs are sent at once from anywhere in it.
 */
import { open, readFile, stat } from 'node:fs/promises'
import { posix } from 'node:path'
import { sourceError } from '../core/errors.mjs'

/**
 * @typedef {object} Files
 * @property {string} name for messages
 * @property {(path: string) => Promise<number | null>} size bytes of a file, null when absent
 * @property {(path: string) => Promise<Uint8Array>} read a whole (small) file
 * @property {(path: string, start: number, end: number) => ReadableStream<Uint8Array>} stream bytes [start, end)
 */

/** Bytes read from disk per pull. */
const READ_SIZE = 1024 * 1024

/**
 * Bytes [start, end) of a file on disk as a web stream: one 1 MiB read each time the consumer
 * pulls, so memory stays bounded however fast the disk and however slow the network. (Node 20's
 * `Readable.toWeb` keeps reading ahead of a slow consumer: a 300 MB upload grew the process by
 * as much.)
 */
export function fileRange(/** @type {string} */ file, /** @type {number} */ start, /** @type {number} */ end) {
  /** @type {import('node:fs/promises').FileHandle | null} */
  let handle = null
  let position = start
  const close = async () => {
    const h = handle
    handle = null
    await h?.close()
  }
  return new ReadableStream({
    type: 'bytes',
    async pull(controller) {
      try {
        handle ??= await open(file, 'r')
        const want = Math.min(READ_SIZE, end - position)
        if (want <= 0) {
          await close()
          controller.close()
          return
        }
        const buffer = new Uint8Array(want)
        const { bytesRead } = await handle.read(buffer, 0, want, position)
        if (bytesRead === 0) throw new Error(`${file} ended at byte ${position}, before ${end}`)
        position += bytesRead
        controller.enqueue(bytesRead === want ? buffer : buffer.subarray(0, bytesRead))
      } catch (err) {
        await close()
        controller.error(err)
      }
    },
    cancel: close,
  }, { highWaterMark: 0 })
}

/** A directory's files. @returns {Files} */
export function directoryFiles(/** @type {string} */ dir) {
  const full = (/** @type {string} */ path) => posix.join(dir, posix.normalize(`/${path}`))
  return {
    name: dir,
    async size(path) {
      try {
        const s = await stat(full(path))
        return s.isFile() ? s.size : null
      } catch {
        return null
      }
    },
    async read(path) {
      return new Uint8Array(await readFile(full(path)))
    },
    stream: (path, start, end) => fileRange(full(path), start, end),
  }
}

/** @typedef {{ offset: number, size: number } | { link: string }} TarEntry */

/** A tar file's members, by normalized path. @returns {Promise<Files>} */
export async function tarFiles(/** @type {string} */ file) {
  const entries = await indexTar(file)
  /** @returns {{ offset: number, size: number } | null} */
  const find = (/** @type {string} */ path, depth = 0) => {
    const entry = entries.get(normalize(path))
    if (!entry || depth > 16) return null
    return 'link' in entry ? find(entry.link, depth + 1) : entry
  }
  return {
    name: file,
    async size(path) {
      return find(path)?.size ?? null
    },
    async read(path) {
      const entry = find(path)
      if (!entry) throw sourceError(`${file}: no ${path} in the archive`)
      const handle = await open(file, 'r')
      try {
        const buffer = new Uint8Array(entry.size)
        await handle.read(buffer, 0, entry.size, entry.offset)
        return buffer
      } finally {
        await handle.close()
      }
    },
    stream(path, start, end) {
      const entry = find(path)
      if (!entry) throw sourceError(`${file}: no ${path} in the archive`)
      return fileRange(file, entry.offset + start, entry.offset + Math.min(end, entry.size))
    },
  }
}

const normalize = (/** @type {string} */ path) => posix.normalize(`/${path}`).slice(1)

/** Reads every header of a tar file (512-byte blocks), skipping the contents. */
export async function indexTar(/** @type {string} */ file) {
  /** @type {Map<string, TarEntry>} */
  const entries = new Map()
  const handle = await open(file, 'r').catch((err) => { throw sourceError(`cannot open ${file}: ${err.message}`, err) })
  try {
    const { size: total } = await handle.stat()
    const block = new Uint8Array(512)
    let position = 0
    /** @type {Record<string, string>} */
    let pax = {}
    /** @type {string | null} */
    let longName = null
    /** @type {string | null} */
    let longLink = null
    for (;;) {
      const { bytesRead } = await handle.read(block, 0, 512, position)
      if (bytesRead < 512) break
      if (block.every((b) => b === 0)) break
      if (position === 0 && block[0] === 0x1f && block[1] === 0x8b) throw sourceError(`${file} is gzip-compressed: decompress it first (gunzip)`)
      if (!checksumOk(block)) throw sourceError(`${file} is not a tar archive (bad header at byte ${position})`)
      const type = String.fromCharCode(block[156] ?? 0)
      const size = octal(block.subarray(124, 136))
      const data = position + 512
      const next = data + Math.ceil(size / 512) * 512
      if (next > total + 512) throw sourceError(`${file} is truncated`)
      const readData = async () => {
        const buffer = new Uint8Array(size)
        await handle.read(buffer, 0, size, data)
        return buffer
      }
      if (type === 'x') pax = parsePax(await readData())
      else if (type === 'L') longName = cString(await readData())
      else if (type === 'K') longLink = cString(await readData())
      else if (type !== 'g') {
        const prefix = cString(block.subarray(345, 500))
        const name = pax.path ?? longName ?? (prefix ? `${prefix}/${cString(block.subarray(0, 100))}` : cString(block.subarray(0, 100)))
        const linkName = pax.linkpath ?? longLink ?? cString(block.subarray(157, 257))
        const length = pax.size !== undefined ? Number(pax.size) : size
        const path = normalize(name)
        if (type === '0' || type === '\0' || type === '7') entries.set(path, { offset: data, size: length })
        // Symbolic links are relative to the link's directory; hard links name a member.
        else if (type === '2') entries.set(path, { link: normalize(posix.join(posix.dirname(path), linkName)) })
        else if (type === '1') entries.set(path, { link: normalize(linkName) })
        pax = {}
        longName = longLink = null
        position = data + Math.ceil(length / 512) * 512
        continue
      }
      position = next
    }
  } finally {
    await handle.close()
  }
  return entries
}

const cString = (/** @type {Uint8Array} */ bytes) => {
  const end = bytes.indexOf(0)
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end))
}

/** Octal (space/NUL padded) or, with the high bit set, base-256 (GNU, for sizes ≥ 8 GiB). */
function octal(/** @type {Uint8Array} */ field) {
  if ((field[0] ?? 0) & 0x80) {
    let n = (field[0] ?? 0) & 0x7f
    for (let i = 1; i < field.length; i++) n = n * 256 + (field[i] ?? 0)
    return n
  }
  const text = cString(field).trim()
  return text ? parseInt(text, 8) : 0
}

function checksumOk(/** @type {Uint8Array} */ block) {
  let sum = 0
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] ?? 0)
  return sum === octal(block.subarray(148, 156))
}

/** pax records: `<length> <key>=<value>\n`. */
function parsePax(/** @type {Uint8Array} */ bytes) {
  /** @type {Record<string, string>} */
  const out = {}
  const text = new TextDecoder().decode(bytes)
  let at = 0
  while (at < text.length) {
    const space = text.indexOf(' ', at)
    if (space < 0) break
    const length = Number(text.slice(at, space))
    if (!length) break
    const record = text.slice(space + 1, at + length - 1)
    const eq = record.indexOf('=')
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1)
    at += length
  }
  return out
}
