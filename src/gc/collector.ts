/**
 * One collection run as a parent and its shards (docs/garbage-collection.md, "Sharding"), each a
 * sequence of bounded, idempotent steps. A Runner gives durability (workflow.ts: a Cloudflare
 * Workflow, each step's result stored and replayed; in tests a map standing in for it); a Fleet
 * starts shards (workflow.ts: child Workflow instances; fleet.ts: in-process, for tests and benches).
 *
 *   parent   repository shards one after another (each finds where the next starts) → blob
 *            shards → upload shards; a dry run sums their reports and ends. A real run then
 *            sleeps GC_SETTLE_SECONDS, runs each repository shard's sweep, then each blob
 *            shard's sweep, sums the reports, stores the report in R2
 *   repos    scan KV (tags, links) and R2 (manifests, referrers) of a name range, read the
 *            manifests → plan; real: retention tags, stamp, mark links, plan kept in R2
 *   blobs    scan the blob index of a digest range → plan against what repositories hold;
 *            real: mark blobs, plan kept in R2
 *   uploads  scan data/ of an id range → plan against what blob entries point at; real: delete
 *   sweeps   (real) second look of a name range, then manifests, links; then blobs
 *
 * What one shard tells another goes through the parent as packed 48-bit digest prefixes
 * (shards.ts): a collision only keeps something.
 */
import type { Env } from '../env'
import { dropShardPlans, getShardPlan, putShardPlan } from '../storage/gc-runs'
import {
  BLOB_ALGORITHMS, listBlobIndexPage, listBlobMarksPage, listKvPage, listLinkMarksPage, listRepoObjectsPage, listUploadsPage,
  type BlobEntry, type KeyRange, type LinkEntry, type ManifestEntry, type Page, type ReferrerEntry, type RepoRange, type TagEntry,
} from '../storage/gc-scan'
import { putReport, type GcReport } from '../storage/gc-reports'
import { uploadIdOf } from '../storage/keys'
import { gcConfig } from './config'
import { immutableRule } from './immutable'
import type { RunParams } from './params'
import { abridge, emptyPart, mergeParts, planBlobs, planRepos, planUploads, report, reportPart, type Policy, type Refs, type ReportPart } from './plan'
import { retentionRules, ruleFor, usesPulls } from './retention'
import { lastPulls } from '../storage/pull-stats'
import { globMatch } from '../glob'
import { notificationSettings, settings } from '../settings'
import { bucketOf, hashKey, hex12, hexRanges, packSet, rangeOf, slicePacked, unpack, uploadShards, type HexRange } from './shards'
import * as sweep from './sweep'

export interface Runner {
  /** Runs `fn` once; a resumed run gets the stored result instead. */
  do<T>(name: string, fn: () => Promise<T>): Promise<T>
  sleep(name: string, ms: number): Promise<void>
}

/** Starts a run's shards and hands back their results. */
export interface Fleet {
  /** Starts shard `name` (once: a resumed parent does not start it again). */
  start(name: string, task: ShardTask): Promise<void>
  /** The shard's result, once it has finished. */
  result<T>(name: string): Promise<T>
}

/** How big a shard may grow: each bound keeps a shard's steps, state and messages within Workflows' limits. */
export interface Sizes {
  /** KV keys (tags + links) per repository shard: ≤ 60,000 digests held, 720 KB packed, under a 1 MiB event. */
  repoKeys: number
  /** Held digests per blob shard (its share of the packed sets travels in its parameters: 480 KB, under 1 MiB). */
  heldPerBlobShard: number
}

export const SIZES: Sizes = { repoKeys: 60_000, heldPerBlobShard: 40_000 }

/** What a shard is given: the run, its start time, its job. */
export interface ShardTask {
  /** The run's id (the parent instance's). */
  run: string
  /** The shard's name in the run (r0, b3, u1, sr0, sb3): a child instance is `<run>-<name>`. */
  name?: string
  params: RunParams
  now: number
  job: Job
}

type Job =
  | { kind: 'repos'; cursor: string | null; after: string | null; keys: number; kvBudget: number | null }
  | { kind: 'blobs'; range: HexRange; held: string }
  | { kind: 'uploads'; range: HexRange; protect: string }
  | { kind: 'repos-sweep'; shard: string; cursor: string | null; range: RepoRange }
  | { kind: 'blobs-sweep'; shard: string; range: HexRange; held: string[] }

