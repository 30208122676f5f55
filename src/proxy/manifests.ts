/**
 * Manifests of a proxied repository, cached as ordinary content of its local repository
 * (distribution registry/proxy: proxymanifeststore.go, proxytagservice.go).
 *
 * - By digest: immutable. Served from R2 once there; a miss is fetched once, verified
 *   against the digest and stored (R2). Indexes are cached with the children actually pulled.
 * - By tag: the tag record (KV) is served for `tagTtlSeconds` after it was last validated
 *   (its `pushed`, CONTRACTS 4) with the entry's current credentials (its `via`). After that a
 *   HEAD asks the upstream for the tag's digest (Docker Hub does not count HEADs against the pull
 *   limit); the manifest is fetched again only when the digest changed. The upstream down,
 *   erroring or rate limiting: the cached tag is served with a Warning, unless other credentials
 *   confirmed it; with nothing cached, its status goes to the client.
 * Everything is kept in the entry's own local repository (`t.local`, under its namespace), so
 * another upstream entry, even one on the same upstream, never reads it.
 */
import type { Ctx } from '../http/context'
import { specificType } from '../http/accept'
import { handlerFor, INDEX_TYPES, SINGLE_MANIFEST_TYPES } from '../manifests'
import { isObject, referencedSize } from '../manifests/handler'
import { algorithmOf, digestOf, tryDigest, type Digest, type Reference, type Tag } from '../names'
import { getManifest } from '../storage/manifests'
import { readTag } from '../storage/tags'
import { parseBoundedJson } from '../json'
import type { ProxyTarget } from './config'
import { bodyAtMost, failureError, failureOf, staleWarning, upstreamFetch, UpstreamFailure, upstreamIdentity } from './upstream'

/** Every manifest type we store, so the upstream answers with the index rather than picking a platform. */
const ACCEPT = [...INDEX_TYPES, ...SINGLE_MANIFEST_TYPES].join(', ')

export interface CachedManifest {
  digest: Digest
  mediaType: string
  bytes: ArrayBuffer
}

/**
 * The manifest `ref` names in the proxied repository, from the cache or the upstream; null
 * when the upstream does not know it. Budget:
 * - by digest: cached 1 R2 get; cold +1 upstream GET + 1 R2 put;
 * - by tag: fresh 1 KV get; after the TTL +1 upstream HEAD + 1 KV put (same digest), or
 *   +1 R2 get, +1 upstream GET and +1 R2 put when the digest changed; cold 1 KV get +
 *   1 upstream GET + 1 R2 put + 1 KV put.
 */
export async function readProxiedManifest(c: Ctx, t: ProxyTarget, ref: Reference): Promise<CachedManifest | null> {
  if (ref.kind === 'digest') {
    try {
      return await byDigest(c, t, ref.digest)
    } catch (err) {
      throw err instanceof UpstreamFailure ? failureError(err) : err
    }
  }
  const [tagged, via] = await Promise.all([readTag(c.env, t.local, ref.tag), upstreamIdentity(t.upstream)])  // KV get
  const ttl = t.upstream.tagTtlSeconds * 1000
  if (tagged && tagged.via === via && tagged.pushed !== undefined && Date.now() - tagged.pushed < ttl) return tagged
  try {
    return await refreshTag(c, t, ref.tag, tagged, via)
  } catch (err) {
    if (!(err instanceof UpstreamFailure)) throw err
    // Confirmed with other credentials: not ours to serve when ours cannot confirm it (a record
    // from before `via` existed was this entry's, with the credentials it had then).
    if (!tagged || (tagged.via !== undefined && tagged.via !== via)) throw failureError(err)
    t.warning = staleWarning(err)
    return tagged
  }
}

async function byDigest(c: Ctx, t: ProxyTarget, digest: Digest): Promise<CachedManifest | null> {
  const local = await getManifest(c.env, t.local, digest)                            // R2 get
  if (local) return { digest, mediaType: local.mediaType, bytes: local.bytes }
  const res = await upstreamFetch(t.upstream, 'GET', t.remote, `manifests/${digest}`, { Accept: ACCEPT })
  if (res.status === 404) return notFound(res)
  if (!res.ok) throw await failureOf(res)
  const fetched = await verified(c, res, digest)
  await store(c, t, fetched)                                                         // R2 put
  return fetched
}

