/**
 * Every R2, KV and edge-cache key is built here; nothing else joins paths.
 *
 * R2  env.BLOBS  (strongly consistent)
 *   blobs/<alg>/<hex>                         a verified blob, once for the registry: its bytes, or
 *                                             empty with customMetadata.at naming the object that holds
 *                                             them; customMetadata.repo is the first repository to hold it;
 *                                             empty with customMetadata.gone: collected (a tombstone, = absent;
 *                                             customMetadata.was: where its bytes were)
 *   data/<upload-id>/<offset>                 one write of an upload session, made by the request that appended
 *                                             at <offset> (16 digits), written once (conditional), never
 *                                             replaced (uploads.ts states why): the tail (a JSON list of part
 *                                             etags, then the bytes not yet in a part) or a piece after it;
 *                                             customMetadata.state = the session's progress after it. Empty with
 *                                             customMetadata.ended: the session ended there (closed, cancelled,
 *                                             refused). Empty (a nonce) with customMetadata.claim = a lease end
 *                                             (ms): a request holds the offset while it folds bytes into parts
 *                                             (the only objects here ever replaced). A tail completed without
 *                                             parts is the blob's bytes, pointed at from blobs/. Every object
 *                                             here carries customMetadata.started
 *   data/<upload-id>/parts                    multipart target of an upload (its R2 uploadId is in
 *                                             customMetadata.mp of the session's writes), or the tail and pieces
 *                                             of an upload without parts joined at its close; once there, a
 *                                             blob's bytes
 *   repos/<name>+manifests/<digest>           manifest bytes; httpMetadata.contentType = media type
 *   repos/<name>+referrers/<subject>/<digest> descriptor of a manifest whose `subject` is <subject>
 *                                             (empty; customMetadata.descriptor, at most 1,800 bytes)
 *   repos/<name>+pins/<digest>/<root>         empty; customMetadata {tag}: <digest> (a manifest or blob) is
 *                                             reached from manifest <root>, pushed to <tag> under an
 *                                             IMMUTABLE_TAGS rule (src/gc/immutable.ts)
 *   _registry/upload-secret                   random key signing upload state when UPLOAD_SECRET is unset
 *   _registry/gc/<run-id>.json                a garbage collection run's report (src/storage/gc-reports.ts)
 *   _registry/gc-runs/<run-id>/<shard>.json  a real run's plan of one shard, between its mark and its sweep
 *                                             (src/storage/gc-runs.ts); deleted when the run ends
 *   _registry/gc-marks/links/<name>+<digest>  a collection's mark on a repository's blob link (src/storage/gc-marks.ts)
 *   _registry/gc-marks/blobs/<alg>/<hex>      a collection's mark on a registry blob; customMetadata.state is
 *                                             "marked", "kept" (a push touched it) or "swept" (the run won)
 *   _registry/health                          never written: /_health heads it (src/storage/health.ts)
 *   _registry/pulls/<name>.json               a repository's pull statistics (PULL_STATS): per manifest digest
 *                                             its pulls and last pull, written once per consumer batch
 *                                             (src/storage/pull-stats.ts)
 *   _registry/events/<endpoint>.json          a NOTIFICATIONS endpoint's last 100 deliveries and dead-letter
 *                                             count (src/storage/deliveries.ts)
 * KV  env.LINKS  (edge-cached, eventually consistent)
 *   repos/<name>+blobs/<digest>               {"size":n,"at":key[,"gc":etag]}: the blob is visible in <name>;
 *                                             metadata {t: ms linked}; "gc": a collection marked it (gc-marks)
 *   repos/<name>+tags/<tag>                   manifest bytes (empty when over 64 KiB: read from R2);
 *                                             metadata {digest, mediaType, pushed, size, platforms}
 *   auth/robots/<robot>                       {"sha256":hex,"created":iso}: a CI robot's token hash (AUTH_MODE
 *                                             "token"); scripts/robot.mjs spells this key too
 *   _registry/health                          never written: /_health gets it (src/storage/health.ts)
 * Cache API  caches.default  (per location, free)
 *   <origin>/_cache/blobs/<digest>            blob bytes (immutable); keyed by digest alone, so served only
 *                                             after the request's own link check (routes/blobs.ts)
 *   <origin>/_cache/links/<name>/<digest>     a blob link, for LINK_CACHE_SECONDS
 *   <origin>/_cache/oidc/jwks?iss=…[&jwks=…]  an OIDC issuer's key set (AUTH_OIDC), for an hour; header
 *                                             X-Fetched-At says when it was fetched
 *   <origin>/_cache/upstream/<id>/v2/<path>?<query>
 *                                             a proxied repository's tag list or referrers as the upstream
 *                                             answered upstream entry <id> (its namespace, url and credentials,
 *                                             hashed: src/proxy/upstream.ts upstreamIdentity), under the request's
 *                                             own path (/v2/<name as asked>/tags/list or …/referrers/<digest>)
 *                                             and query ([ns=…&]n, last or artifactType), for a short while
 *                                             (src/proxy/listings.ts)
 *   https://<host>/_cache/throttle/<kind>/<id>  an address or user name past a sign-in limit (<kind> address or
 *                                             user, <id> a hash of it), until header X-Until; the request's host name
 *                                             only, whatever its scheme and port (src/storage/throttle-marks.ts)
 *   <origin>/_cache/health                    the last R2 and KV probe of /_health, for 10 s (src/storage/health.ts)
 *
 * Why "+" after a name: no repository name may contain "+" (spec name grammar: a-z 0-9 . _ - /),
 * so repos/a+tags/ never holds keys of repository "a/tags" or "a-b", and an R2 list of repos/
 * delimited by "+" yields exactly the repository names (the catalog). "+" also sorts before
 * every character a name may hold, so a repository's keys come before those of longer names.
 * Why data/ apart from blobs/: the digest of a streamed upload is known only at its end,
 * and bytes are never copied, so the blob index points at where they were written.
 * No two-hex fan-out under blobs/: that exists for filesystems, not R2.
 */
