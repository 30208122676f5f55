// @ts-check
/**
 * `edge-registry push <source> <destination-ref>` and `edge-registry copy <src-ref> <dst-ref>`:
 * the command line around tool/core (arguments, credentials, sources, progress, exit status).
 */
import { parseArgs } from 'node:util'
import { readFile } from 'node:fs/promises'
import { EXIT, ToolError, usageError } from '../core/errors.mjs'
import { push } from '../core/push.mjs'
import { formatReference, parseReference } from '../core/reference.mjs'
import { Registry } from '../core/registry.mjs'
import { registrySource } from '../core/registry-source.mjs'
import { credentialsFor, loadConfig, parseCreds } from './credentials.mjs'
import { nodeFetch } from './http.mjs'
import { createReporter, formatBytes } from './progress.mjs'
import { openSource } from './sources.mjs'

export const USAGE = `Usage:
  edge-registry push <source> <destination-ref> [options]
  edge-registry copy <source-ref> <destination-ref> [options]

Sources (as skopeo names them):
  oci:<dir>[:<tag>]             OCI image layout directory
  oci-archive:<file>[:<tag>]    OCI image layout in a tar (docker buildx --output type=oci,dest=<file>)
  docker-archive:<file>[:<name:tag>]  docker save / podman save output
  docker-daemon:<image>         an image of the local docker (through docker save)
  podman:<image>                an image of the local podman (through podman save)

Options:
  --creds <user:password>       destination credentials (default: ~/.docker/config.json)
  --src-creds <user:password>   copy: source credentials (default: ~/.docker/config.json)
  --plain-http                  HTTP to the destination even if not localhost/127.0.0.1
  --src-plain-http              copy: HTTP to the source
  --mount-from <repository>     mount blobs from this repository of the destination registry
  --chunk-size <size>           largest chunk (e.g. 50MB, 64MiB); the registry's OCI-Chunk-Max-Length still applies
  --jobs <n>                    blobs uploaded in parallel (default 4)
  --retries <n>                 retries per chunk (default 5)
  --quiet                       print only the pushed digest
  -h, --help                    this text
  --version

Prints the pushed manifest's digest as the last line on stdout.
Exit status: 0 pushed, 1 unexpected failure, 2 usage, 3 source unreadable, 4 authentication
or access refused, 5 content refused by the registry (e.g. 413), 6 registry or network still
failing after retries, 130 interrupted (run it again: finished blobs are skipped).`

const OPTIONS = /** @type {const} */ ({
  creds: { type: 'string' },
  'src-creds': { type: 'string' },
  'plain-http': { type: 'boolean' },
  'src-plain-http': { type: 'boolean' },
  'mount-from': { type: 'string' },
  'chunk-size': { type: 'string' },
  jobs: { type: 'string' },
  retries: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
})

/** "50MB" → 50000000, "64MiB" → 67108864, "1048576" → 1048576. */
export function parseSize(/** @type {string} */ text) {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]?)(i?)[bB]?$/.exec(text.trim())
  if (!m) throw usageError(`not a size: "${text}" (e.g. 50MB, 64MiB, 1048576)`)
  const power = { '': 0, k: 1, m: 2, g: 3 }[/** @type {'' | 'k' | 'm' | 'g'} */ ((m[2] ?? '').toLowerCase())]
  const n = Math.floor(Number(m[1]) * (m[3] ? 1024 : 1000) ** power)
  if (!Number.isSafeInteger(n) || n < 1) throw usageError(`not a size: "${text}"`)
  return n
}

function positive(/** @type {string | undefined} */ text, /** @type {string} */ flag, /** @type {number} */ fallback) {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0 || (flag === 'jobs' && n < 1)) throw usageError(`--${flag} wants a whole number`)
  return n
}

/**
 * Runs the command; resolves to the exit status.
 * @param {string[]} argv arguments after the program name
 * @param {{ stdout?: NodeJS.WriteStream, stderr?: NodeJS.WriteStream, fetch?: typeof globalThis.fetch }} [io]
 */