/** Revalidates (HEAD) a cached tag or fetches an unknown one; the tag record is rewritten with `pushed` = now. */
async function refreshTag(c: Ctx, t: ProxyTarget, tag: Tag, tagged: CachedManifest | null, via: string): Promise<CachedManifest | null> {
  let digest: Digest | null = null
  if (tagged) {
    const head = await upstreamFetch(t.upstream, 'HEAD', t.remote, `manifests/${tag}`, { Accept: ACCEPT })
    if (head.status === 404) return null
    if (!head.ok) throw await failureOf(head)
    digest = tryDigest(head.headers.get('docker-content-digest'))
    if (digest === tagged.digest) {
      c.waitUntil(recordTag(c, t, tag, tagged, via, tagged.digest))                  // KV put
      return tagged
    }
  }
  const found = digest ? await byDigest(c, t, digest) : await fetchTag(c, t, tag)
  if (!found) return null
  c.waitUntil(recordTag(c, t, tag, found, via, tagged?.digest ?? null))             // KV put
  return found
}

/** GET by tag: the digest is the upstream's Docker-Content-Digest (checked) or the bytes' sha256. */
async function fetchTag(c: Ctx, t: ProxyTarget, tag: Tag): Promise<CachedManifest | null> {
  const res = await upstreamFetch(t.upstream, 'GET', t.remote, `manifests/${tag}`, { Accept: ACCEPT })
  if (res.status === 404) return notFound(res)
  if (!res.ok) throw await failureOf(res)
  const fetched = await verified(c, res, tryDigest(res.headers.get('docker-content-digest')))
  await store(c, t, fetched)                                                         // R2 put
  return fetched
}

/** Reads an upstream manifest (bounded), checks its digest and type; an UpstreamFailure when it is not right. */
async function verified(c: Ctx, res: Response, expected: Digest | null): Promise<CachedManifest> {
  const max = c.settings.MANIFEST_MAX_BYTES
  let read: Uint8Array | null
  try {
    read = await bodyAtMost(res, max)                 // with or without a Content-Length: never past max
  } catch {
    throw new UpstreamFailure(502, 'the upstream\'s manifest was cut off')
  }
  if (!read) throw new UpstreamFailure(502, `the upstream's manifest is larger than ${max} bytes`)
  const bytes = read.buffer.slice(read.byteOffset, read.byteOffset + read.byteLength) as ArrayBuffer
  const digest = await digestOf(new Uint8Array(bytes), expected ? algorithmOf(expected) : 'sha256')
  if (expected && digest !== expected) throw new UpstreamFailure(502, `the upstream's manifest does not match its digest ${expected}`)
  // Bounded as a pushed manifest is (src/json.ts): an upstream is not trusted with the isolate's memory.
  const parsed = parseBoundedJson(new Uint8Array(bytes))
  if ('refused' in parsed) throw new UpstreamFailure(502, `the upstream's manifest is refused: ${parsed.refused}`)
  const doc = parsed.value
  if (!isObject(doc)) throw new UpstreamFailure(502, 'the upstream\'s manifest is not a JSON object')
  const field = typeof doc.mediaType === 'string' ? doc.mediaType : null
  const mediaType = specificType(res.headers.get('content-type')) ?? field ?? (Array.isArray(doc.manifests) ? INDEX_TYPES[1]! : SINGLE_MANIFEST_TYPES[1]!)
  const handler = handlerFor(mediaType)
  if (!handler || handler.setting) throw new UpstreamFailure(502, `the upstream's manifest type ${mediaType.slice(0, 100)} is not cached`)
  return { digest, mediaType, bytes }
}

/** A fill: the manifest stored in the local repository, reported as a `push` by `proxy` (1 R2 put). */
async function store(c: Ctx, t: ProxyTarget, m: CachedManifest): Promise<void> {
  const doc = JSON.parse(new TextDecoder().decode(m.bytes)) as Record<string, unknown>
  const subject = isObject(doc.subject) ? tryDigest(typeof doc.subject.digest === 'string' ? doc.subject.digest : null) : null
  // Referrers of a proxied repository are the upstream's (listings.ts): no entry of our own.
  // Pushed by digest (no tag: recordTag sets those), so no tag record is written.
  const record = { digest: m.digest, mediaType: m.mediaType }
  await c.store.as('proxy').pushManifest({ repo: t.local, digest: m.digest, bytes: new Uint8Array(m.bytes), mediaType: m.mediaType, tags: [], record, subject, referrer: null })
}

/**
 * The tag record, `pushed` = now: when the upstream last confirmed it (CONTRACTS 4), and with what
 * (`via`). 1 KV put. A tag new to the cache or moved upstream (`previous` differs) is a `push` by `proxy`.
 */
async function recordTag(c: Ctx, t: ProxyTarget, tag: Tag, m: CachedManifest, via: string, previous: Digest | null): Promise<void> {
  const bytes = new Uint8Array(m.bytes)
  const doc = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>
  await c.store.as('proxy').setTag(t.local, tag, { digest: m.digest, mediaType: m.mediaType, pushed: Date.now(), size: referencedSize(doc, bytes), via }, bytes, previous)
}

async function notFound(res: Response): Promise<null> {
  await res.body?.cancel()
  return null
}
