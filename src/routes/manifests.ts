/** GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference> (spec "Pulling manifests", "Pushing manifests", "Deleting"). */
import type { IRequest } from 'itty-router'
import { RegistryError } from '../errors'
import { countBodyBytes } from '../log'
import { readOnlyError } from '../http/read-only'
import type { Ctx } from '../http/context'
import { accepts, acceptedTypes, specificType } from '../http/accept'
import { handlerFor, INDEX_TYPES, SINGLE_MANIFEST_TYPES, unknownType } from '../manifests'
import { isObject, referencedSize, type Descriptor, type Parsed } from '../manifests/handler'
import { algorithmOf, digestOf, parseReference, parseRepo, parseTag, type Digest, type Reference, type Repo, type Tag } from '../names'
import { readBlobLinkConfirmed } from '../storage/links'
import { getManifest, headManifest, repoExists } from '../storage/manifests'
import { assertNotCached } from '../proxy/layer'
import { readProxiedManifest } from '../proxy/manifests'
import { referrerEntry } from '../storage/referrers'
import { concat } from '../storage/streams'
import { readTag, readTagRecord, tagMetadata, tagsNaming } from '../storage/tags'
import { JSON_LIMITS, parseBoundedJson } from '../json'
import { matchesEtag } from './blobs'
import { assertNotPinned, immutableDenied, immutableRule, reachOf } from '../gc/immutable'
import { startUntag } from '../gc/untag'

/** A manifest may reference at most this many blobs and manifests (each is one storage read). */
const MAX_REFERENCES = 500
/**
 * `?tag=` values one PUT by digest may carry (each is one KV put); more → 414. The spec
 * (main, "Pushing Manifests") asks registries to take at least 10.
 */
const MAX_TAGS_PER_PUSH = 20

/**
 * By tag: 1 KV get (the tag record holds the manifest). By digest: 1 R2 get.
 * An index served to a client that takes only single manifests: +1 R2 get.
 * A GET miss: +1 R2 list (MANIFEST_UNKNOWN or NAME_UNKNOWN). A reference that is neither
 * a tag nor a digest: none (MANIFEST_UNKNOWN).
 * Proxied: the same when cached and fresh; cold and after the tag TTL see src/proxy/manifests.ts.
 */
export async function get(req: IRequest, c: Ctx): Promise<Response> {
  const repo = parseRepo(req.params.name)
  const ref = lookupReference(req.params.reference ?? '')
  let found = await readReference(c, repo, ref)                           // KV get (tag) or R2 get (digest)
  if (!found) throw await unknownManifest(req, c, repo, ref)              // (GET only) R2 list
  const accepted = acceptedTypes(req.headers.get('accept'))
  if (!accepts(accepted, found.mediaType)) {
    found = ref.kind === 'tag' ? await platformManifest(c, repo, found, accepted) : null  // R2 get
    if (!found) throw new RegistryError('MANIFEST_UNKNOWN', { reason: 'no acceptable media type', accept: accepted })
  }
  const etag = `"${found.digest}"`
  const headers = new Headers({
    'Content-Type': found.mediaType,
    'Content-Length': String(found.bytes.byteLength),
    'Docker-Content-Digest': found.digest,
    ETag: etag,
  })
  if (matchesEtag(req.headers.get('if-none-match'), etag)) return new Response(null, { status: 304, headers })
  return new Response(req.method === 'HEAD' ? null : found.bytes, { headers })
}

/**
 * A GET/HEAD reference. One that is neither a tag nor a digest names nothing that could
 * exist: MANIFEST_UNKNOWN (404), which conformance suites and clients probing odd tags
 * expect, at no storage call. (A PUT with it stays 400: that is a bad request.)
 */
function lookupReference(raw: string): Reference {
  try {
    return parseReference(raw)
  } catch (err) {
    if (err instanceof RegistryError) throw new RegistryError('MANIFEST_UNKNOWN', { reference: raw.slice(0, 200) })
    throw err
  }
}

interface Found {
  digest: Digest
  mediaType: string
  bytes: ArrayBuffer
}