export async function main(argv, io = {}) {
  const stdout = io.stdout ?? process.stdout
  const stderr = io.stderr ?? process.stderr
  const fetchImpl = io.fetch ?? nodeFetch
  /** @type {import('./progress.mjs').Reporter | null} */
  let reporter = null
  try {
    let parsed
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
    } catch (err) {
      throw usageError(err instanceof Error ? err.message : String(err))
    }
    const { values, positionals } = parsed
    if (values.version) {
      const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'))
      stdout.write(`edge-registry ${pkg.version}\n`)
      return EXIT.OK
    }
    const [command, from, to, ...extra] = positionals
    if (values.help || !command) {
      stdout.write(`${USAGE}\n`)
      return values.help ? EXIT.OK : EXIT.USAGE
    }
    if (command !== 'push' && command !== 'copy') throw usageError(`unknown command "${command}" (push or copy)`)
    if (!from || !to || extra.length) throw usageError(`${command} wants exactly two arguments: ${command === 'push' ? '<source>' : '<source-ref>'} <destination-ref>`)

    const dest = parseReference(to)
    const config = await loadConfig()
    const destCreds = values.creds ? parseCreds(values.creds) : await credentialsFor(config, dest.host)
    const chunkSize = values['chunk-size'] ? parseSize(values['chunk-size']) : undefined
    const jobs = positive(values.jobs, 'jobs', 4)
    const retries = positive(values.retries, 'retries', 5)

    /** @type {import('../core/push.mjs').ImageSource} */
    let source
    let mountFrom = values['mount-from']
    const scopes = []
    if (command === 'copy') {
      const src = parseReference(from)
      const srcCreds = values['src-creds'] ? parseCreds(values['src-creds']) : await credentialsFor(config, src.host)
      const srcRegistry = new Registry({
        host: src.host, repository: src.repository, fetch: fetchImpl, plainHttp: values['src-plain-http'], credentials: srcCreds, actions: 'pull',
      })
      source = registrySource(srcRegistry, src.digest ?? src.tag ?? 'latest')
      // Same registry: blobs are mounted from the source repository, never sent again.
      if (!mountFrom && src.host === dest.host && src.repository !== dest.repository) mountFrom = src.repository
    } else {
      source = await openSource(from)
    }
    if (mountFrom) scopes.push(`repository:${mountFrom}:pull`)
    const registry = new Registry({
      host: dest.host, repository: dest.repository, fetch: fetchImpl, plainHttp: values['plain-http'], credentials: destCreds, scopes,
    })

    const mode = values.quiet ? 'quiet' : stderr.isTTY ? 'bars' : 'lines'
    reporter = createReporter(mode, stderr)
    const started = Date.now()
    const target = formatReference({ ...dest, tag: dest.tag ?? (dest.digest ? null : 'latest') })
    if (mode !== 'quiet') stderr.write(`${command === 'push' ? 'pushing' : 'copying'} ${from} to ${target}\n`)
    let result
    try {
      result = await push(source, registry, {
        reference: dest.tag ?? dest.digest ?? 'latest',
        jobs,
        chunkSize,
        mountFrom,
        retries,
        onEvent: reporter.onEvent,
      })
    } finally {
      reporter.stop()
      await source.close?.()
    }
    if (mode !== 'quiet') {
      const { exists, mounted, uploaded } = result.blobs
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      stderr.write(`pushed ${target}: ${uploaded} blob${uploaded === 1 ? '' : 's'} uploaded (${formatBytes(result.uploadedBytes)}), ${exists} already there, ${mounted} mounted, in ${seconds} s\n`)
    }
    stdout.write(`${result.digest}\n`)
    return EXIT.OK
  } catch (err) {
    reporter?.stop()
    if (err instanceof ToolError) {
      stderr.write(`edge-registry: ${err.message}\n`)
      if (err.exitCode === EXIT.USAGE) stderr.write('Run edge-registry --help for usage.\n')
      return err.exitCode
    }
    if (err instanceof TypeError && /fetch failed/.test(err.message)) {
      const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
      stderr.write(`edge-registry: cannot reach the registry${cause}\n`)
      return EXIT.UNAVAILABLE
    }
    stderr.write(`edge-registry: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    return EXIT.FAILED
  }
}
