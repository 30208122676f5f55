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
import { concat } from '../storage/streams'
import { allTags, readTag } from '../storage/tags'
import { matchesEtag } from './blobs'
import { immutableDenied, immutableRule, immutableRules } from '../gc/immutable'

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
 * head per blob KV misses; 1 R2 head per child manifest. Writes: 1 R2 put (manifest),
 * +1 KV put per tag (the URL's, or each `?tag=` of a PUT by digest), +1 R2 put (referrer,
 * with a subject).
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
  await Promise.all(tags.map((tag) => guardImmutable(c, repo, { kind: 'tag', tag }, digest)))

  // The manifest is stored before any tag names it (storage/repository.ts), then reported.
  await c.store.pushManifest({
    repo, digest, bytes, mediaType, tags,
    subject: parsed.subject?.digest ?? null,
    referrer: parsed.subject ? referrerOf(digest, mediaType, bytes, parsed) : null,
    size: referencedSize(doc, bytes),
    platforms: platformsOf(doc),
  })                                                                                           // R2 put, KV put per tag (+ R2 put)
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

function parseJson(bytes: Uint8Array): Record<string, unknown> {
  let doc: unknown
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes))
  } catch {
    throw new RegistryError('MANIFEST_INVALID', { reason: 'not valid JSON' })
  }
  if (!isObject(doc)) throw new RegistryError('MANIFEST_INVALID', { reason: 'not a JSON object' })
  return doc
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

/** Every blob must be linked in the repository and every child manifest stored in it. */
async function verifyReferences(c: Ctx, repo: Repo, parsed: Parsed): Promise<void> {
  if (parsed.blobs.length + parsed.manifests.length > MAX_REFERENCES) {
    throw new RegistryError('MANIFEST_INVALID', { reason: `more than ${MAX_REFERENCES} references` })
  }
  // Independent reads: one per reference, all at once.
  const [blobs, children] = await Promise.all([
    Promise.all(parsed.blobs.map((d) => readBlobLinkConfirmed(c.env, c, repo, d))),
    Promise.all(parsed.manifests.map((m) => headManifest(c.env, repo, m.digest))),
  ])
  const missingBlob = parsed.blobs.find((_, i) => !blobs[i])
  if (missingBlob) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', { digest: missingBlob })
  const missingChild = parsed.manifests.find((_, i) => !children[i])
  if (missingChild) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', { digest: missingChild.digest })
}

/** An index's platforms for its tag record (the web UI lists them without reading the index). */
function platformsOf(doc: Record<string, unknown>): string | undefined {
  if (!Array.isArray(doc.manifests)) return undefined
  const names = doc.manifests.flatMap((m) => {
    const p = isObject(m) && isObject(m.platform) ? m.platform : null
    if (!p || typeof p.os !== 'string' || typeof p.architecture !== 'string') return []
    return [[p.os, p.architecture, typeof p.variant === 'string' ? p.variant : ''].filter(Boolean).join('/')]
  })
  const text = [...new Set(names)].join(', ')
  return text.length <= PLATFORMS_MAX ? text || undefined : `${text.slice(0, PLATFORMS_MAX - 1)}…`
}

/** KV metadata holds 1,024 bytes (≤ 3 per character here); the rest of the tag record needs about 200. */
const PLATFORMS_MAX = 250

function referrerOf(digest: Digest, mediaType: string, bytes: Uint8Array, parsed: Parsed): Descriptor {
  const d: Descriptor = { mediaType, digest, size: bytes.byteLength }
  if (parsed.artifactType) d.artifactType = parsed.artifactType
  if (parsed.annotations) d.annotations = parsed.annotations
  return d
}

/**
 * By tag: 1 KV get + 1 KV delete. By digest: 1 R2 head, free R2 deletes, 1 KV list
 * per 1,000 tags (to drop the tags pointing at it) + 1 KV delete each.
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

/**
 * Deletes a tag, or a manifest with its referrer entry and the tags pointing at it (the web UI
 * too); false when absent. IMMUTABLE_TAGS, READ_ONLY and UPSTREAMS (a cache's repositories)
 * are checked here, for both callers.
 */
export async function deleteReference(c: Ctx, repo: Repo, ref: Reference): Promise<boolean> {
  if (c.settings.READ_ONLY) throw readOnlyError()
  assertNotCached(c.env, repo) // a pull-through cache's repositories take no writes (the UI's delete does not pass its layer)
  await guardImmutable(c, repo, ref, null)
  const removed = ref.kind === 'tag' ? await c.store.removeTag(repo, ref.tag) : await c.store.removeManifest(repo, ref.digest)
  return removed !== null
}

/**
 * IMMUTABLE_TAGS (src/gc/immutable.ts): a tag matching a rule, once set, may be re-pushed with
 * the same manifest only; moving (`digest` given) or deleting it (`digest` null; by digest: any
 * such tag naming it) answers 403 DENIED naming the rule. Free without IMMUTABLE_TAGS; else
 * +1 KV get per push to such a tag, +1 KV list per 1,000 tags per delete by digest.
 */
async function guardImmutable(c: Ctx, repo: Repo, ref: Reference, digest: Digest | null): Promise<void> {
  if (immutableRules(c.env).length === 0) return
  if (ref.kind === 'tag') {
    const rule = immutableRule(c.env, repo, ref.tag)
    if (!rule) return
    const current = await readTag(c.env, repo, ref.tag)
    if (current && current.digest !== digest) throw immutableDenied(repo, ref.tag, rule, digest ? 'moved' : 'deleted')
    return
  }
  if (digest) return
  for await (const t of allTags(c.env, repo)) {
    const rule = t.digest === ref.digest ? immutableRule(c.env, repo, t.tag) : null
    if (rule) throw immutableDenied(repo, t.tag, rule, 'deleted')
  }
}