interface ReposResult { next: { cursor: string | null; after: string } | null; range: RepoRange; held: string; kvWrites: number; part: ReportPart }
/** `protect`: packed hashes of the upload keys its entries point at, by upload id bucket (shards.ts BUCKETS). */
interface BlobsResult { protect: Record<number, string>; part: ReportPart }
interface PartResult { part: ReportPart }
interface ReposSweepResult { held: string[]; part: ReportPart }

/** The parent: runs the shards, sums their reports. */
export async function collect(env: Env, id: string, params: RunParams, run: Runner, fleet: Fleet, sizes: Sizes = SIZES): Promise<GcReport> {
  const config = gcConfig(env)
  retentionRules(env) // a bad setting fails the run here, before any shard starts
  notificationSettings(env) // the run reports its deletes: a missing queue stops it before it marks anything
  const { now, started } = await run.do('start', async () => ({ now: Date.now(), started: new Date().toISOString() }))
  const task = (job: Job): ShardTask => ({ run: id, params, now, job })
  const parts: ReportPart[] = []

  // Repository shards, in name order: a shard ends at a repository boundary and says where the next starts.
  const repos: { name: string; cursor: string | null; range: RepoRange }[] = []
  const held: string[] = []
  // GC_MAX_KV_WRITES: what one shard does not spend, the next may.
  let kvBudget = settings(env).GC_MAX_KV_WRITES
  for (let next: ReposResult['next'] = { cursor: null, after: '' }; next; ) {
    const name = `r${repos.length}`
    const cursor = next.cursor
    await fleet.start(name, task({ kind: 'repos', cursor, after: next.after || null, keys: sizes.repoKeys, kvBudget }))
    const r = await fleet.result<ReposResult>(name)
    if (kvBudget !== null) kvBudget = Math.max(0, kvBudget - r.kvWrites)
    repos.push({ name, cursor, range: r.range })
    held.push(r.held)
    parts.push(r.part)
    next = r.next
  }

  // Blob shards by digest range, sized by what repositories hold; upload shards by id range.
  const heldCount = held.reduce((n, h) => n + h.length / 12, 0)
  const blobRanges = hexRanges(Math.ceil((heldCount + 1) / sizes.heldPerBlobShard))
  for (const [i, range] of blobRanges.entries()) {
    const mine = params.repo === null ? held.map((h) => slicePacked(h, range.lo, range.hi)).join('') : ''
    await fleet.start(`b${i}`, task({ kind: 'blobs', range, held: mine }))
  }
  // What blob entries point at, by upload id bucket: grouped into upload shards of a bounded size.
  const protect = new Map<number, string[]>()
  for (const i of blobRanges.keys()) {
    const r = await fleet.result<BlobsResult>(`b${i}`)
    for (const [bucket, packed] of Object.entries(r.protect)) (protect.get(+bucket) ?? protect.set(+bucket, []).get(+bucket)!).push(packed)
    parts.push(r.part)
  }
  if (params.repo === null) {
    const uploads = uploadShards(protect, sizes.heldPerBlobShard)
    for (const [i, u] of uploads.entries()) await fleet.start(`u${i}`, task({ kind: 'uploads', range: u.range, protect: u.protect }))
    for (const i of uploads.keys()) parts.push((await fleet.result<PartResult>(`u${i}`)).part)
  }

  if (!params.dryRun) {
    await run.sleep('settle', config.settleMs)
    // Second look and sweep, per repository shard; then blobs no link holds any more.
    for (const r of repos) await fleet.start(`s${r.name}`, task({ kind: 'repos-sweep', shard: r.name, cursor: r.cursor, range: r.range }))
    const heldNow: string[] = []
    for (const r of repos) {
      const s = await fleet.result<ReposSweepResult>(`s${r.name}`)
      heldNow.push(...s.held)
      parts.push(s.part)
    }
    if (params.repo === null) {
      for (const [i, range] of blobRanges.entries()) {
        const mine = heldNow.filter((d) => rangeOf(blobRanges, hex12(d)) === i)
        await fleet.start(`sb${i}`, task({ kind: 'blobs-sweep', shard: `b${i}`, range, held: mine }))
      }
      for (const i of blobRanges.keys()) parts.push((await fleet.result<PartResult>(`sb${i}`)).part)
    }
  }

  const finished = await run.do('finish', async () => new Date().toISOString())
  const out = report(id, started, params, mergeParts(parts), finished)
  if (!params.dryRun) {
    await run.do('report', () => putReport(env, out))
    await run.do('drop plans', () => dropShardPlans(env, id))
  }
  // The instance's output (what GET /admin/gc/<id> shows); a real run's R2 copy keeps every shard's part.
  return abridge(out, OUTPUT_BYTES)
}