async function readReference(c: Ctx, repo: Repo, ref: Reference): Promise<Found | null> {
  if (c.proxy) return readProxiedManifest(c, c.proxy, ref)                   // cache, else the upstream (src/proxy/)
  if (ref.kind === 'tag') return readTag(c.env, repo, ref.tag)
  const m = await getManifest(c.env, repo, ref.digest)
  return m && { digest: ref.digest, mediaType: m.mediaType, bytes: m.bytes }
}

/** MANIFEST_UNKNOWN, or NAME_UNKNOWN when the repository has nothing (checked on GET only: a HEAD has no body). */
async function unknownManifest(req: IRequest, c: Ctx, repo: Repo, ref: Reference): Promise<RegistryError> {
  const detail = ref.kind === 'tag' ? { tag: ref.tag } : { digest: ref.digest }
  if (req.method === 'GET' && !c.proxy && !(await repoExists(c.env, repo))) return new RegistryError('NAME_UNKNOWN', { name: repo })
  return new RegistryError('MANIFEST_UNKNOWN', detail)
}

/**
 * A client that takes only single manifests asked by tag for an index: serve its
 * linux/amd64 entry, as distribution does for old docker clients.
 */
async function platformManifest(c: Ctx, repo: Repo, index: Found, accepted: string[]): Promise<Found | null> {
  if (!INDEX_TYPES.includes(index.mediaType) || !accepted.some((t) => SINGLE_MANIFEST_TYPES.includes(t))) return null
  const doc = JSON.parse(new TextDecoder().decode(index.bytes)) as { manifests?: Descriptor[] }
  const entry = doc.manifests?.find(
    (m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64' && accepts(accepted, m.mediaType),
  )
  if (!entry) return null
  return readReference(c, repo, { kind: 'digest', digest: entry.digest })
}

/**
 * Reads (cache, else 1 KV get) per referenced blob not linked at this location, +1 R2
 * head per blob KV misses; 1 R2 head per child manifest; in batches, stopping at the first
 * batch with a missing reference (see verifyReferences). Writes: 1 R2 put (manifest), +1 KV
 * put per tag (the URL's, or each `?tag=` of a PUT by digest), +1 R2 put (referrer, with a
 * subject). A tag under an IMMUTABLE_TAGS rule: +1 KV get, and its reach pinned (+1 R2 get per
 * child manifest, at most 500; +1 R2 put per manifest and blob reached, at most 2,000).
 * Everything the writes need is built and checked before the first one.
 */
export async function put(req: IRequest, c: Ctx): Promise<Response> {
  const repo = parseRepo(req.params.name)
  const ref = parseReference(req.params.reference ?? '')
  const tags = tagsOf(req, ref)
  const bytes = await readLimited(req, c.settings.MANIFEST_MAX_BYTES)
  const doc = parseJson(bytes)
  const mediaType = mediaTypeOf(req, doc)
  const handler = handlerFor(mediaType)
  if (!handler) throw unknownType(mediaType)
  if (handler.setting && !c.settings[handler.setting]) {
    throw new RegistryError('MANIFEST_INVALID', { reason: `${mediaType} manifests are disabled on this registry` })
  }
  const parsed = await handler.parse(doc, bytes, { repo, tag: tags[0] ?? null, tags, mediaType })
  // A manifest is known by the digest it was pushed with (sha512 too): stored, tagged and served under it.
  const digest = await digestOf(handler.digestedBytes?.(doc, bytes) ?? bytes, ref.kind === 'digest' ? algorithmOf(ref.digest) : 'sha256')
  if (ref.kind === 'digest' && ref.digest !== digest) throw new RegistryError('DIGEST_INVALID', { expected: ref.digest, actual: digest })
  await verifyReferences(c, repo, parsed)
  // Every tag this PUT sets (the URL's, or each ?tag=) must not move an immutable tag.
  await Promise.all(tags.map((tag) => guardImmutable(c, repo, tag, digest)))

  // What every write needs, made (and checked against the stores' limits) before the first:
  // nothing that can be refused is left to fail after the manifest is stored.
  const record = tagMetadata({ digest, mediaType, size: referencedSize(doc, bytes), platforms: platformsOf(doc) })
  const referrer = parsed.subject ? referrerEntry(referrerOf(digest, mediaType, bytes, parsed)) : null
  // A tag under an IMMUTABLE_TAGS rule protects all it reaches: pinned (+1 R2 get per child, +1 R2 put each).
  const immutableTag = tags.find((tag) => immutableRule(c.env, repo, tag))
  const reach = immutableTag ? await reachOf(c.env, repo, digest, parsed) : []

  // The manifest (and the pins) exist before anything points at them (storage/repository.ts),
  // then the push is reported (the events layer).
  await c.store.pushManifest({
    repo, digest, bytes, mediaType, tags, record,
    subject: parsed.subject?.digest ?? null,
    referrer,
    pins: immutableTag ? { reach, tag: immutableTag } : null,
  })                                                                       // R2 put (+ R2 put per pin), KV put per tag (+ R2 put)
  const headers = new Headers({
    Location: `/v2/${repo}/manifests/${digest}`,
    'Docker-Content-Digest': digest,
    'Content-Length': '0',
  })
  if (parsed.subject) headers.set('OCI-Subject', parsed.subject.digest)
  // One OCI-Tag per accepted tag (spec main, "Pushing Manifests"); tags hold no commas, so
  // the values may share one field line (RFC 9110 §5.3).
  if (ref.kind === 'digest') for (const tag of tags) headers.append('OCI-Tag', tag)
  return new Response(null, { status: 201, headers })
}

/**
 * The tags a PUT sets: the URL's, or for a PUT by digest each `?tag=` (distribution-spec
 * main), each validated as a tag in the URL is, duplicates once; over MAX_TAGS_PER_PUSH → 414.
 * `?tag=` on a PUT by tag is not part of the spec and is ignored, like any unknown parameter.
 */
function tagsOf(req: IRequest, ref: Reference): Tag[] {
  if (ref.kind === 'tag') return [ref.tag]
  const values = new URL(req.url).searchParams.getAll('tag')
  if (values.length > MAX_TAGS_PER_PUSH) {
    throw new RegistryError('TOO_MANY_TAGS', { limit: MAX_TAGS_PER_PUSH, tags: values.length })
  }
  return [...new Set(values.map(parseTag))]
}

async function readLimited(req: IRequest, max: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get('content-length') ?? NaN)
  const tooLarge = () => new RegistryError('MANIFEST_TOO_LARGE', { limit: max })
  if (declared > max) throw tooLarge()
  if (!req.body) return new Uint8Array(0)
  const parts: Uint8Array[] = []
  let size = 0
  const reader = (req.body as ReadableStream<Uint8Array>).getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      countBodyBytes(value.byteLength)   // the log line's bytesIn when the body has no Content-Length
      if (size > max) {
        await reader.cancel()
        throw tooLarge()
      }
      parts.push(value)
    }
  } catch (err) {
    if (err instanceof RegistryError) throw err
    throw new RegistryError('MANIFEST_INVALID', { reason: 'the request body was cut off' })
  }
  return concat(parts)
}