import type { Digest, Repo, RobotName, Tag } from '../names'

export const REPOS_PREFIX = 'repos/'
/** Ends a repository name in every key under repos/ (see above). */
export const REPO_DELIMITER = '+'

export const keys = {
  uploadSecret: () => '_registry/upload-secret',
  blobs: () => 'blobs/',
  blob: (d: Digest) => `blobs/${d.replace(':', '/')}`,
  uploads: () => 'data/',
  upload: (id: string) => `data/${id}/`,
  uploadWrite: (id: string, offset: number) => `data/${id}/${String(offset).padStart(16, '0')}`,
  uploadParts: (id: string) => `data/${id}/parts`,
  manifests: (r: Repo) => `repos/${r}+manifests/`,
  manifest: (r: Repo, d: Digest) => `repos/${r}+manifests/${d}`,
  referrers: (r: Repo, subject: Digest) => `repos/${r}+referrers/${subject}/`,
  referrer: (r: Repo, subject: Digest, d: Digest) => `repos/${r}+referrers/${subject}/${d}`,
  pins: (r: Repo, d: Digest) => `repos/${r}+pins/${d}/`,
  pin: (r: Repo, d: Digest, root: Digest) => `repos/${r}+pins/${d}/${root}`,
  repoKeys: (r: Repo) => `repos/${r}+`,
  blobLink: (r: Repo, d: Digest) => `repos/${r}+blobs/${d}`,
  tags: (r: Repo) => `repos/${r}+tags/`,
  tag: (r: Repo, t: Tag) => `repos/${r}+tags/${t}`,
  cachedBlob: (origin: string, d: Digest) => `${origin}/_cache/blobs/${d}`,
  cachedLink: (origin: string, r: Repo, d: Digest) => `${origin}/_cache/links/${r}/${d}`,
  robot: (name: RobotName) => `auth/robots/${name}`,
  cachedJwks: (origin: string, issuer: string, jwksUri: string | null) =>
    `${origin}/_cache/oidc/jwks?iss=${encodeURIComponent(issuer)}${jwksUri ? `&jwks=${encodeURIComponent(jwksUri)}` : ''}`,
  gcReports: () => '_registry/gc/',
  gcRuns: () => '_registry/gc-runs/',
  gcRun: (run: string) => `_registry/gc-runs/${run}/`,
  gcRunShard: (run: string, shard: string) => `_registry/gc-runs/${run}/${shard}.json`,
  gcReport: (id: string) => `_registry/gc/${id}.json`,
  gcMarks: () => '_registry/gc-marks/',
  gcLinkMarks: () => '_registry/gc-marks/links/',
  gcLinkMark: (r: Repo, d: Digest) => `_registry/gc-marks/links/${r}+${d}`,
  gcBlobMarks: () => '_registry/gc-marks/blobs/',
  gcBlobMark: (d: Digest) => `_registry/gc-marks/blobs/${d.replace(':', '/')}`,
  cachedUpstreamListing: (origin: string, upstream: string, path: string, query: string) =>
    `${origin}/_cache/upstream/${upstream}${path}?${query}`,
  healthProbe: () => '_registry/health',
  cachedHealth: (origin: string) => `${origin}/_cache/health`,
  throttleMark: (origin: string, kind: 'address' | 'user', id: string) => `${origin}/_cache/throttle/${kind}/${id}`,
  pullStats: (r: Repo) => `_registry/pulls/${r}.json`,
  deliveryLog: (endpoint: string) => `_registry/events/${endpoint}.json`,
}

/** The upload id of a data/ key (data/<id> or data/<id>/…). */
export const uploadIdOf = (key: string): string => key.slice(keys.uploads().length).split('/')[0]!

/** A blob's digest from its index key. */
export const digestOfBlobKey = (key: string): Digest => key.slice('blobs/'.length).replace('/', ':') as Digest

/** Whether a key is an upload's own object (of session `id`, if given), which the upload may delete. */
export const isUploadKey = (key: string, id?: string): boolean => key.startsWith(id ? `data/${id}/` : 'data/')

/** The offset of a key of keys.uploadWrite, or null for other keys. */
export const offsetOfUploadKey = (key: string): number | null => {
  const m = /^data\/[0-9a-f]{32}\/(\d{16})$/.exec(key)
  return m ? Number(m[1]) : null
}

/** Whether a key is a registry blob's (blobs/<alg>/<hex>). */
export const isBlobKey = (key: string): boolean => /^blobs\/sha(256\/[a-f0-9]{64}|512\/[a-f0-9]{128})$/.test(key)

/** The repository a key of `list(prefix: REPOS_PREFIX, delimiter: REPO_DELIMITER)` names. */
export const repoOfPrefix = (prefix: string): string =>
  prefix.slice(REPOS_PREFIX.length, -REPO_DELIMITER.length)

/** The R2 `startAfter` that lists repositories after `name` ("~" sorts after "+manifests", "+referrers"). */
export const reposAfter = (name: string): string => `${REPOS_PREFIX}${name}${REPO_DELIMITER}~`

/** The referring manifest's digest from a key of keys.referrer (`prefix`: its keys.referrers). */
export const digestOfReferrerKey = (key: string, prefix: string): Digest => key.slice(prefix.length) as Digest

/** A tag's name from its KV key. */
export const tagOfKey = (r: Repo, key: string): string => key.slice(keys.tags(r).length)
