/**
 * Deleting a manifest that many tags name, as a Cloudflare Workflow: a DELETE by digest removes
 * up to UNTAG_INLINE tags itself (routes/manifests.ts `deleteReference`); past that it answers 202 and hands the
 * rest here. Each step reads one KV list page of UNTAG_PAGE tags and deletes those naming the
 * manifest (at most UNTAG_PAGE + 1 KV calls a step, under the 1,000 operations an invocation
 * may make); the manifest and its referrer entry go last, so no tag ever names a deleted
 * manifest: unless it was pushed again meanwhile (a tag set since the pages were read), or an
 * immutable tag reaches it since. A tag found immutable stops the run and keeps the manifest
 * (the DELETE had refused it, had it read that far).
 */
import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from 'cloudflare:workers'
import type { Env } from '../env'
import { toHex } from '../digest/hex'
import type { Digest, Repo } from '../names'
import { deleteManifest, headManifest } from '../storage/manifests'
import { deleteReferrer } from '../storage/referrers'
import { deleteTag, tagsNamingPage } from '../storage/tags'
import { newEvent, type Origin } from '../events/event'
import { publish } from '../events/publish'
import { assertNotPinned, immutableRule } from './immutable'
import { RegistryError } from '../errors'
import type { Runner } from './collector'

/** Tags read per step (1 KV list) and so deleted per step at most. */
export const UNTAG_PAGE = 500

export interface UntagParams {
  repo: string
  digest: string
  /** Who asked (the DELETE's caller and request): the deletes are reported as theirs (events). */
  from?: Origin
  /**
   * The manifest's R2 object version as the DELETE found it: a push of it since (which writes it
   * again, then sets its tags) keeps it, so no tag set meanwhile ever names a deleted manifest.
   */
  version?: string
}

export interface UntagReport {
  /** Tags deleted. */
  untagged: number
  /** The manifest was deleted (false: an immutable tag names it, or it was already gone). */
  deleted: boolean
  /** The immutable tag and rule that stopped the run. */
  immutable?: { tag: string; rule: string }
}

const RETRIES = { retries: { limit: 5, delay: '5 seconds', backoff: 'exponential' }, timeout: '5 minutes' } as const

export class UntagWorkflow extends WorkflowEntrypoint<Env, UntagParams> {
  override async run(event: Readonly<WorkflowEvent<UntagParams>>, step: WorkflowStep): Promise<UntagReport> {
    const runner: Runner = {
      // A step's result crosses as JSON text: an object result leaves an RPC result undisposed
      // (workerd warns; cloudflare/workers-sdk#14959).
      do: async (name, fn) => JSON.parse(await step.do(name, RETRIES, async () => JSON.stringify((await fn()) ?? null))),
      sleep: async () => {},
    }
    return untag(this.env, event.payload, runner)
  }
}

/** Removes every tag naming the manifest, then the manifest and its referrer entry. */
export async function untag(env: Env, params: UntagParams, runner: Runner): Promise<UntagReport> {
  const repo = params.repo as Repo
  const digest = params.digest as Digest
  let cursor: string | null = null
  let untagged = 0
  for (let n = 0; ; n++) {
    const step: { count: number; cursor: string | null; immutable: { tag: string; rule: string } | null } =
      await runner.do(`tags ${n}`, async () => {
        const page = await tagsNamingPage(env, repo, digest, cursor, UNTAG_PAGE)                 // KV list
        for (const tag of page.tags) {
          const rule = immutableRule(env, repo, tag)
          if (rule) return { count: 0, cursor: null, immutable: { tag, rule } }
        }
        await Promise.all(page.tags.map((tag) => deleteTag(env, repo, tag)))                  // KV delete each
        // Each tag's delete is reported with its step (a retried step reports again: at least once).
        await report(env, params, page.tags.map((tag) => ({ repository: repo, digest, tag })))   // Queue write(s), when an endpoint wants them
        return { count: page.tags.length, cursor: page.cursor, immutable: null }
      })
    untagged += step.count
    if (step.immutable) return { untagged, deleted: false, immutable: step.immutable }
    cursor = step.cursor
    if (!cursor) break
  }
  const deleted = await runner.do('manifest', async () => {
    const stored = await headManifest(env, repo, digest)                                       // R2 head
    if (!stored) return false
    // Pushed again since the DELETE (its tags set after the pages above were read): it stays.
    if (params.version !== undefined && stored.version !== params.version) return false
    // Reached since by an immutable tag (an index naming it pushed to one): it stays.
    if (await pinned(env, repo, digest)) return false                                         // (IMMUTABLE_TAGS) R2 list + KV gets
    await Promise.all([
      deleteManifest(env, repo, digest),
      stored.subject ? deleteReferrer(env, repo, stored.subject, digest) : Promise.resolve(),
    ])
    await report(env, params, [{ repository: repo, digest, mediaType: stored.mediaType }])
    return true
  })
  return { untagged, deleted }
}