/** The body as a JSON object; its depth and size are checked before it is parsed (src/json.ts). */
function parseJson(bytes: Uint8Array): Record<string, unknown> {
  const parsed = parseBoundedJson(bytes)
  if ('refused' in parsed) throw new RegistryError('MANIFEST_INVALID', { reason: parsed.refused, limits: JSON_LIMITS })
  if (!isObject(parsed.value)) throw new RegistryError('MANIFEST_INVALID', { reason: 'not a JSON object' })
  return parsed.value
}

/**
 * The request's Content-Type, else the manifest's own `mediaType` field; a
 * conflict between the two is MANIFEST_INVALID. Without either, the shape decides
 * (OCI manifests may omit `mediaType`) and schema 1 is recognised by its version.
 */
function mediaTypeOf(req: IRequest, doc: Record<string, unknown>): string {
  const header = specificType(req.headers.get('content-type'))
  const field = typeof doc.mediaType === 'string' ? doc.mediaType : null
  if (header && field && header !== field) {
    throw new RegistryError('MANIFEST_INVALID', { reason: `Content-Type ${header} conflicts with mediaType ${field}` })
  }
  if (header || field) return (header ?? field)!
  if (doc.schemaVersion === 1) return 'application/vnd.docker.distribution.manifest.v1+prettyjws'
  if (Array.isArray(doc.manifests)) return 'application/vnd.oci.image.index.v1+json'
  return 'application/vnd.oci.image.manifest.v1+json'
}