/** Repositories whose pull statistics one step reads (1 R2 get each). */
const PULLS_BATCH = 50

/** JSON of repositories a shard's result may carry (with up to 720 KB of held digests: under 1 MiB). */
const PART_BYTES = 200 * 1024
/** JSON of repositories a run's output may carry (Workflows keep an instance's output like a step's result). */
const OUTPUT_BYTES = 768 * 1024

/** One shard of a run (a child instance): its result goes to the parent. */
export async function runShard(env: Env, task: ShardTask, run: Runner): Promise<unknown> {
  const job = task.job
  if (job.kind === 'repos') return planRepoShard(env, task, job, run)
  if (job.kind === 'blobs') return planBlobShard(env, task, job, run)
  if (job.kind === 'uploads') return uploadShard(env, task, job, run)
  if (job.kind === 'repos-sweep') return sweepRepoShard(env, task, job, run)
  return sweepBlobShard(env, task, job, run)
}

const policyOf = (env: Env, params: RunParams): Policy => ({
  params,
  graceMs: gcConfig(env).graceMs,
  rules: retentionRules(env),
  isImmutable: (r, t) => immutableRule(env, r, t) !== null,
})

/** What a repository shard keeps in R2 between its mark and its sweep. */
interface RepoShardPlan {
  manifests: ManifestEntry[]
  referrers: ReferrerEntry[]
  /** What each candidate manifest names (the second look walks them). */
  refs: Record<string, Refs>
  links: { repo: string; digest: string; size: number }[]
  marks: sweep.MarkedLink[]
  /** Every link the scan saw (`repo+digest` → its time): one written since is new. */
  scanned: Record<string, number | null>
}

async function planRepoShard(env: Env, task: ShardTask, job: Extract<Job, { kind: 'repos' }>, run: Runner): Promise<ReposResult> {
  const { params, now } = task
  const tags: TagEntry[] = []
  const links: LinkEntry[] = []
  let taken = 0
  let last: string | null = null
  let next: ReposResult['next'] = null
  // KV, from the cursor the previous shard stopped in: repositories after `after`, until the
  // budget is spent at a repository boundary.
  let cursor = job.cursor
  for (let i = 0; ; i++) {
    const from = cursor
    const page = await run.do(`kv:${i}`, () => listKvPage(env, from))
    const byRepo = new Map<string, { tags: TagEntry[]; links: LinkEntry[] }>()
    const of = (repo: string) => byRepo.get(repo) ?? byRepo.set(repo, { tags: [], links: [] }).get(repo)!
    for (const t of page.items.tags) of(t.repo).tags.push(t)
    for (const l of page.items.links) of(l.repo).links.push(l)
    for (const repo of [...byRepo.keys()].sort()) {
      if (job.after !== null && repo <= job.after) continue
      if (taken >= job.keys && repo !== last) {
        next = { cursor: from, after: last! }
        break
      }
      const r = byRepo.get(repo)!
      tags.push(...r.tags)
      links.push(...r.links)
      taken += r.tags.length + r.links.length
      last = repo
    }
    cursor = page.cursor
    if (next || !cursor) break
  }
  const range: RepoRange = { after: job.after, last: next ? last : null }
  const manifests: ManifestEntry[] = []
  const referrers: ReferrerEntry[] = []
  for await (const page of pages(run, 'repos', (c) => listRepoObjectsPage(env, c, range))) {
    manifests.push(...page.manifests)
    referrers.push(...page.referrers)
  }
  const refs = await readRefs(env, run, 'refs', manifests)
  const policy = policyOf(env, params)
  // Retention by pulls: the pull statistics of each repository (in scope) whose rule keeps by them.
  const byPulls = [...new Set(tags.map((t) => t.repo))].filter((r) => {
    const rule = ruleFor(policy.rules, r)
    return rule !== null && usesPulls(rule) && (params.repo === null || globMatch(params.repo, r))
  })
  const pulls: Record<string, Record<string, number>> = {}
  for (const part of await batches(run, 'pulls', byPulls, PULLS_BATCH, (b) => lastPulls(env, b))) Object.assign(pulls, part)   // R2 get each
  const p = planRepos({ now, tags, links, manifests, refs, referrers, pulls }, { ...policy, kvBudget: job.kvBudget })
  const result = { next, range, held: packSet(p.held), kvWrites: p.kvWrites }
  if (params.dryRun) return { ...result, part: abridge(reportPart(p), PART_BYTES) }

  await batches(run, 'sweep-tags', p.tags, sweep.BATCH.dropTags, (b) => sweep.dropTags(env, b))
  await batches(run, 'stamp', p.unstamped, sweep.BATCH.stampLinks, (b) => sweep.stampLinks(env, b))
  const marks = (await batches(run, 'mark-links', p.links, sweep.BATCH.markLinks, (b) => sweep.markLinks(env, task.run, b))).flat()
  const candidates = new Set(p.manifests.map((m) => m.key))
  const plan: RepoShardPlan = {
    manifests: p.manifests,
    referrers: p.referrers,
    refs: Object.fromEntries(Object.entries(refs).filter(([k]) => candidates.has(k))),
    links: p.links,
    marks,
    scanned: Object.fromEntries(links.map((l) => [`${l.repo}+${l.digest}`, l.t ?? null])),
  }
  await run.do('plan', () => putShardPlan(env, task.run, shardName(job), plan))
  return { ...result, part: abridge(reportPart({ tags: p.tags, retained: p.retained, deferred: p.deferred }), PART_BYTES) }
}

