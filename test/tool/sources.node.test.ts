import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../../tool/core/errors.mjs'
import { plan } from '../../tool/core/push.mjs'
import type { ImageSource } from '../../tool/core/push.mjs'
import { indexTar } from '../../tool/node/files.mjs'
import { openSource, parseSourceName, runSave } from '../../tool/node/sources.mjs'

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const json = (v: unknown) => Buffer.from(JSON.stringify(v))

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  return Buffer.from(await new Response(stream).arrayBuffer())
}

/** Every blob of the source, read whole and in two ranges. */
async function blobsOf(source: ImageSource) {
  const { blobs } = await plan(source)
  const out = new Map<string, Buffer>()
  for (const d of blobs) {
    const blob = await source.blob(d)
    const whole = await readAll(await blob.open(0, blob.size))
    const half = Math.floor(blob.size / 2)
    const parts = Buffer.concat([await readAll(await blob.open(0, half)), await readAll(await blob.open(half, blob.size))])
    expect(parts.equals(whole)).toBe(true)
    expect(sha(whole)).toBe(d.digest)
    out.set(d.digest, whole)
  }
  return out
}

let dir: string
/** An OCI layout holding a two-platform index (tag "multi") and one image (tag "single"). */
let layout: { dir: string; index: string; single: string; layers: Buffer[] }

async function writeLayout(root: string) {
  await mkdir(join(root, 'blobs', 'sha256'), { recursive: true })
  const put = async (b: Buffer) => {
    await writeFile(join(root, 'blobs', 'sha256', sha(b).slice(7)), b)
    return { digest: sha(b), size: b.length }
  }
  const layers: Buffer[] = []
  const image = async (arch: string) => {
    const layer = gzipSync(randomBytes(300_000))
    layers.push(layer)
    const l = await put(layer)
    const c = await put(json({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }))
    return put(json({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l }],
    }))
  }
  const amd = await image('amd64')
  const arm = await image('arm64')
  const index = await put(json({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [amd, arm].map((m, i) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, platform: { os: 'linux', architecture: ['amd64', 'arm64'][i] } })),
  }))
  await writeFile(join(root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(join(root, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [
      { mediaType: 'application/vnd.oci.image.index.v1+json', ...index, annotations: { 'org.opencontainers.image.ref.name': 'multi' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...amd, annotations: { 'org.opencontainers.image.ref.name': 'single' } },
    ],
  }))
  return { dir: root, index: index.digest, single: amd.digest, layers }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edge-registry-sources-'))
  layout = await writeLayout(join(dir, 'layout'))
})
afterAll(() => rm(dir, { recursive: true, force: true }))

describe('source names (as skopeo writes them)', () => {
  it('splits transport, path and tag', () => {
    expect(parseSourceName('oci:./out:v1')).toEqual({ transport: 'oci', path: './out', ref: 'v1' })
    expect(parseSourceName('oci-archive:/tmp/img.tar')).toEqual({ transport: 'oci-archive', path: '/tmp/img.tar', ref: null })
    expect(parseSourceName('docker-archive:img.tar:app:1.0')).toEqual({ transport: 'docker-archive', path: 'img.tar', ref: 'app:1.0' })
    expect(parseSourceName('docker-daemon:nginx:latest')).toEqual({ transport: 'docker-daemon', path: '', ref: 'nginx:latest' })
    expect(parseSourceName('podman:localhost/app')).toEqual({ transport: 'podman', path: '', ref: 'localhost/app' })
  })

  it('an unknown or missing transport is a usage error', () => {
    expect(() => parseSourceName('./out')).toThrow(expect.objectContaining({ exitCode: EXIT.USAGE }))
    expect(() => parseSourceName('docker://x/y')).toThrow(expect.objectContaining({ exitCode: EXIT.USAGE }))
  })
})

