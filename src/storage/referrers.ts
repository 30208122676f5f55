/**
 * Referrers in R2, per repository and subject: one small object per referring
 * manifest, its descriptor in customMetadata, so one list answers the API.
 * R2 lists are strongly consistent: a referrer is listed as soon as it is pushed.
 */
import type { Env } from '../env'
import type { Descriptor } from '../manifests/handler'
import type { Digest, Repo } from '../names'
import { keys } from './keys'

/** customMetadata holds at most 2 KiB; larger descriptors go in the body. */
const INLINE_MAX = 1800

/** 1 R2 put. */
export async function putReferrer(env: Env, repo: Repo, subject: Digest, d: Descriptor): Promise<void> {
  const json = JSON.stringify(d)
  const inline = new TextEncoder().encode(json).byteLength <= INLINE_MAX
  await env.BLOBS.put(keys.referrer(repo, subject, d.digest), inline ? null : json, {
    customMetadata: inline ? { descriptor: json } : {},
  })
}

/** Free (R2 delete). */
export async function deleteReferrer(env: Env, repo: Repo, subject: Digest, digest: Digest): Promise<void> {
  await env.BLOBS.delete(keys.referrer(repo, subject, digest))
}

/** One page of referrers: 1 R2 list (+1 R2 get per descriptor too large for metadata). */
export async function listReferrers(
  env: Env,
  repo: Repo,
  subject: Digest,
  cursor: string | undefined,
): Promise<{ descriptors: Descriptor[]; cursor: string | null }> {
  // `include` is honoured by the runtime but missing from workers-types' R2ListOptions.
  const options = { prefix: keys.referrers(repo, subject), cursor, include: ['customMetadata'] }
  const page = await env.BLOBS.list(options as R2ListOptions)
  const descriptors = await Promise.all(
    page.objects.map(async (o) => {
      const inline = o.customMetadata?.descriptor
      if (inline) return JSON.parse(inline) as Descriptor
      const body = await env.BLOBS.get(o.key)
      return body ? ((await body.json()) as Descriptor) : null
    }),
  )
  return { descriptors: descriptors.filter((d): d is Descriptor => d !== null), cursor: page.truncated ? page.cursor : null }
}