/** A repository shard's name in R2 (its range's start: stable across a resumed parent). */
const shardName = (job: { after: string | null }) => `repos-${job.after === null ? '' : encodeURIComponent(job.after)}`

/** What a blob shard keeps in R2 between its mark and its sweep. */
interface BlobShardPlan { marks: sweep.MarkedBlob[]; kept: { blobs: number; bytes: number } }

async function planBlobShard(env: Env, task: ShardTask, job: Extract<Job, { kind: 'blobs' }>, run: Runner): Promise<BlobsResult> {
  const { params, now } = task
  const blobs: BlobEntry[] = []
  for (const alg of BLOB_ALGORITHMS) {
    for await (const page of pages(run, `blobs-${alg}`, (c) => listBlobIndexPage(env, c, alg, job.range))) blobs.push(...page)
  }
  const graceMs = gcConfig(env).graceMs
  // With --repo, blobs are left for a full run: every one is kept (and counted).
  const held = unpack(job.held)
  const b = planBlobs(blobs, params.repo === null ? (d) => held.has(hex12(d)) : () => true, now, graceMs)
  const protect: Record<number, string[]> = {}
  for (const at of b.protect) (protect[bucketOf(uploadIdOf(at))] ??= []).push(await hashKey(at))
  const packed = Object.fromEntries(Object.entries(protect).map(([bucket, hashes]) => [bucket, packSet(hashes)]))
  if (params.dryRun || params.repo !== null) return { protect: packed, part: reportPart({ blobs: b.blobs, kept: b.kept }) }
  const marks = (await batches(run, 'mark-blobs', b.blobs, sweep.BATCH.markBlobs, (x) => sweep.markBlobs(env, task.run, x))).flat()
  await run.do('plan', () => putShardPlan(env, task.run, `blobs-${job.range.lo}`, { marks, kept: b.kept } satisfies BlobShardPlan))
  return { protect: packed, part: emptyPart() }
}

async function uploadShard(env: Env, task: ShardTask, job: Extract<Job, { kind: 'uploads' }>, run: Runner): Promise<PartResult> {
  const uploads = []
  for await (const page of pages(run, 'uploads', (c) => listUploadsPage(env, c, job.range))) uploads.push(...page)
  const protect = unpack(job.protect)
  const doomed = await planUploads(uploads, (h) => protect.has(h), task.now, gcConfig(env).graceMs)
  // Abandoned sessions past the upload expiry: nothing can point at them any more, so no mark is needed.
  if (!task.params.dryRun) await batches(run, 'sweep-uploads', doomed, sweep.BATCH.dropUploads, (b) => sweep.dropUploads(env, b))
  return { part: reportPart({ uploads: doomed }) }
}

