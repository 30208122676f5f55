/**
 * The events layer. As distribution's notifications/listener.go wraps a repository's services,
 * `observedStore` wraps the storage operations that make a visible change, so every write reports
 * itself whoever makes it (a route, the web UI, the pull-through cache), and no route calls the
 * events code. The collector reports its own deletes (src/gc/sweep.ts, actor `gc`); pulls are
 * counted from the answer a manifest GET gives (`countedPulls`: only the answer knows GET from
 * HEAD, 200 from 304, and which manifest of an index was served).
 *
 * When: a change's events are enqueued after it is stored, and before the client hears it
 * succeeded (awaited): `waitUntil` only lets work run on after the reply (up to 30 s) and is not
 * durable (an isolate that ends early, say when another request in it overflows memory, drops
 * it), so an event enqueued there could be lost after the client was told its push worked. A
 * pull's message, which the client need not wait for, goes in `waitUntil` (docs/events.md).
 */
import type { IRequest } from 'itty-router'
import type { Env } from '../env'
import type { Digest, Repo, Tag } from '../names'
import { parseReference } from '../names'
import { notificationSettings } from '../settings'
import type { BlobLocation } from '../storage/blobs'
import { deleteBlobLink, writeBlobLink, type LinkContext } from '../storage/links'
import * as repository from '../storage/repository'
import type { StoredManifest } from '../storage/manifests'
import type { TagRecord } from '../storage/tags'
import { BLOB_MEDIA_TYPE, newEvent, type Origin, type RegistryEvent } from './event'
import { countPull, deliveries, publish, sendAll } from './publish'
import { logEvent } from '../log'

/** The visible changes, as routes make them (src/storage/repository.ts and links.ts, reported). */
export interface Store {
  /** A manifest stored and its tags set: `push`, one per tag (one untagged when none). */
  pushManifest(m: repository.ManifestPush): Promise<void>
  /** A tag set to a stored manifest (the pull-through cache): `push` with the tag, when it moved. */
  setTag(repo: Repo, tag: Tag, record: TagRecord, bytes: Uint8Array, previous: Digest | null): Promise<void>
  /** `delete` of the tag. */
  removeTag(repo: Repo, tag: Tag): Promise<TagRecord | null>
  /** `delete` of the manifest (as found: `stored`), after its tags (`tags`, all of them), with those tags. */
  removeManifest(repo: Repo, digest: Digest, stored: StoredManifest, tags: Tag[]): Promise<repository.RemovedManifest>
  /** A blob linked into a repository: `push` (an upload), or `mount` when `from` names its source. */
  linkBlob(repo: Repo, digest: Digest, blob: BlobLocation, from: Repo | null): Promise<void>
  /** `delete` of the blob (from this repository). */
  unlinkBlob(repo: Repo, digest: Digest): Promise<boolean>
  /** The same store, reporting as `actor` (the pull-through cache fills as `proxy`). */
  as(actor: string): Store
}

/** The store of a request (or of a cache fill it makes), reporting with `from`. */
export function observedStore(env: Env, links: LinkContext, from: Origin): Store {
  const report = (events: RegistryEvent[]) => reportChange(env, events)
  const event = (action: RegistryEvent['action'], target: RegistryEvent['target']) => newEvent(from, action, target)
  return {
    async pushManifest(m) {
      await repository.pushManifest(env, m)
      const target = { repository: m.repo, digest: m.digest, mediaType: m.mediaType, size: m.bytes.byteLength, length: m.bytes.byteLength }
      await report(m.tags.length ? m.tags.map((tag) => event('push', { ...target, tag })) : [event('push', target)])
    },
    async setTag(repo, tag, record, bytes, previous) {
      await repository.setTag(env, repo, tag, record, bytes)
      if (previous === record.digest) return
      await report([event('push', { repository: repo, digest: record.digest, mediaType: record.mediaType, size: bytes.byteLength, length: bytes.byteLength, tag })])
    },
    async removeTag(repo, tag) {
      const removed = await repository.removeTag(env, repo, tag)
      if (removed) await report([event('delete', { repository: repo, tag, digest: removed.digest, mediaType: removed.mediaType })])
      return removed
    },
    async removeManifest(repo, digest, stored, tags) {
      const removed = await repository.removeManifest(env, repo, digest, stored, tags)
      await report([event('delete', { repository: repo, digest, mediaType: removed.mediaType, tags: removed.tags })])
      return removed
    },
    async linkBlob(repo, digest, blob, source) {
      await writeBlobLink(env, links, repo, digest, blob)
      const target = { repository: repo, digest, mediaType: BLOB_MEDIA_TYPE, size: blob.size, length: blob.size }
      await report([source && source !== repo ? event('mount', { ...target, fromRepository: source }) : event('push', target)])
    },
    async unlinkBlob(repo, digest) {
      const removed = await deleteBlobLink(env, links, repo, digest)
      if (removed) await report([event('delete', { repository: repo, digest, mediaType: BLOB_MEDIA_TYPE })])
      return removed
    },
    as(actor) {
      return observedStore(env, links, { ...from, actor })
    },
  }
}

/**
 * Enqueues a stored change's events. The change stands whatever happens here: if the queue
 * refuses them twice, the events go to the log in full (`events.not-queued`), never silently.
 */
async function reportChange(env: Env, events: RegistryEvent[]): Promise<void> {
  try {
    await publish(env, events)
  } catch {
    try {
      await publish(env, events)
    } catch (err) {
      logEvent('error', { event: 'events.not-queued', error: String(err), events })
    }
  }
}

type Handler<C> = (req: IRequest, c: C) => Promise<Response> | Response

/**
 * A manifest GET answered 200 is a pull (not a HEAD, not a 304: what Docker Hub and Harbor
 * count): with PULL_STATS it is counted, and endpoints that want `pull` hear of it. In
 * `waitUntil`: the client does not wait for it.
 */
export function countedPulls<C extends { env: Env; from: Origin; waitUntil(p: Promise<unknown>): void }>(h: Handler<C>): Handler<C> {
  return async function countedPull(req, c) {
    const res = await h(req, c)
    if (req.method !== 'GET' || res.status !== 200) return res
    const settings = notificationSettings(c.env)
    const wantPulls = settings.endpoints.some((e) => e.actions.includes('pull'))
    if (!settings.pullStats && !wantPulls) return res
    const digest = res.headers.get('docker-content-digest')
    if (!digest) return res
    const repo = req.params.name!
    const ref = parseReference(req.params.reference ?? '')
    const length = Number(res.headers.get('content-length'))
    const work: Promise<unknown>[] = []
    if (settings.pullStats) work.push(countPull(c.env, { repo, digest, at: Date.now() }))              // Queue write
    if (wantPulls) {
      const ev = newEvent(c.from, 'pull', {
        repository: repo, digest, mediaType: res.headers.get('content-type') ?? undefined, size: length, length,
        ...(ref.kind === 'tag' ? { tag: ref.tag } : {}),
      })
      const messages = deliveries(c.env, [ev])
      if (messages.length) work.push(sendAll(c.env.EVENTS!, messages))                                 // Queue write per endpoint
    }
    c.waitUntil(Promise.all(work))
    return res
  }
}
