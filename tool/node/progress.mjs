// @ts-check
/**
 * What a push shows while it runs, on stderr: progress bars (cli-progress) per blob being
 * uploaded and overall on a terminal; one log line per step without one (CI logs); nothing with
 * --quiet. The final line, the pushed digest, goes to stdout in every mode (cli.mjs).
 */
import cliProgress from 'cli-progress'

/** 1234567 → "1.2 MB" (decimal units, as registries' limits are stated). */
export function formatBytes(/** @type {number} */ n) {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let value = n / 1000
  let i = 0
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000
    i++
  }
  return `${value.toFixed(1)} ${units[i]}`
}

const short = (/** @type {string} */ digest) => digest.replace(/^(sha\d+:)(.{12}).*$/, '$1$2')

/**
 * @typedef {object} Reporter
 * @property {(event: import('../core/push.mjs').PushEvent) => void} onEvent
 * @property {() => void} stop
 * @property {(line: string) => void} log
 */

/**
 * @param {'bars' | 'lines' | 'quiet'} mode
 * @param {NodeJS.WriteStream} [stream]
 * @returns {Reporter}
 */
export function createReporter(mode, stream = process.stderr) {
  if (mode === 'quiet') return { onEvent() {}, stop() {}, log() {} }
  if (mode === 'lines') return lineReporter(stream)
  return barReporter(stream)
}

/** @returns {Reporter} */
function lineReporter(/** @type {NodeJS.WriteStream} */ stream) {
  const write = (/** @type {string} */ line) => stream.write(`${line}\n`)
  /** @type {Map<string, number>} */
  const sizes = new Map()
  return {
    log: write,
    stop() {},
    onEvent(e) {
      switch (e.type) {
        case 'plan': {
          for (const b of e.blobs) sizes.set(b.digest, b.size)
          const total = e.blobs.reduce((n, b) => n + b.size, 0)
          write(`${e.blobs.length} blobs (${formatBytes(total)}), ${e.manifests} manifest${e.manifests === 1 ? '' : 's'}`)
          break
        }
        case 'exists': write(`${short(e.digest)}: already there`); break
        case 'mounted': write(`${short(e.digest)}: mounted`); break
        case 'chunk': write(`${short(e.digest)}: sending ${formatBytes(e.end - e.start)} at ${formatBytes(e.start)} of ${formatBytes(e.size)}`); break
        case 'retry': write(`${short(e.digest)}: ${e.reason}; retry ${e.attempt} from ${formatBytes(e.resumeAt)}`); break
        case 'uploaded': write(`${short(e.digest)}: pushed (${formatBytes(sizes.get(e.digest) ?? 0)})`); break
        case 'manifest': write(`manifest ${short(e.digest)}: pushed as ${e.reference}`); break
      }
    },
  }
}

/** @returns {Reporter} */
function barReporter(/** @type {NodeJS.WriteStream} */ stream) {
  const bars = new cliProgress.MultiBar({
    stream,
    format: '{name} [{bar}] {percentage}% {done}/{size}',
    hideCursor: true,
    barsize: 30,
    autopadding: true,
    emptyOnZero: true,
  }, cliProgress.Presets.shades_classic)
  /** @type {Map<string, number>} */
  const sizes = new Map()
  /** @type {Map<string, number>} */
  const positions = new Map()
  /** @type {Map<string, import('cli-progress').SingleBar>} */
  const perBlob = new Map()
  let total = 0
  /** @type {import('cli-progress').SingleBar | null} */
  let overall = null
  const refresh = () => {
    const done = [...positions.values()].reduce((a, b) => a + b, 0)
    overall?.update(done, { done: formatBytes(done) })
  }
  const finishBlob = (/** @type {string} */ digest) => {
    positions.set(digest, sizes.get(digest) ?? 0)
    const bar = perBlob.get(digest)
    if (bar) {
      bars.remove(bar)
      perBlob.delete(digest)
    }
    refresh()
  }
  return {
    log: (line) => bars.log(`${line}\n`),
    stop: () => bars.stop(),
    onEvent(e) {
      switch (e.type) {
        case 'plan':
          for (const b of e.blobs) sizes.set(b.digest, b.size)
          total = e.blobs.reduce((n, b) => n + b.size, 0)
          overall = bars.create(total, 0, { name: 'total'.padEnd(19), done: formatBytes(0), size: formatBytes(total) })
          break
        case 'exists':
        case 'mounted':
        case 'uploaded':
          finishBlob(e.digest)
          break
        case 'progress': {
          let bar = perBlob.get(e.digest)
          const size = sizes.get(e.digest) ?? 0
          if (!bar) {
            bar = bars.create(size, 0, { name: short(e.digest), done: formatBytes(0), size: formatBytes(size) })
            perBlob.set(e.digest, bar)
          }
          bar.update(e.position, { done: formatBytes(e.position) })
          positions.set(e.digest, e.position)
          refresh()
          break
        }
        case 'retry':
          bars.log(`${short(e.digest)}: ${e.reason}; retry ${e.attempt} from ${formatBytes(e.resumeAt)}\n`)
          break
      }
    },
  }
}