async function sweepRepoShard(env: Env, task: ShardTask, job: Extract<Job, { kind: 'repos-sweep' }>, run: Runner): Promise<ReposSweepResult> {
  const { now } = task
  // Immutable once written, so read outside a step (re-read if the instance resumes).
  const p = await getShardPlan<RepoShardPlan>(env, task.run, shardName(job.range))
  // Second look: a manifest pushed (or re-pushed) since the run started rescues what it names.
  const since: ManifestEntry[] = []
  for await (const page of pages(run, 'recheck', (c) => listRepoObjectsPage(env, c, job.range))) {
    since.push(...page.manifests.filter((m) => m.uploaded > now))
  }
  const fresh = await readRefs(env, run, 'recheck-refs', since)
  const rescued = rescue(p, since, fresh)
  // And links as they are now: a candidate re-linked since the scan (its time changed) stays, and
  // so does the blob of any link the scan did not see (a push linked it before the mark).
  const linkedNow = new Map<string, number | null>()
  let cursor = job.cursor
  for (let i = 0; ; i++) {
    const from = cursor
    const page = await run.do(`recheck-kv:${i}`, () => listKvPage(env, from))
    let past = false
    for (const l of page.items.links) {
      if (job.range.after !== null && l.repo <= job.range.after) continue
      if (job.range.last !== null && l.repo > job.range.last) past = true
      else linkedNow.set(`${l.repo}+${l.digest}`, l.t ?? null)
    }
    cursor = page.cursor
    if (past || !cursor) break
  }
  const candidates = new Set(p.links.map((l) => `${l.repo}+${l.digest}`))
  for (const k of candidates) if (linkedNow.has(k) && linkedNow.get(k) !== p.scanned[k]) rescued.links.add(k)
  const holds = new Set(rescued.blobs)
  for (const k of linkedNow.keys()) if (!(k in p.scanned) || rescued.links.has(k)) holds.add(k.slice(k.indexOf('+') + 1))

  const links = p.marks.filter((l) => !rescued.links.has(`${l.repo}+${l.digest}`))
  await batches(run, 'unmark-links', p.marks.filter((l) => rescued.links.has(`${l.repo}+${l.digest}`)), sweep.BATCH.unmarkLinks, (b) => sweep.unmarkLinks(env, b))
  const manifests = p.manifests.filter((m) => !rescued.manifests.has(m.key))
  const saved = new Set(p.manifests.filter((m) => rescued.manifests.has(m.key)).map((m) => `${m.repo}+${m.digest}`))
  const referrers = p.referrers.filter((r) => !saved.has(`${r.repo}+${r.digest}`))
  await batches(run, 'sweep-referrers', referrers, sweep.BATCH.dropReferrers, (b) => sweep.dropReferrers(env, b))
  await batches(run, 'sweep-manifests', manifests, sweep.BATCH.dropManifests, (b) => sweep.dropManifests(env, b))
  const kept = new Set((await batches(run, 'sweep-links', links, sweep.BATCH.sweepLinks, (b) => sweep.sweepLinks(env, task.run, b))).flat())
  // A blob goes only if every link it had was swept (a kept or rescued link keeps it).
  for (const k of [...kept, ...rescued.links]) holds.add(k.slice(k.indexOf('+') + 1))
  const swept = new Set(links.map((l) => `${l.repo}+${l.digest}`).filter((k) => !kept.has(k)))
  await cleanMarks(env, run, 'link-marks', (c) => listLinkMarksPage(env, c, job.range), now - 2 * gcConfig(env).settleMs)
  return { held: [...holds], part: abridge(reportPart({ manifests, links: p.links.filter((l) => swept.has(`${l.repo}+${l.digest}`)) }), PART_BYTES) }
}

async function sweepBlobShard(env: Env, task: ShardTask, job: Extract<Job, { kind: 'blobs-sweep' }>, run: Runner): Promise<PartResult> {
  const p = await getShardPlan<BlobShardPlan>(env, task.run, `blobs-${job.range.lo}`)
  const held = new Set(job.held)
  const blobs = p.marks.filter((b) => !held.has(b.digest))
  const swept = new Set((await batches(run, 'sweep-blobs', blobs, sweep.BATCH.sweepBlobs, (b) => sweep.sweepBlobs(env, task.run, b))).flat())
  for (const alg of BLOB_ALGORITHMS) {
    await cleanMarks(env, run, `blob-marks-${alg}`, (c) => listBlobMarksPage(env, c, alg, job.range), task.now - 2 * gcConfig(env).settleMs)
  }
  const unswept = p.marks.filter((b) => !swept.has(b.digest))
  const kept = { blobs: p.kept.blobs + unswept.length, bytes: p.kept.bytes + unswept.reduce((n, b) => n + b.size, 0) }
  return { part: reportPart({ blobs: p.marks.filter((b) => swept.has(b.digest)), kept }) }
}

