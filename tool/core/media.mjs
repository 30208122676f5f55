// @ts-check
/** Media types, and what a manifest names: child manifests (indexes) or blobs (images). */

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar'
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'

/** Every manifest type a registry source is asked for. */
export const MANIFEST_ACCEPT = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(', ')

/** @typedef {{ mediaType?: string, digest: string, size: number, platform?: { os?: string, architecture?: string, variant?: string } }} Descriptor */

/**
 * @typedef {object} Manifest
 * @property {string} digest
 * @property {string} mediaType
 * @property {Uint8Array} bytes exactly as in the source: pushed as they are
 */

/** @typedef {{ kind: 'index', manifests: Descriptor[] } | { kind: 'image', blobs: Descriptor[] }} Parsed */

/**
 * The children of an index, or the config and layers of an image (plus an artifact's `blobs`).
 * @param {Uint8Array} bytes
 * @param {string} [mediaType] from the descriptor that named it; else its own `mediaType`
 * @returns {Parsed & { mediaType: string }}
 */
export function parseManifest(bytes, mediaType) {
  /** @type {any} */
  let json
  try {
    json = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    throw new Error('manifest is not JSON')
  }
  if (!json || typeof json !== 'object') throw new Error('manifest is not a JSON object')
  const type = mediaType || json.mediaType || (Array.isArray(json.manifests) ? OCI_INDEX : OCI_MANIFEST)
  if (type === OCI_INDEX || type === DOCKER_LIST) {
    if (!Array.isArray(json.manifests)) throw new Error(`${type} without "manifests"`)
    return { kind: 'index', mediaType: type, manifests: json.manifests.map(descriptor) }
  }
  if (json.schemaVersion !== 2) throw new Error(`unsupported manifest (schemaVersion ${json.schemaVersion}, ${type})`)
  const blobs = [json.config, ...(json.layers ?? []), ...(json.blobs ?? [])].filter(Boolean).map(descriptor)
  return { kind: 'image', mediaType: type, blobs }
}

function descriptor(/** @type {any} */ d) {
  if (!d || typeof d.digest !== 'string' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new Error(`malformed descriptor ${JSON.stringify(d)?.slice(0, 200)}`)
  }
  return /** @type {Descriptor} */ (d)
}

/** `sha256:<hex>` of bytes (SubtleCrypto: Node 20 and workerd alike). */
export async function sha256(/** @type {Uint8Array} */ bytes) {
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  return `sha256:${[...hash].map((b) => b.toString(16).padStart(2, '0')).join('')}`
}

/** Checks bytes against the digest that named them (sha256 or sha512). */
export async function verify(/** @type {Uint8Array} */ bytes, /** @type {string} */ digest) {
  const [alg, hex] = digest.split(':')
  const name = alg === 'sha256' ? 'SHA-256' : alg === 'sha512' ? 'SHA-512' : null
  if (!name) throw new Error(`unsupported digest algorithm in ${digest}`)
  const hash = new Uint8Array(await crypto.subtle.digest(name, bytes))
  if ([...hash].map((b) => b.toString(16).padStart(2, '0')).join('') !== hex) throw new Error(`content does not match ${digest}`)
}
