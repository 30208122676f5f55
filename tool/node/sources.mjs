// @ts-check
/**
 * Sources named as skopeo names them (containers-transports(5)):
 *   oci:<dir>[:<tag>]            an OCI image layout (e.g. `docker buildx build --output type=oci,tar=false`)
 *   oci-archive:<file>[:<tag>]   the same layout in a tar (`--output type=oci,dest=…`)
 *   docker-archive:<file>[:<name:tag>]  `docker save` / `podman save` output
 *   docker-daemon:<image>        through `docker save`
 *   podman:<image>               through `podman save`
 * Every blob is served as it is on disk: nothing is recompressed, so digests stay the source's.
 */
import { createHash } from 'node:crypto'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sourceError, usageError } from '../core/errors.mjs'
import { DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, sha256, verify } from '../core/media.mjs'
import { parseReference } from '../core/reference.mjs'
import { directoryFiles, tarFiles } from './files.mjs'

const REF_NAME = 'org.opencontainers.image.ref.name'

/** `transport:rest` → what to open. @returns {{ transport: string, path: string, ref: string | null }} */
export function parseSourceName(/** @type {string} */ text) {
  const colon = text.indexOf(':')
  const transport = colon > 0 ? text.slice(0, colon) : ''
  const rest = text.slice(colon + 1)
  switch (transport) {
    case 'oci':
    case 'oci-archive':
    case 'docker-archive': {
      const sep = rest.indexOf(':')
      const path = sep >= 0 ? rest.slice(0, sep) : rest
      const ref = sep >= 0 ? rest.slice(sep + 1) : null
      if (!path) throw usageError(`source "${text}": no path`)
      return { transport, path, ref: ref || null }
    }
    case 'docker-daemon':
    case 'podman':
      if (!rest) throw usageError(`source "${text}": no image`)
      return { transport, path: '', ref: rest }
    default:
      throw usageError(`source "${text}": say which kind, as skopeo does: oci:<dir>[:<tag>], oci-archive:<file>[:<tag>], docker-archive:<file>, docker-daemon:<image> or podman:<image>`)
  }
}

/** Opens a source by name. @returns {Promise<import('../core/push.mjs').ImageSource>} */
export async function openSource(/** @type {string} */ text, run = runSave) {
  const { transport, path, ref } = parseSourceName(text)
  switch (transport) {
    case 'oci':
      return ociLayout(directoryFiles(path), ref, text)
    case 'oci-archive':
      return ociLayout(await tarFiles(path), ref, text)
    case 'docker-archive':
      return dockerArchive(await tarFiles(path), ref, text)
    default: {
      const dir = await mkdtemp(join(tmpdir(), 'edge-registry-save-'))
      const file = join(dir, 'image.tar')
      try {
        const tool = transport === 'podman' ? 'podman' : 'docker'
        await run(tool, ['save', ...(tool === 'podman' ? ['--format', 'docker-archive'] : []), '-o', file, /** @type {string} */ (ref)])
        const source = await dockerArchive(await tarFiles(file), null, text)
        return { ...source, close: () => rm(dir, { recursive: true, force: true }) }
      } catch (err) {
        await rm(dir, { recursive: true, force: true })
        throw err
      }
    }
  }
}

/** Runs `docker save` / `podman save`; its stderr becomes the message when it fails. */
export function runSave(/** @type {string} */ command, /** @type {string[]} */ args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => { stderr += d })
    child.on('error', (err) => reject(sourceError(`${command} ${args[0]}: ${err.message}`, err)))
    child.on('close', (code) => code === 0
      ? resolve(undefined)
      : reject(sourceError(`${command} ${args.join(' ')} failed (exit ${code}): ${stderr.trim().split('\n').pop() ?? ''}`)))
  })
}

const blobPath = (/** @type {string} */ digest) => {
  const [alg, hex] = digest.split(':')
  if (!alg || !hex || /[^a-zA-Z0-9=_-]/.test(hex) || /[^a-z0-9+._-]/.test(alg)) throw sourceError(`malformed digest ${digest}`)
  return `blobs/${alg}/${hex}`
}

/**
 * An OCI image layout: `index.json` names the image (by `org.opencontainers.image.ref.name`
 * when a tag is given; the only entry otherwise) and `blobs/<alg>/<hex>` hold everything.
 * @param {import('./files.mjs').Files} files
 * @param {string | null} tag
 * @param {string} name
 * @returns {Promise<import('../core/push.mjs').ImageSource>}
 */