/** What manifests pushed since the scan name (and the candidates they reach) stays. */
function rescue(p: RepoShardPlan, since: ManifestEntry[], fresh: Record<string, Refs>) {
  const none: Refs = { blobs: [], children: [] }
  const manifests = new Set<string>()
  const blobsOf = new Map<string, Set<string>>() // repo → blob digests named
  const candidates = new Map(p.manifests.map((m) => [`${m.repo}+${m.digest}`, m]))
  const queue: [string, Refs][] = since.map((m) => [m.repo, fresh[m.key] ?? none])
  for (const m of since) manifests.add(m.key) // re-pushed candidates
  while (queue.length) {
    const [repo, refs] = queue.pop()!
    for (const b of refs.blobs) (blobsOf.get(repo) ?? blobsOf.set(repo, new Set()).get(repo)!).add(b)
    for (const c of refs.children) {
      const m = candidates.get(`${repo}+${c}`)
      if (m && !manifests.has(m.key)) {
        manifests.add(m.key)
        queue.push([repo, p.refs[m.key] ?? none])
      }
    }
  }
  for (const m of p.manifests) if (manifests.has(m.key)) queue.push([m.repo, p.refs[m.key] ?? none])
  for (const [repo, refs] of queue) for (const b of refs.blobs) (blobsOf.get(repo) ?? blobsOf.set(repo, new Set()).get(repo)!).add(b)
  const links = new Set<string>()
  const blobs = new Set<string>()
  for (const [repo, digests] of blobsOf) for (const d of digests) {
    links.add(`${repo}+${d}`)
    blobs.add(d)
  }
  return { manifests, links, blobs }
}

/** Entries per step: list pages are read until this many (R2 lists with metadata give ~100 a page). */
const ENTRIES_PER_STEP = 1000
const MAX_PAGES_PER_STEP = 10

/** A listing, a few pages per step (each step's result stays well under Workflows' 1 MiB). */
async function* pages<T extends unknown[] | Record<string, unknown[]>>(run: Runner, name: string, list: (cursor: string | null) => Promise<Page<T>>): AsyncGenerator<T> {
  const count = (x: T) => (Array.isArray(x) ? x.length : Object.values(x as Record<string, unknown[]>).reduce((n, a) => n + a.length, 0))
  const merge = (a: T, b: T): T =>
    (Array.isArray(a)
      ? [...a, ...(b as unknown[])]
      : Object.fromEntries(Object.entries(a as Record<string, unknown[]>).map(([k, v]) => [k, [...v, ...(b as Record<string, unknown[]>)[k]!]]))) as T
  let cursor: string | null = null
  let i = 0
  do {
    const page: Page<T> = await run.do(`${name}:${i++}`, async () => {
      let out = await list(cursor)
      for (let n = 1; out.cursor && n < MAX_PAGES_PER_STEP && count(out.items) < ENTRIES_PER_STEP; n++) {
        const more = await list(out.cursor)
        out = { items: merge(out.items, more.items), cursor: more.cursor }
      }
      return out
    })
    yield page.items
    cursor = page.cursor
  } while (cursor)
}

/** `items` in steps of `size` (sweep.BATCH: as many as a step's storage calls allow). */
async function batches<T, R>(run: Runner, name: string, items: T[], size: number, fn: (batch: T[]) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += size) out.push(await run.do(`${name}:${i / size}`, () => fn(items.slice(i, i + size))))
  return out
}

/** What each manifest names, sweep.BATCH.readRefs manifests (R2 gets) per step. */
async function readRefs(env: Env, run: Runner, name: string, manifests: ManifestEntry[]): Promise<Record<string, Refs>> {
  const out: Record<string, Refs> = {}
  for (const part of await batches(run, name, manifests, sweep.BATCH.readRefs, (b) => sweep.readRefs(env, b.map((m) => m.key)))) Object.assign(out, part)
  return out
}

/** Marks of earlier runs in this shard's range. */
async function cleanMarks(env: Env, run: Runner, name: string, list: (c: string | null) => Promise<Page<{ key: string; uploaded: number }[]>>, before: number): Promise<void> {
  let i = 0
  for await (const page of pages(run, name, list)) {
    const old = page.filter((m) => m.uploaded < before).map((m) => m.key)
    for (let j = 0; j < old.length; j += sweep.BATCH.dropMarks) {
      const part = old.slice(j, j + sweep.BATCH.dropMarks)
      await run.do(`${name}-clean:${i++}`, () => sweep.dropMarks(env, part))
    }
  }
}

export type { KeyRange }
