/**
 * How a collection is cut into shards (docs/garbage-collection.md, "Sharding"), and the compact
 * sets shards hand each other through the parent run.
 *
 *   repositories  contiguous name ranges, found as the KV listing goes (KV lists have no
 *                 "start after": a shard ends at a repository boundary and hands on the cursor
 *                 of the page it stopped in, with the last name it took)
 *   blobs         ranges of the digest's hex (the blob index, blobs/<alg>/<hex>, both algorithms)
 *   uploads       ranges of the upload id (data/<id>/…)
 *
 * What crosses shards is a set of 48-bit digest prefixes ("hex12"): a blob held by a repository
 * shard, or an upload object a blob points at. A prefix shared by chance can only keep something
 * (never delete it): the sets err on the safe side, and the unsharded plan uses the same sets.
 */

/** The first 12 hex digits of a digest (sha256:… or sha512:…), or of a key's SHA-256 (see hashKey). */
export const hex12 = (digest: string): string => digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13)

/** A compact, sorted set of hex12 values: one string, 12 characters each (it crosses steps and events). */
export function packSet(values: Iterable<string>): string {
  return [...new Set(values)].sort().join('')
}

/** Entries of a packed set in [lo, hi) (hex prefixes; hi null = to the end). */
export function slicePacked(packed: string, lo: string, hi: string | null): string {
  const first = lowerBound(packed, lo)
  const end = hi === null ? packed.length / 12 : lowerBound(packed, hi)
  return packed.slice(first * 12, end * 12)
}

function lowerBound(packed: string, value: string): number {
  let lo = 0
  let hi = packed.length / 12
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (packed.slice(mid * 12, mid * 12 + 12) < value) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** A packed set's values, or several packed sets' joined (`parts.join('')`, unsorted): to look up by the shard that needs them. */
export function unpack(packed: string): Set<string> {
  const out = new Set<string>()
  for (let i = 0; i < packed.length; i += 12) out.add(packed.slice(i, i + 12))
  return out
}

/** A key's stand-in in a packed set (upload objects are named by key, not digest). */
export async function hashKey(key: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(key)))
  return [...d.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join('')
}

/** A range of hex prefixes: [lo, hi), hi null = to the end; lo '' = from the start. */
export interface HexRange { lo: string; hi: string | null }

/**
 * `n` ranges splitting the hex space evenly (digests are uniform), as 3-digit prefixes
 * (up to 4,096 shards). The first starts at '' and the last runs to the end, so keys that are
 * not hex at all (test upload ids) still fall in exactly one range.
 */
export function hexRanges(n: number): HexRange[] {
  const count = Math.max(1, Math.min(4096, Math.floor(n)))
  const at = (i: number) => Math.floor((i * 4096) / count).toString(16).padStart(3, '0')
  return Array.from({ length: count }, (_, i) => ({ lo: i === 0 ? '' : at(i), hi: i === count - 1 ? null : at(i + 1) }))
}

/** The index of the range holding `hex` (a digest's or an id's leading characters): binary search. */
export function rangeOf(ranges: HexRange[], hex: string): number {
  let lo = 0
  let hi = ranges.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1
    if (hex >= ranges[mid]!.lo) lo = mid
    else hi = mid - 1
  }
  return lo
}

/** Upload ids are sorted into this many buckets (3-hex prefixes) before upload shards are cut. */
export const BUCKETS = hexRanges(4096)

/** An upload id's bucket. */
export const bucketOf = (id: string): number => rangeOf(BUCKETS, id)

/**
 * Upload shards: consecutive buckets grouped while their packed hashes stay under `most` entries
 * each (an upload shard's share travels in its parameters, ≤ 1 MiB), at least one shard, the
 * first from the start and the last to the end.
 */
export function uploadShards(protect: Map<number, string[]>, most: number): { range: HexRange; protect: string }[] {
  const out: { first: number; last: number; parts: string[]; count: number }[] = [{ first: 0, last: 0, parts: [], count: 0 }]
  for (let b = 0; b < BUCKETS.length; b++) {
    const parts = protect.get(b) ?? []
    const count = parts.reduce((n, p) => n + p.length / 12, 0)
    let shard = out.at(-1)!
    if (shard.count > 0 && shard.count + count > most) out.push((shard = { first: b, last: b, parts: [], count: 0 }))
    shard.last = b
    shard.parts.push(...parts)
    shard.count += count
  }
  return out.map((s, i) => ({
    range: { lo: i === 0 ? '' : BUCKETS[s.first]!.lo, hi: i === out.length - 1 ? null : BUCKETS[s.last]!.hi },
    protect: s.parts.join(''),
  }))
}

/** Whether `hex` lies in the range. */
export const inRange = (r: HexRange, hex: string): boolean => hex >= r.lo && (r.hi === null || hex < r.hi)
