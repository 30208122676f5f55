/**
 * Pins: what an immutable tag reaches. When a manifest is pushed to a tag an IMMUTABLE_TAGS
 * rule covers, every manifest and blob it reaches (itself, an index's children, their configs
 * and layers) gets a pin naming the tag (src/gc/immutable.ts computes the reach). A delete of
 * a pinned manifest or blob link then costs one list to refuse. Pins are never removed: an
 * immutable tag never moves; a pin whose tag no longer names its root, or no longer matches a
 * rule, is stale and ignored.
 */
import type { Env } from '../env'
import type { Digest, Repo, Tag } from '../names'
import { keys } from './keys'

export interface Pin {
  /** The manifest the immutable tag names. */
  root: Digest
  tag: Tag
}

/** Pins `digests` as reached from `root` under `tag`: 1 R2 put each (empty objects), all at once. */
export async function putPins(env: Env, repo: Repo, digests: Digest[], pin: Pin): Promise<void> {
  await Promise.all(digests.map((d) => env.BLOBS.put(keys.pin(repo, d, pin.root), null, { customMetadata: { tag: pin.tag } })))
}

/** The pins on `digest` (at most `limit`). 1 R2 list. */
export async function listPins(env: Env, repo: Repo, digest: Digest, limit = 100): Promise<Pin[]> {
  const prefix = keys.pins(repo, digest)
  // `include` is honoured by the runtime but missing from workers-types' R2ListOptions.
  const page = await env.BLOBS.list({ prefix, limit, include: ['customMetadata'] } as R2ListOptions)
  return page.objects.flatMap((o) => {
    const tag = o.customMetadata?.tag
    return tag ? [{ root: o.key.slice(prefix.length) as Digest, tag: tag as Tag }] : []
  })
}