describe('oci: and oci-archive: sources', () => {
  it('oci:<dir>:<tag> finds the index by its ref name and serves every child and blob as on disk', async () => {
    const source = await openSource(`oci:${layout.dir}:multi`)
    const p = await plan(source)
    expect(p.root.digest).toBe(layout.index)
    expect(p.manifests.length).toBe(3)
    expect(p.blobs.length).toBe(4)
    const blobs = await blobsOf(source)
    for (const layer of layout.layers) expect(blobs.get(sha(layer))?.equals(layer)).toBe(true)
  })

  it('oci-archive:<file>:<tag> reads the same layout from a tar without extracting it', async () => {
    const tar = join(dir, 'layout.tar')
    execFileSync('tar', ['-cf', tar, '-C', layout.dir, '.'])
    const source = await openSource(`oci-archive:${tar}:single`)
    expect((await source.root()).digest).toBe(layout.single)
    const blobs = await blobsOf(source)
    expect(blobs.get(sha(layout.layers[0]!))?.equals(layout.layers[0]!)).toBe(true)
  })

  it('without a tag, a layout of several images asks which; an unknown tag lists the known ones', async () => {
    await expect(openSource(`oci:${layout.dir}`)).rejects.toMatchObject({ exitCode: EXIT.SOURCE, message: expect.stringMatching(/multi, single/) })
    await expect(openSource(`oci:${layout.dir}:nope`)).rejects.toMatchObject({ exitCode: EXIT.SOURCE, message: expect.stringMatching(/no image tagged "nope"/) })
    await expect(openSource(`oci:${join(dir, 'absent')}`)).rejects.toMatchObject({ exitCode: EXIT.SOURCE })
  })

  it('a gzip-compressed archive is refused with what to do', async () => {
    const tar = join(dir, 'layout.tar.gz')
    execFileSync('sh', ['-c', `tar -czf ${tar} -C ${layout.dir} .`])
    await expect(openSource(`oci-archive:${tar}`)).rejects.toMatchObject({ exitCode: EXIT.SOURCE, message: expect.stringMatching(/gunzip/) })
  })
})