export async function ociLayout(files, tag, name) {
  if ((await files.size('index.json')) === null) throw sourceError(`${name}: no index.json (not an OCI image layout)`)
  /** @type {{ manifests?: (import('../core/media.mjs').Descriptor & { annotations?: Record<string, string> })[] }} */
  let index
  try {
    index = JSON.parse(new TextDecoder().decode(await files.read('index.json')))
  } catch {
    throw sourceError(`${name}: index.json is not JSON`)
  }
  const entries = index.manifests ?? []
  const tags = entries.map((m) => m.annotations?.[REF_NAME]).filter(Boolean)
  const chosen = tag
    ? entries.filter((m) => m.annotations?.[REF_NAME] === tag)
    : entries.length === 1 ? entries : []
  if (chosen.length !== 1) {
    const known = tags.length ? `tags: ${tags.join(', ')}` : `${entries.length} untagged entries`
    throw sourceError(tag
      ? `${name}: no image tagged "${tag}" in index.json (${known})`
      : `${name}: index.json holds ${entries.length} entries; name one (${known})`)
  }
  const entry = /** @type {import('../core/media.mjs').Descriptor} */ (chosen[0])
  const readBlob = async (/** @type {import('../core/media.mjs').Descriptor} */ d) => {
    if ((await files.size(blobPath(d.digest))) === null) throw sourceError(`${name}: blob ${d.digest} is missing from the layout`)
    const bytes = await files.read(blobPath(d.digest))
    await verify(bytes, d.digest).catch((err) => { throw sourceError(`${name}: ${err.message}`) })
    return bytes
  }
  return {
    name,
    async root() {
      const bytes = await readBlob(entry)
      const mediaType = entry.mediaType ?? JSON.parse(new TextDecoder().decode(bytes)).mediaType ?? ''
      return { digest: entry.digest, mediaType, bytes }
    },
    manifest: readBlob,
    async blob(d) {
      const path = blobPath(d.digest)
      const size = await files.size(path)
      if (size === null) throw sourceError(`${name}: blob ${d.digest} is missing from the layout`)
      return { digest: d.digest, size, open: async (start, end) => files.stream(path, start, end) }
    },
  }
}

/**
 * `docker save` output: `manifest.json` lists each image's config file and layer tars. It has
 * no registry manifest, so one is written here (Docker schema 2), naming the config and each
 * layer by the sha256 of its bytes exactly as in the archive (often plain tars, which stay
 * plain: `…diff.tar`, gzip ones `…diff.tar.gzip`).
 * @param {import('./files.mjs').Files} files
 * @param {string | null} ref `name:tag` among the archive's RepoTags (needed when it holds several images)
 * @param {string} name
 * @returns {Promise<import('../core/push.mjs').ImageSource>}
 */
export async function dockerArchive(files, ref, name) {
  if ((await files.size('manifest.json')) === null) throw sourceError(`${name}: no manifest.json (not a docker save archive)`)
  /** @type {{ Config: string, RepoTags?: string[] | null, Layers: string[] }[]} */
  let list
  try {
    list = JSON.parse(new TextDecoder().decode(await files.read('manifest.json')))
  } catch {
    throw sourceError(`${name}: manifest.json is not JSON`)
  }
  if (!Array.isArray(list) || list.length === 0) throw sourceError(`${name}: manifest.json lists no image`)
  const same = (/** @type {string} */ a, /** @type {string} */ b) => {
    try {
      const x = parseReference(a)
      const y = parseReference(b)
      return x.host === y.host && x.repository === y.repository && (x.tag ?? 'latest') === (y.tag ?? 'latest')
    } catch {
      return a === b
    }
  }
  const chosen = ref ? list.filter((i) => (i.RepoTags ?? []).some((t) => t === ref || same(t, ref))) : list
  if (chosen.length !== 1) {
    const all = list.flatMap((i) => i.RepoTags ?? []).join(', ') || 'untagged images'
    throw sourceError(ref ? `${name}: no image "${ref}" in the archive (${all})` : `${name}: the archive holds ${list.length} images; name one: docker-archive:<file>:<name:tag> (${all})`)
  }
  const image = /** @type {(typeof list)[number]} */ (chosen[0])
  /** digest → path in the archive */
  const paths = new Map()
  const config = await files.read(image.Config)
  const configDigest = await sha256(config)
  paths.set(configDigest, image.Config)
  const layers = []
  for (const path of image.Layers) {
    const size = await files.size(path)
    if (size === null) throw sourceError(`${name}: layer ${path} is missing from the archive`)
    const { digest, gzip } = await hashOf(files.stream(path, 0, size))
    paths.set(digest, path)
    layers.push({ mediaType: gzip ? DOCKER_LAYER_GZIP : DOCKER_LAYER, size, digest })
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: { mediaType: DOCKER_CONFIG, size: config.byteLength, digest: configDigest },
    layers,
  }
  const bytes = new TextEncoder().encode(JSON.stringify(manifest, null, 3))
  const digest = await sha256(bytes)
  return {
    name,
    root: async () => ({ digest, mediaType: DOCKER_MANIFEST, bytes }),
    manifest: async () => { throw sourceError(`${name}: a docker archive holds no index`) },
    async blob(d) {
      const path = paths.get(d.digest)
      if (!path) throw sourceError(`${name}: no blob ${d.digest}`)
      const size = /** @type {number} */ (await files.size(path))
      return { digest: d.digest, size, open: async (start, end) => files.stream(path, start, end) }
    },
  }
}

/** sha256 of a stream, and whether it starts like gzip. */
async function hashOf(/** @type {ReadableStream<Uint8Array>} */ stream) {
  const hash = createHash('sha256')
  /** @type {boolean | null} */
  let gzip = null
  for await (const chunk of /** @type {AsyncIterable<Uint8Array>} */ (/** @type {unknown} */ (stream))) {
    if (gzip === null && chunk.byteLength >= 2) gzip = chunk[0] === 0x1f && chunk[1] === 0x8b
    hash.update(chunk)
  }
  return { digest: `sha256:${hash.digest('hex')}`, gzip: gzip === true }
}

