// @ts-check
/**
 * A registry as a source (`copy`): manifests by digest, blob bytes by range
 * (`GET /v2/<name>/blobs/<digest>` with `Range: bytes=a-b`), so a chunk is read only when it is
 * sent, and read again if it has to be sent again.
 */
import { MANIFEST_ACCEPT, sha256, verify } from './media.mjs'
import { replyError } from './registry.mjs'

/**
 * @param {import('./registry.mjs').Registry} registry
 * @param {string} reference tag or digest
 * @returns {import('./push.mjs').ImageSource}
 */
export function registrySource(registry, reference) {
  const name = `${registry.host}/${registry.repository}`
  const getManifest = async (/** @type {string} */ ref) => {
    const res = await registry.request('GET', `manifests/${ref}`, { headers: { Accept: MANIFEST_ACCEPT } })
    if (!res.ok) throw await replyError(`${name}: manifest ${ref}`, res)
    const bytes = new Uint8Array(await res.arrayBuffer())
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? ''
    return { bytes, mediaType }
  }
  return {
    name,
    async root() {
      await registry.ping()
      const { bytes, mediaType } = await getManifest(reference)
      const digest = await sha256(bytes)
      if (reference.includes(':') && reference !== digest) await verify(bytes, reference)
      return { digest: reference.includes(':') ? reference : digest, mediaType, bytes }
    },
    async manifest(descriptor) {
      return (await getManifest(descriptor.digest)).bytes
    },
    async blob(descriptor) {
      const { digest, size } = descriptor
      return {
        digest,
        size,
        async open(start, end) {
          const res = await registry.request('GET', `blobs/${digest}`, { headers: { Range: `bytes=${start}-${end - 1}` } })
          if (res.status === 206 && res.body) return res.body
          if (res.status === 200 && res.body) return slice(res.body, start, end)
          throw await replyError(`${name}: blob ${digest} bytes ${start}-${end - 1}`, res)
        },
      }
    },
  }
}

/** Bytes [start, end) of a whole-blob stream, for registries that ignore Range. */
function slice(/** @type {ReadableStream<Uint8Array>} */ body, /** @type {number} */ start, /** @type {number} */ end) {
  let position = 0
  return body.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      const from = Math.max(0, start - position)
      const to = Math.min(chunk.byteLength, end - position)
      position += chunk.byteLength
      if (to > from) controller.enqueue(chunk.subarray(from, to))
      if (position >= end) controller.terminate()
    },
  }))
}

