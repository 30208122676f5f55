import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { EXIT } from '../../tool/core/errors.mjs'
import { formatReference, parseReference, schemeFor } from '../../tool/core/reference.mjs'
import { main, parseSize } from '../../tool/node/cli.mjs'
import { createReporter, formatBytes } from '../../tool/node/progress.mjs'

/** Runs the command line; its exit status and what it wrote. */
async function run(...argv: string[]) {
  let out = ''
  let err = ''
  const sink = (write: (s: string) => void) => Object.assign(new Writable({ write(chunk, _e, cb) { write(String(chunk)); cb() } }), { isTTY: false })
  const status = await main(argv, {
    stdout: sink((s) => { out += s }) as unknown as NodeJS.WriteStream,
    stderr: sink((s) => { err += s }) as unknown as NodeJS.WriteStream,
    fetch: (async () => { throw new TypeError('fetch failed') }) as typeof fetch,
  })
  return { status, out, err }
}

describe('references, as docker reads them', () => {
  it('splits host, repository, tag and digest; Docker Hub names get docker.io and library/', () => {
    expect(parseReference('localhost:8870/team/app:1.0')).toEqual({ host: 'localhost:8870', repository: 'team/app', tag: '1.0', digest: null })
    expect(parseReference('nginx')).toEqual({ host: 'docker.io', repository: 'library/nginx', tag: null, digest: null })
    expect(parseReference('alice/app:v2')).toEqual({ host: 'docker.io', repository: 'alice/app', tag: 'v2', digest: null })
    const d = `sha256:${'a'.repeat(64)}`
    expect(parseReference(`ghcr.io/o/r@${d}`)).toEqual({ host: 'ghcr.io', repository: 'o/r', tag: null, digest: d })
    expect(formatReference(parseReference('registry.example.com/a/b:c'))).toBe('registry.example.com/a/b:c')
  })

  it('plain HTTP for localhost and 127.0.0.0/8 (as docker), or when asked; HTTPS otherwise', () => {
    expect(schemeFor('localhost:8870')).toBe('http')
    expect(schemeFor('127.0.0.1:5000')).toBe('http')
    expect(schemeFor('registry.example.com')).toBe('https')
    expect(schemeFor('10.0.0.5:5000')).toBe('https')
    expect(schemeFor('10.0.0.5:5000', true)).toBe('http')
  })

  it('refuses malformed names as usage errors', () => {
    expect(() => parseReference('Upper/Case')).toThrow(expect.objectContaining({ exitCode: EXIT.USAGE }))
    expect(() => parseReference('host.io/a@sha256')).toThrow(expect.objectContaining({ exitCode: EXIT.USAGE }))
  })
})

describe('the command line', () => {
  it('reads sizes in decimal and binary units', () => {
    expect(parseSize('50MB')).toBe(50_000_000)
    expect(parseSize('64MiB')).toBe(64 * 1024 * 1024)
    expect(parseSize('1048576')).toBe(1048576)
    expect(parseSize('1.5G')).toBe(1_500_000_000)
    expect(() => parseSize('lots')).toThrow(expect.objectContaining({ exitCode: EXIT.USAGE }))
  })

  it('--help prints the usage and exits 0; no command exits 2', async () => {
    const help = await run('--help')
    expect(help.status).toBe(EXIT.OK)
    expect(help.out).toMatch(/edge-registry push <source> <destination-ref>/)
    expect((await run()).status).toBe(EXIT.USAGE)
  })

  it('unknown options, commands and source kinds exit 2 with a message', async () => {
    for (const argv of [['push', 'oci:x', 'h/r', '--frobnicate'], ['pull', 'a', 'b'], ['push', './dir', 'localhost/r:1'], ['push', 'oci:x'], ['push', 'oci:x', 'localhost/r', '--jobs', '0']]) {
      const r = await run(...argv)
      expect(r.status, argv.join(' ')).toBe(EXIT.USAGE)
      expect(r.err).toMatch(/^edge-registry: /)
    }
  })

  it('an unreadable source exits 3 before any request', async () => {
    const r = await run('push', 'oci:/nonexistent/layout:v1', 'localhost:1/r:v1')
    expect(r.status).toBe(EXIT.SOURCE)
    expect(r.err).toMatch(/no index\.json/)
  })

  it('a registry that cannot be reached exits 6', async () => {
    const r = await run('copy', 'localhost:1/a:v1', 'localhost:1/b:v1')
    expect(r.status).toBe(EXIT.UNAVAILABLE)
    expect(r.out).toBe('')
  })
})

describe('progress without a terminal', () => {
  it('writes one line per step: the plan, each chunk, retries, each blob and manifest', () => {
    let text = ''
    const stream = new Writable({ write(chunk, _e, cb) { text += String(chunk); cb() } }) as unknown as NodeJS.WriteStream
    const reporter = createReporter('lines', stream)
    const a = `sha256:${'a'.repeat(64)}`
    const b = `sha256:${'b'.repeat(64)}`
    reporter.onEvent({ type: 'plan', blobs: [{ digest: a, size: 150_000_000 }, { digest: b, size: 300 }], manifests: 1 })
    reporter.onEvent({ type: 'exists', digest: b })
    reporter.onEvent({ type: 'chunk', digest: a, start: 0, end: 100_000_000, size: 150_000_000 })
    reporter.onEvent({ type: 'progress', digest: a, position: 1_000_000 })
    reporter.onEvent({ type: 'retry', digest: a, attempt: 1, reason: 'PATCH 0-99999999: 503', resumeAt: 50_000_000 })
    reporter.onEvent({ type: 'uploaded', digest: a })
    reporter.onEvent({ type: 'manifest', digest: b, reference: 'v1' })
    expect(text.split('\n')).toEqual([
      '2 blobs (150.0 MB), 1 manifest',
      'sha256:bbbbbbbbbbbb: already there',
      'sha256:aaaaaaaaaaaa: sending 100.0 MB at 0 B of 150.0 MB',
      'sha256:aaaaaaaaaaaa: PATCH 0-99999999: 503; retry 1 from 50.0 MB',
      'sha256:aaaaaaaaaaaa: pushed (150.0 MB)',
      'manifest sha256:bbbbbbbbbbbb: pushed as v1',
      '',
    ])
  })

  it('--quiet writes nothing; sizes are decimal', () => {
    let text = ''
    const stream = new Writable({ write(chunk, _e, cb) { text += String(chunk); cb() } }) as unknown as NodeJS.WriteStream
    createReporter('quiet', stream).onEvent({ type: 'plan', blobs: [], manifests: 1 })
    expect(text).toBe('')
    expect([formatBytes(999), formatBytes(1000), formatBytes(94_371_840), formatBytes(2.5e9)]).toEqual(['999 B', '1.0 kB', '94.4 MB', '2.5 GB'])
  })
})