/**
 * Every blob must be linked in the repository and every child manifest stored in it. Checked
 * in batches of growing size (REFERENCE_BATCHES), each batch's reads at once: a manifest naming
 * hundreds of missing blobs is refused after the first batch, not after reading them all.
 */
async function verifyReferences(c: Ctx, repo: Repo, parsed: Parsed): Promise<void> {
  if (parsed.blobs.length + parsed.manifests.length > MAX_REFERENCES) {
    throw new RegistryError('MANIFEST_INVALID', { reason: `more than ${MAX_REFERENCES} references` })
  }
  const checks: [Digest, () => Promise<unknown>][] = [
    ...parsed.blobs.map((d): [Digest, () => Promise<unknown>] => [d, () => readBlobLinkConfirmed(c.env, c, repo, d)]),
    ...parsed.manifests.map((m): [Digest, () => Promise<unknown>] => [m.digest, () => headManifest(c.env, repo, m.digest)]),
  ]
  for (let at = 0, batch = 0; at < checks.length; at += REFERENCE_BATCHES[batch]!, batch = Math.min(batch + 1, REFERENCE_BATCHES.length - 1)) {
    const slice = checks.slice(at, at + REFERENCE_BATCHES[batch]!)
    // Independent reads: one per reference of the batch, all at once.
    const found = await Promise.all(slice.map(([, check]) => check()))
    const missing = slice.find((_, i) => !found[i])
    if (missing) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', { digest: missing[0] })
  }
}

/**
 * Sizes of the successive reference batches: the reference image (config + 3 layers) and any
 * image of up to 16 references is one batch, as before; 500 references take 5 rounds. A refusal
 * costs at most the reads of the batches up to the first missing reference (16 for a manifest
 * whose first references are missing).
 */
const REFERENCE_BATCHES = [16, 32, 64, 128, 260]

/** An index's platforms for its tag record (the web UI lists them without reading the index). */
function platformsOf(doc: Record<string, unknown>): string | undefined {
  if (!Array.isArray(doc.manifests)) return undefined
  const names = doc.manifests.flatMap((m) => {
    const p = isObject(m) && isObject(m.platform) ? m.platform : null
    if (!p || typeof p.os !== 'string' || typeof p.architecture !== 'string') return []
    return [[p.os, p.architecture, typeof p.variant === 'string' ? p.variant : ''].filter(Boolean).join('/')]
  })
  const text = [...new Set(names)].filter((name) => PLATFORM_NAME.test(name)).join(', ')
  return text.length <= PLATFORMS_MAX ? text || undefined : `${text.slice(0, PLATFORMS_MAX - 1)}…`
}

/**
 * What the UI shows of a platform: `os/arch[/variant]` without commas (the separator), control
 * characters or surrogates (lone ones too): KV counts metadata as serialised JSON, where each
 * of those is escaped into 6 bytes, and the record has 1 KiB (tagMetadata checks the rest).
 */
const PLATFORM_NAME = /^[^\u0000-\u001f\u007f-\u009f\ud800-\udfff,]{1,100}$/

/** KV metadata holds 1,024 bytes (at most 3 a character here); the rest of the tag record needs at most ~300. */
const PLATFORMS_MAX = 250

function referrerOf(digest: Digest, mediaType: string, bytes: Uint8Array, parsed: Parsed): Descriptor {
  const d: Descriptor = { mediaType, digest, size: bytes.byteLength }
  if (parsed.artifactType) d.artifactType = parsed.artifactType
  if (parsed.annotations) d.annotations = parsed.annotations
  return d
}

