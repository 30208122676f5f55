/**
 * Test images built locally (no network): OCI layouts whose layers are a tar of one
 * random file, gzip-framed at level 0 (stored blocks). The gzip magic makes clients
 * treat the layer as compressed and send it as is (an uncompressed layer would be
 * compressed on the fly by skopeo, measuring its gzip instead of the registry), and
 * level 0 makes a 300 MB layer in about a second.
 */
import { createHash, randomFillSync } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import zlib from 'node:zlib'

const MiB = 1024 * 1024
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip'
const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json'
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json'
const INDEX_TYPE = 'application/vnd.oci.image.index.v1+json'

/** A 512-byte ustar header for a regular file. */
function tarHeader(name, size) {
  const h = Buffer.alloc(512)
  const put = (s, at, len) => h.write(s, at, len, 'ascii')
  const octal = (n, len) => n.toString(8).padStart(len - 1, '0') + '\0'
  put(name, 0, 100)
  put(octal(0o644, 8), 100, 8)
  put(octal(0, 8), 108, 8)
  put(octal(0, 8), 116, 8)
  put(octal(size, 12), 124, 12)
  put(octal(1700000000, 12), 136, 12)
  put('        ', 148, 8)
  put('0', 156, 1)
  put('ustar\0' + '00', 257, 8)
  let sum = 0
  for (const b of h) sum += b
  put(octal(sum, 7) + ' ', 148, 8)
  return h
}

/** The tar stream of one file of `size` random bytes, in 1 MiB pieces. */
async function* randomTar(name, size) {
  yield tarHeader(name, size)
  for (let left = size; left > 0; left -= MiB) yield randomFillSync(Buffer.allocUnsafe(Math.min(MiB, left)))
  const pad = (512 - (size % 512)) % 512
  yield Buffer.alloc(pad + 1024)
}

/** Writes a random layer into `blobs`: its descriptor and diff id. */
async function writeLayer(blobs, size, label) {
  const diff = createHash('sha256')
  const digest = createHash('sha256')
  let written = 0
  const tmp = join(blobs, `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`)
  const hashTar = async function* (source) {
    for await (const chunk of source) {
      diff.update(chunk)
      yield chunk
    }
  }
  const hashGz = async function* (source) {
    for await (const chunk of source) {
      digest.update(chunk)
      written += chunk.length
      yield chunk
    }
  }
  await pipeline(Readable.from(randomTar(label, size)), hashTar, zlib.createGzip({ level: 0 }), hashGz, createWriteStream(tmp))
  const hex = digest.digest('hex')
  await rename(tmp, join(blobs, hex))
  return { descriptor: { mediaType: LAYER_TYPE, digest: `sha256:${hex}`, size: written }, diffId: `sha256:${diff.digest('hex')}` }
}

async function writeJson(blobs, value) {
  const bytes = Buffer.from(JSON.stringify(value))
  const hex = createHash('sha256').update(bytes).digest('hex')
  await writeFile(join(blobs, hex), bytes)
  return { digest: `sha256:${hex}`, size: bytes.length }
}

async function writeImage(blobs, layers, platform) {
  const config = await writeJson(blobs, {
    architecture: platform.architecture,
    os: platform.os,
    created: '2024-01-01T00:00:00Z',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'bench' })),
  })
  const manifest = await writeJson(blobs, {
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: { mediaType: CONFIG_TYPE, ...config },
    layers: layers.map((l) => l.descriptor),
  })
  return { mediaType: MANIFEST_TYPE, ...manifest, platform }
}

/**
 * An OCI layout at `dir` with tag `tag`. `platforms`: one entry per platform, each a list of
 * layer sizes in bytes; a layer size given as { shared: n } is one layer common to all platforms.
 * Returns { dir, tag, bytes (all distinct blobs), files (blob paths) }.
 */
export async function buildImage(dir, tag, platforms) {
  await rm(dir, { recursive: true, force: true })
  const blobs = join(dir, 'blobs', 'sha256')
  await mkdir(blobs, { recursive: true })
  const shared = new Map()
  const manifests = []
  const arches = ['amd64', 'arm64', 'ppc64le', 's390x']
  for (const [i, sizes] of platforms.entries()) {
    const layers = []
    for (const [j, s] of sizes.entries()) {
      if (typeof s === 'object') {
        if (!shared.has(j)) shared.set(j, await writeLayer(blobs, s.shared, `shared-${j}.bin`))
        layers.push(shared.get(j))
      } else {
        layers.push(await writeLayer(blobs, s, `layer-${i}-${j}.bin`))
      }
    }
    manifests.push(await writeImage(blobs, layers, { architecture: arches[i], os: 'linux' }))
  }
  let top = manifests[0]
  if (manifests.length > 1) {
    const index = await writeJson(blobs, { schemaVersion: 2, mediaType: INDEX_TYPE, manifests })
    top = { mediaType: INDEX_TYPE, ...index }
  }
  delete top.platform
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: INDEX_TYPE,
    manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }))
  const { readdir, stat } = await import('node:fs/promises')
  const files = (await readdir(blobs)).map((f) => join(blobs, f))
  let bytes = 0
  for (const f of files) bytes += (await stat(f)).size
  return { dir, tag, bytes, files, platforms: manifests.length }
}