/** Whether an immutable tag reaches the manifest (a pin that holds: gc/immutable.ts `assertNotPinned`). */
async function pinned(env: Env, repo: Repo, digest: Digest): Promise<boolean> {
  try {
    await assertNotPinned(env, repo, digest, 'manifest')
    return false
  } catch (err) {
    if (err instanceof RegistryError) return true
    throw err
  }
}

/** `delete` events of what the run removed, as the DELETE's caller (`gc` when none was given). */
async function report(env: Env, params: UntagParams, targets: { repository: string; digest: string; tag?: string; mediaType?: string }[]): Promise<void> {
  const from: Origin = params.from ?? { actor: 'gc', request: null, origin: null }
  if (targets.length) await publish(env, targets.map((t) => newEvent(from, 'delete', t)))
}

/** States of a run that has ended (complete: stopped by an immutable tag, since the manifest is still there). */
const ENDED = new Set(['complete', 'errored', 'terminated'])

/**
 * Hands the removal of manifest `digest` of `repo` (as stored now: `version`, its R2 object's) and
 * its tags to the Workflow: the instance id. One run per stored manifest: its id is derived from
 * the repository, digest and version, so a DELETE repeated while a run is under way starts
 * nothing more (each run lists and deletes every tag again: a client repeating the DELETE would
 * multiply that work, and the bill, without bound). A run of the same manifest that ended without
 * deleting it (an immutable tag stopped it, it failed, it was terminated) is restarted, reporting
 * as the caller that first asked; a manifest pushed again is a new version, and a new run.
 * 1 Workflow get, + 1 create or restart.
 */
export async function startUntag(env: Env, repo: Repo, digest: Digest, version: string, from?: Origin): Promise<string> {
  const workflow = env.UNTAG_WORKFLOW
  if (!workflow) throw new Error('UNTAG_WORKFLOW binding missing (wrangler.toml [[workflows]])')
  const id = await untagRunId(repo, digest, version)
  const existing = await workflow.get(id).catch(() => null)
  if (existing) {
    try {
      if (ENDED.has((await existing.status()).status)) await existing.restart()
    } finally {
      release(existing)
    }
    return id
  }
  try {
    release(await workflow.create({ id, params: { repo, digest, version, ...(from ? { from } : {}) } }))
  } catch (err) {
    // Another DELETE created it meanwhile (Cloudflare refuses a second instance of an id).
    const raced = await workflow.get(id).catch(() => null)
    if (!raced) throw err
    release(raced)
  }
  return id
}

/** `untag-<40 hex>`: a SHA-256 of repository, digest and object version (Workflow ids are at most 100 of [A-Za-z0-9_-]). */
async function untagRunId(repo: Repo, digest: Digest, version: string): Promise<string> {
  const hash = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${repo}\n${digest}\n${version}`))
  return `untag-${toHex(new Uint8Array(hash)).slice(0, 40)}`
}

/** An instance handle is an RPC stub: released at once (workerd warns about stubs left to the GC). */
const release = (instance: WorkflowInstance): void => (instance as unknown as Partial<Disposable>)[Symbol.dispose]?.()