describe('docker-archive: sources (docker save output)', () => {
  /** A legacy `docker save` tree: <id>/layer.tar, a second image's layer as a symlink to the first. */
  async function dockerSave(name: string, gzip: boolean, images = 2) {
    const root = join(dir, name)
    const plain = randomBytes(200_000)
    const layer1 = gzip ? gzipSync(plain) : plain
    const layer2 = randomBytes(70_000)
    await mkdir(join(root, 'aaa'), { recursive: true })
    await mkdir(join(root, 'bbb'), { recursive: true })
    await mkdir(join(root, 'ccc'), { recursive: true })
    await writeFile(join(root, 'aaa', 'layer.tar'), layer1)
    await writeFile(join(root, 'bbb', 'layer.tar'), layer2)
    await symlink('../aaa/layer.tar', join(root, 'ccc', 'layer.tar'))
    const config = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })
    await writeFile(join(root, `${sha(config).slice(7)}.json`), config)
    await writeFile(join(root, 'manifest.json'), JSON.stringify([
      { Config: `${sha(config).slice(7)}.json`, RepoTags: ['app:1.0'], Layers: ['aaa/layer.tar', 'bbb/layer.tar'] },
      { Config: `${sha(config).slice(7)}.json`, RepoTags: ['docker.io/library/other:2'], Layers: ['ccc/layer.tar'] },
    ].slice(0, images)))
    const tar = join(dir, `${name}.tar`)
    execFileSync('tar', ['--format=pax', '-cf', tar, '-C', root, '.'])
    return { tar, layer1, layer2, config }
  }

  it('writes a Docker schema 2 manifest naming each layer by the digest of its bytes as they are (plain tars stay plain)', async () => {
    const saved = await dockerSave('save-plain', false)
    const source = await openSource(`docker-archive:${saved.tar}:app:1.0`)
    const root = await source.root()
    expect(root.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json')
    const manifest = JSON.parse(Buffer.from(root.bytes).toString())
    expect(manifest.config).toEqual({ mediaType: 'application/vnd.docker.container.image.v1+json', size: saved.config.length, digest: sha(saved.config) })
    expect(manifest.layers).toEqual([
      { mediaType: 'application/vnd.docker.image.rootfs.diff.tar', size: saved.layer1.length, digest: sha(saved.layer1) },
      { mediaType: 'application/vnd.docker.image.rootfs.diff.tar', size: saved.layer2.length, digest: sha(saved.layer2) },
    ])
    expect(root.digest).toBe(sha(root.bytes))
    const blobs = await blobsOf(source)
    expect(blobs.get(sha(saved.layer1))?.equals(saved.layer1)).toBe(true)
  })

  it('keeps gzip layers gzip, follows symlinked layers, and matches a name given as docker.io/library/…', async () => {
    const saved = await dockerSave('save-gzip', true)
    const source = await openSource(`docker-archive:${saved.tar}:other:2`)
    const manifest = JSON.parse(Buffer.from((await source.root()).bytes).toString())
    expect(manifest.layers).toEqual([{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: saved.layer1.length, digest: sha(saved.layer1) }])
    const blobs = await blobsOf(source)
    expect(blobs.get(sha(saved.layer1))?.equals(saved.layer1)).toBe(true)
  })

  it('an archive of several images without a name asks for one', async () => {
    const saved = await dockerSave('save-two', false)
    await expect(openSource(`docker-archive:${saved.tar}`)).rejects.toMatchObject({
      exitCode: EXIT.SOURCE, message: expect.stringMatching(/app:1\.0, docker\.io\/library\/other:2/),
    })
  })

  it('docker-daemon: and podman: go through `<tool> save` into a temporary archive, removed on close', async () => {
    const saved = await dockerSave('save-daemon', false, 1)
    const calls: string[][] = []
    let file = ''
    const run = async (command: string, args: string[]) => {
      calls.push([command, ...args])
      file = args[args.indexOf('-o') + 1]!
      execFileSync('cp', [saved.tar, file])
    }
    const podman = await openSource('podman:localhost/app:1.0', run)
    expect(calls[0]).toEqual(['podman', 'save', '--format', 'docker-archive', '-o', file, 'localhost/app:1.0'])
    expect((await blobsOf(podman)).get(sha(saved.layer2))?.equals(saved.layer2)).toBe(true)
    await podman.close!()
    expect(existsSync(file)).toBe(false)
    const docker = await openSource('docker-daemon:app:1.0', run)
    expect(calls[1]).toEqual(['docker', 'save', '-o', file, 'app:1.0'])
    await docker.close!()
  })

  it('a failing save is a source error ending with its last line of stderr; a missing command too', async () => {
    await expect(runSave('sh', ['-c', 'echo "Error: No such image: nope" >&2; exit 1'])).rejects.toMatchObject({
      exitCode: EXIT.SOURCE, message: expect.stringMatching(/exit 1\): Error: No such image: nope$/),
    })
    await expect(runSave('edge-registry-no-such-command', ['save'])).rejects.toMatchObject({ exitCode: EXIT.SOURCE })
  })
})

describe('tar index', () => {
  it('reads pax long names and sizes', async () => {
    const root = join(dir, 'long')
    const deep = join(root, 'a'.repeat(60), 'b'.repeat(60))
    await mkdir(deep, { recursive: true })
    const data = randomBytes(5000)
    await writeFile(join(deep, 'c'.repeat(90)), data)
    const tar = join(dir, 'long.tar')
    execFileSync('tar', ['--format=pax', '-cf', tar, '-C', root, '.'])
    const entries = await indexTar(tar)
    const entry = entries.get(`${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(90)}`)
    expect(entry).toMatchObject({ size: 5000 })
  })
})
