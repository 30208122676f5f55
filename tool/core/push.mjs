// @ts-check
/**
 * Pushing an image, or an index with every image it names, from any source to a registry:
 * every blob first (several at once), then the manifests, children before their index, each
 * byte for byte as the source holds it, so every digest stays the source's.
 */
import { EXIT, ToolError, sourceError } from './errors.mjs'
import { parseManifest, verify } from './media.mjs'
import { replyError } from './registry.mjs'
import { uploadBlob } from './upload.mjs'

/**
 * @typedef {object} ImageSource
 * @property {string} name for messages
 * @property {() => Promise<import('./media.mjs').Manifest>} root the image or index to push
 * @property {(descriptor: import('./media.mjs').Descriptor) => Promise<Uint8Array>} manifest a child manifest's bytes
 * @property {(descriptor: import('./media.mjs').Descriptor) => Promise<import('./upload.mjs').BlobSource>} blob
 * @property {() => Promise<void>} [close]
 */

/**
 * @typedef {import('./upload.mjs').BlobEvent
 *   | { type: 'plan', blobs: import('./media.mjs').Descriptor[], manifests: number }
 *   | { type: 'manifest', digest: string, reference: string }} PushEvent
 */

/**
 * @typedef {object} PushOptions
 * @property {string | null} [reference] tag (or digest) for the root; null: by its digest
 * @property {number} [jobs] blobs in parallel (default 4)
 * @property {number} [chunkSize]
 * @property {string} [mountFrom]
 * @property {number} [retries]
 * @property {number} [backoffMs]
 * @property {(ms: number) => Promise<void>} [sleep]
 * @property {(event: PushEvent) => void} [onEvent]
 */

/**
 * @typedef {object} PushResult
 * @property {string} digest of the root manifest
 * @property {string} mediaType
 * @property {{ exists: number, mounted: number, uploaded: number }} blobs
 * @property {number} uploadedBytes bytes of the blobs uploaded (not skipped, not mounted)
 */

/**
 * The manifests to push (children before parents) and the distinct blobs they name.
 * @param {ImageSource} source
 */
export async function plan(source) {
  const root = await source.root()
  /** @type {import('./media.mjs').Manifest[]} */
  const manifests = []
  /** @type {Map<string, import('./media.mjs').Descriptor>} */
  const blobs = new Map()
  const seen = new Set()
  /** @param {import('./media.mjs').Manifest} m */
  const walk = async (m) => {
    if (seen.has(m.digest)) return
    seen.add(m.digest)
    let parsed
    try {
      parsed = parseManifest(m.bytes, m.mediaType)
    } catch (err) {
      throw sourceError(`${source.name}: manifest ${m.digest}: ${err instanceof Error ? err.message : err}`)
    }
    if (parsed.kind === 'index') {
      for (const child of parsed.manifests) {
        let bytes
        try {
          bytes = await source.manifest(child)
          await verify(bytes, child.digest)
        } catch (err) {
          if (err instanceof ToolError) throw err
          throw sourceError(`${source.name}: manifest ${child.digest}: ${err instanceof Error ? err.message : err}`, err)
        }
        await walk({ digest: child.digest, mediaType: child.mediaType ?? '', bytes })
      }
    } else {
      for (const blob of parsed.blobs) if (!blobs.has(blob.digest)) blobs.set(blob.digest, blob)
    }
    manifests.push({ ...m, mediaType: parsed.mediaType })
  }
  await walk(root)
  return { root: /** @type {import('./media.mjs').Manifest} */ (manifests.at(-1)), manifests, blobs: [...blobs.values()] }
}

/**
 * Pushes the source's image or index to the registry's repository.
 * @param {ImageSource} source
 * @param {import('./registry.mjs').Registry} registry
 * @param {PushOptions} [options]
 * @returns {Promise<PushResult>}
 */
export async function push(source, registry, options = {}) {
  const emit = options.onEvent ?? (() => {})
  const { root, manifests, blobs } = await plan(source)
  emit({ type: 'plan', blobs, manifests: manifests.length })
  await registry.ping()

  const counts = { exists: 0, mounted: 0, uploaded: 0 }
  let uploadedBytes = 0
  await pool(blobs, options.jobs ?? 4, async (descriptor) => {
    const blob = await source.blob(descriptor)
    if (blob.size !== descriptor.size) throw sourceError(`${source.name}: blob ${descriptor.digest} is ${blob.size} bytes, its manifest says ${descriptor.size}`)
    const outcome = await uploadBlob(registry, blob, {
      chunkSize: options.chunkSize,
      mountFrom: options.mountFrom,
      retries: options.retries,
      backoffMs: options.backoffMs,
      sleep: options.sleep,
      onEvent: emit,
    })
    counts[outcome]++
    if (outcome === 'uploaded') uploadedBytes += blob.size
  })

  for (const m of manifests) {
    const reference = m === root && options.reference ? options.reference : m.digest
    await putManifest(registry, m, reference)
    emit({ type: 'manifest', digest: m.digest, reference })
  }
  return { digest: root.digest, mediaType: root.mediaType, blobs: counts, uploadedBytes }
}

/** PUT /v2/<name>/manifests/<reference> with the source's bytes; the registry must agree on the digest. */
async function putManifest(
  /** @type {import('./registry.mjs').Registry} */ registry,
  /** @type {import('./media.mjs').Manifest} */ m,
  /** @type {string} */ reference,
) {
  for (let attempt = 1; ; attempt++) {
    /** @type {Response | null} */
    let res = null
    try {
      res = await registry.request('PUT', `manifests/${reference}`, {
        headers: { 'Content-Type': m.mediaType, 'Content-Length': String(m.bytes.byteLength) },
        body: () => m.bytes,
      })
    } catch (err) {
      if (err instanceof ToolError || attempt >= 4) throw err
    }
    if (res && res.status < 500) {
      if (res.status !== 201 && res.status !== 200) throw await replyError(`manifest ${reference}`, res)
      await res.body?.cancel()
      const echoed = res.headers.get('docker-content-digest')
      if (echoed && echoed !== m.digest) throw new ToolError(`manifest ${reference}: the registry stored it as ${echoed}, not ${m.digest}`, EXIT.REFUSED)
      return
    }
    if (res && attempt >= 4) throw await replyError(`manifest ${reference}`, res)
    await res?.body?.cancel()
    await new Promise((resolve) => setTimeout(resolve, 500 * attempt))
  }
}

/**
 * Runs `task` over `items`, `jobs` at a time; after the first failure no new item starts, and
 * that failure is what the call rejects with.
 * @template T
 * @param {T[]} items
 * @param {number} jobs
 * @param {(item: T) => Promise<void>} task
 */
export async function pool(items, jobs, task) {
  let next = 0
  /** @type {unknown} */
  let failure = null
  const worker = async () => {
    while (failure === null && next < items.length) {
      const item = /** @type {T} */ (items[next++])
      try {
        await task(item)
      } catch (err) {
        failure ??= err
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker))
  if (failure !== null) throw failure
}