/**
 * By tag: 1 KV get + 1 KV delete. By digest: 1 R2 head, at most UNTAG_SCAN_PAGES KV lists
 * (1,000 tags each) to find the tags naming it, a KV delete for each (at most UNTAG_INLINE), free
 * R2 deletes; more tags than that: +1 Workflow start, the rest done there (src/gc/untag.ts).
 * With IMMUTABLE_TAGS covering the repository: +1 R2 list (its pins), +1 KV get per pin.
 */
export async function remove(req: IRequest, c: Ctx): Promise<Response> {
  const repo = parseRepo(req.params.name)
  const ref = parseReference(req.params.reference ?? '')
  if (!c.settings.DELETE_ENABLED) throw new RegistryError('UNSUPPORTED', 'deletes are disabled on this registry')
  if (!(await deleteReference(c, repo, ref))) {
    throw new RegistryError('MANIFEST_UNKNOWN', ref.kind === 'tag' ? { tag: ref.tag } : { digest: ref.digest })
  }
  return new Response(null, { status: 202, headers: { 'Content-Length': '0' } })
}

/** KV list pages (1,000 tags each) a DELETE by digest reads to find the tags naming the manifest. */
export const UNTAG_SCAN_PAGES = 10
/** Tags a DELETE by digest removes itself; more go to the untag Workflow. */
export const UNTAG_INLINE = 100

/**
 * Deletes a tag, or a manifest with its referrer entry and the tags pointing at it (the web UI
 * too); false when absent. IMMUTABLE_TAGS, READ_ONLY and UPSTREAMS (a cache's repositories)
 * are checked here, for both callers. The tags go before the manifest, so none ever names a
 * deleted one: when there are more than one request may remove (UNTAG_INLINE found, or more
 * than UNTAG_SCAN_PAGES pages to read), the untag Workflow removes them and then the manifest,
 * and the reply (202 Accepted) comes before it has finished.
 */
export async function deleteReference(c: Ctx, repo: Repo, ref: Reference): Promise<boolean> {
  if (c.settings.READ_ONLY) throw readOnlyError()
  assertNotCached(c.env, repo) // a pull-through cache's repositories take no writes (the UI's delete does not pass its layer)
  if (ref.kind === 'tag') {
    const rule = immutableRule(c.env, repo, ref.tag)
    if (rule && (await readTagRecord(c.env, repo, ref.tag))) throw immutableDenied(repo, ref.tag, rule, 'deleted')  // KV get
    return (await c.store.removeTag(repo, ref.tag)) !== null                                 // KV get + KV delete
  }
  const stored = await headManifest(c.env, repo, ref.digest)                               // R2 head
  if (!stored) return false
  await assertNotPinned(c.env, repo, ref.digest, 'manifest')                              // (IMMUTABLE_TAGS) R2 list
  const { tags, complete } = await tagsNaming(c.env, repo, ref.digest, UNTAG_SCAN_PAGES)   // KV list(s)
  for (const tag of tags) {
    const rule = immutableRule(c.env, repo, tag)
    if (rule) throw immutableDenied(repo, tag, rule, 'deleted')
  }
  if (!complete || tags.length > UNTAG_INLINE) {
    await startUntag(c.env, repo, ref.digest, stored.uploaded, c.from)                     // Workflow start
    return true
  }
  await c.store.removeManifest(repo, ref.digest, stored, tags)                             // KV delete per tag, then R2 deletes
  return true
}

/**
 * IMMUTABLE_TAGS (src/gc/immutable.ts) on a push: a tag matching a rule, once set, may be
 * re-pushed with the same manifest only; moving it answers 403 DENIED naming the rule. Free
 * without a rule matching the tag; else +1 KV get. (Deletes: see deleteReference.)
 */
async function guardImmutable(c: Ctx, repo: Repo, tag: Tag, digest: Digest): Promise<void> {
  const rule = immutableRule(c.env, repo, tag)
  if (!rule) return
  const current = await readTagRecord(c.env, repo, tag)                                    // KV get
  if (current && current.digest !== digest) throw immutableDenied(repo, tag, rule, 'moved')
}
