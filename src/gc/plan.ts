/**
 * What a collection deletes, computed from what the scan listed (CPU only, no storage call):
 * the dry run reports it, the real run marks, re-checks and sweeps it.
 */
import { globMatch } from '../glob'
import type { BlobEntry, LinkEntry, ManifestEntry, ReferrerEntry, TagEntry, UploadObject } from '../storage/gc-scan'
import type { GcReport, RepoReport } from '../storage/gc-reports'
import { keys } from '../storage/keys'
import { EXPIRY_MARGIN_MS, MAX_SESSION_AGE_MS } from '../upload/state'
import type { RunParams } from './params'
import { applyRetention, ruleFor, type RetentionRule } from './retention'
import { hashKey, hex12 } from './shards'

/** What a manifest names (from its bytes). */
export interface Refs { blobs: string[]; children: string[] }

export interface Scan {
  now: number
  tags: TagEntry[]
  links: LinkEntry[]
  manifests: ManifestEntry[]
  /** Refs per manifest key. */
  refs: Record<string, Refs>
  referrers: ReferrerEntry[]
  blobs: BlobEntry[]
  uploads: UploadObject[]
  /** Last pull (ms) per repository and manifest digest: read only for repositories whose rule keeps by pulls. */
  pulls?: Record<string, Record<string, number>>
}

export interface Policy {
  params: RunParams
  graceMs: number
  /** KV writes (and deletes) the plan may make (GC_MAX_KV_WRITES left for this shard); null: no limit. */
  kvBudget?: number | null
  rules: RetentionRule[]
  isImmutable(repo: string, tag: string): boolean
}

export interface Plan {
  tags: { repo: string; tag: string; rule: string; pushed?: number }[]
  /** Tags a rule would drop but a pull clause (pulledWithinDays, keepLastPulled) keeps. */
  retained: { repo: string; tag: string; rule: string }[]
  /**
   * Indexes before the manifests they name, so a crash never leaves an index without its children;
   * `tags`: those retention drops in this run that named it.
   */
  manifests: (ManifestEntry & { tags?: string[] })[]
  referrers: ReferrerEntry[]
  links: { repo: string; digest: string; size: number }[]
  /** Links written before links carried their time: the real run stamps them (kept this time). */
  unstamped: { repo: string; digest: string }[]
  blobs: BlobEntry[]
  uploads: UploadObject[]
  kept: { blobs: number; bytes: number }
}

/** What a shard of repositories decides, and the blobs it holds (a kept link, or a kept manifest names them). */
export interface RepoPlan extends Pick<Plan, 'tags' | 'retained' | 'manifests' | 'referrers' | 'links' | 'unstamped'> {
  /** hex12 of every digest held (shards.ts). */
  held: Set<string>
  /** In-scope repositories left for a later run (GC_MAX_KV_WRITES spent). */
  deferred: number
  /** KV writes (or deletes, the larger) this plan makes: counted against GC_MAX_KV_WRITES. */
  kvWrites: number
}

const DAY = 86_400_000

/** The unsharded plan: every shard's decision over one scan (the reference the sharded run must match). */
export async function plan(scan: Scan, policy: Policy): Promise<Plan> {
  const r = planRepos(scan, policy)
  if (policy.params.repo !== null) return { ...r, blobs: [], uploads: [], kept: keptOf(scan.blobs) }
  const b = planBlobs(scan.blobs, (d) => r.held.has(hex12(d)), scan.now, policy.graceMs)
  const protect = new Set(await Promise.all(b.protect.map(hashKey)))
  const uploads = await planUploads(scan.uploads, (h) => protect.has(h), scan.now, policy.graceMs)
  return { ...r, blobs: b.blobs, uploads, kept: b.kept }
}

const keptOf = (blobs: BlobEntry[]) => {
  const live = blobs.filter((b) => !b.gone)
  return { blobs: live.length, bytes: live.reduce((n, b) => n + b.size, 0) }
}

/** Tags, manifests, referrers and links of the scanned repositories that go. CPU only. */
export function planRepos(scan: Pick<Scan, 'now' | 'tags' | 'links' | 'manifests' | 'refs' | 'referrers' | 'pulls'>, policy: Policy): RepoPlan {
  const { params, graceMs } = policy
  const now = scan.now
  const old = (t: number) => now - t >= graceMs
  const inScope = (repo: string) => params.repo === null || globMatch(params.repo, repo)
  const out: RepoPlan = { tags: [], retained: [], manifests: [], referrers: [], links: [], unstamped: [], held: new Set(), deferred: 0, kvWrites: 0 }

  const byRepo = <T extends { repo: string }>(list: T[]) => {
    const m = new Map<string, T[]>()
    for (const x of list) (m.get(x.repo) ?? m.set(x.repo, []).get(x.repo)!).push(x)
    return m
  }
  const tagsBy = byRepo(scan.tags)
  const manifestsBy = byRepo(scan.manifests)
  const referrersBy = byRepo(scan.referrers)
  const linksBy = byRepo(scan.links)
  const repos = new Set([...tagsBy.keys(), ...manifestsBy.keys(), ...linksBy.keys(), ...referrersBy.keys()])
  // A blob is never deleted under a live manifest (namedBlobs) nor while a link stays (linked):
  // both go into `held`, registry-wide.
  const hold = (digest: string) => out.held.add(hex12(digest))

  const holdAll = (manifests: Map<string, ManifestEntry>, refsOf: (d: string) => Refs, links: LinkEntry[]) => {
    for (const m of manifests.values()) for (const b of refsOf(m.digest).blobs) hold(b)
    for (const l of links) hold(l.digest)
  }
  let left = policy.kvBudget ?? null
  for (const repo of [...repos].sort()) {
    const manifests = new Map((manifestsBy.get(repo) ?? []).map((m) => [m.digest, m]))
    const refsOf = (d: string) => scan.refs[manifests.get(d)?.key ?? ''] ?? { blobs: [], children: [] }
    const links = linksBy.get(repo) ?? []
    if (!inScope(repo)) {
      holdAll(manifests, refsOf, links)
      continue
    }
    const tags = tagsBy.get(repo) ?? []
    const rule = ruleFor(policy.rules, repo)
    const pulls = scan.pulls?.[repo] ?? {}
    const ages = tags.map((t) => ({ ...t, lastPulled: pulls[t.digest] }))
    const { drop: drops, keptByPulls } = rule ? applyRetention(rule, ages, now, (t) => policy.isImmutable(repo, t)) : { drop: [], keptByPulls: [] }
    const dropped = new Set(drops.map((d) => d.tag))
    const pushed = new Map(tags.map((t) => [t.tag, t.pushed]))

    // A manifest may go when no remaining tag reaches it, it is past the grace period, and the
    // mode allows it (--untagged, or the repository's untaggedDays rule).
    const collectible = (m: ManifestEntry) =>
      old(m.uploaded) && (params.untagged || (rule?.untaggedDays !== undefined && now - m.uploaded > rule.untaggedDays * DAY))
    const referrersOf = new Map<string, string[]>()
    for (const r of referrersBy.get(repo) ?? []) (referrersOf.get(r.subject) ?? referrersOf.set(r.subject, []).get(r.subject)!).push(r.digest)
    const reachable = new Set<string>()
    const queue: string[] = []
    const reach = (d: string) => {
      if (manifests.has(d) && !reachable.has(d)) {
        reachable.add(d)
        queue.push(d)
      }
    }
    for (const t of tags) if (!dropped.has(t.tag)) reach(t.digest)
    for (const m of manifests.values()) if (!collectible(m)) reach(m.digest)
    while (queue.length) {
      const d = queue.pop()!
      for (const c of refsOf(d).children) reach(c)
      for (const r of referrersOf.get(d) ?? []) reach(r)
    }
    const used = new Set<string>()
    for (const d of reachable) for (const b of refsOf(d).blobs) used.add(b)
    const unstamped = links.filter((l) => !used.has(l.digest) && l.t === undefined)
    const candidates = links.filter((l) => !used.has(l.digest) && l.t !== undefined && old(l.t))

    // GC_MAX_KV_WRITES: a repository whose KV writes (stamps, marks) or deletes (tags, links) no
    // longer fit waits, whole, for the next run, and so does every one after it.
    const cost = Math.max(unstamped.length, drops.length) + candidates.length
    if (left !== null && cost > 0) {
      if (cost > left) {
        left = 0
        out.deferred++
        holdAll(manifests, refsOf, links)
        continue
      }
      left -= cost
      out.kvWrites += cost
    }

    for (const d of drops) out.tags.push({ repo, ...d, pushed: pushed.get(d.tag) })
    for (const k of keptByPulls) out.retained.push({ repo, ...k })
    const doomed = [...manifests.values()].filter((m) => !reachable.has(m.digest))
    // Indexes first: what names children goes before the children.
    doomed.sort((a, b) => refsOf(b.digest).children.length - refsOf(a.digest).children.length || (a.digest < b.digest ? -1 : 1))
    // Each with the tags retention dropped from it in this run: its delete event names them.
    const droppedFrom = new Map<string, string[]>()
    for (const t of tags) if (dropped.has(t.tag)) (droppedFrom.get(t.digest) ?? droppedFrom.set(t.digest, []).get(t.digest)!).push(t.tag)
    out.manifests.push(...doomed.map((m) => (droppedFrom.has(m.digest) ? { ...m, tags: droppedFrom.get(m.digest)! } : m)))
    const gone = new Set(doomed.map((m) => m.digest))
    for (const r of referrersBy.get(repo) ?? []) {
      // A doomed referrer's entry; or (untagged mode) an entry naming a manifest that does not exist.
      if (gone.has(r.digest) || (params.untagged && !manifests.has(r.digest))) out.referrers.push(r)
    }
    for (const b of used) hold(b)
    const doomedLinks = new Set(candidates)
    for (const l of links) if (!doomedLinks.has(l)) hold(l.digest)
    for (const l of unstamped) out.unstamped.push({ repo, digest: l.digest })
    for (const l of candidates) out.links.push({ repo, digest: l.digest, size: l.size ?? 0 })
  }
  return out
}

/**
 * Blob index entries that go: past the grace period, held by no repository (`isHeld`, every
 * shard's `held`). `protect`: keys of upload objects blob entries point at (kept ones, and the
 * doomed ones, whose bytes go with their entry): the upload sweep never deletes those. CPU only.
 * A doomed link's size is the size of its blob (`sizes`).
 */
export function planBlobs(blobs: BlobEntry[], isHeld: (digest: string) => boolean, now: number, graceMs: number) {
  const out = { blobs: [] as BlobEntry[], kept: { blobs: 0, bytes: 0 }, protect: [] as string[] }
  for (const b of blobs) {
    if (b.gone) continue
    if (now - b.uploaded >= graceMs && !isHeld(b.digest)) out.blobs.push(b)
    else {
      out.kept.blobs++
      out.kept.bytes += b.size
    }
    if (b.at !== b.key) out.protect.push(b.at)
  }
  return out
}

/**
 * Upload objects that go: abandoned (no blob entry points at them: `isProtected` by hashKey),
 * the session past the upload expiry (its Locations no longer verify) by EXPIRY_MARGIN_MS (a close
 * that began in time names nothing after the expiry), the object itself past the grace period. CPU only.
 */
export async function planUploads(uploads: UploadObject[], isProtected: (keyHash: string) => boolean, now: number, graceMs: number): Promise<UploadObject[]> {
  // A listed parts object is a completed multipart upload: its writes' `mp` must not be
  // aborted (the bytes are a blob's, or go with it; R2 has nothing to abort).
  const completed = new Set(uploads.filter((u) => u.key === keys.uploadParts(u.id)).map((u) => u.id))
  const out: UploadObject[] = []
  for (const u of uploads) {
    if (!(now - u.started > MAX_SESSION_AGE_MS + EXPIRY_MARGIN_MS && now - u.uploaded >= graceMs)) continue
    if (isProtected(await hashKey(u.key))) continue
    if (u.mp && completed.has(u.id)) {
      const { mp: _, ...write } = u
      out.push(write)
    } else out.push(u)
  }
  return out
}

/** What a report counts, from one shard's plan or work (parts add up: mergeParts). */
export type ReportPart = Pick<GcReport, 'repositories' | 'totals' | 'freed' | 'kept' | 'repositoriesOmitted'> & { deferred: number }

export const emptyPart = (): ReportPart => ({
  repositories: {},
  totals: { manifests: 0, links: 0, blobs: 0, uploads: 0, bytes: 0 },
  freed: { manifests: 0, blobs: 0, uploads: 0 },
  kept: { blobs: 0, bytes: 0 },
  deferred: 0,
})

/** The report part of a plan (what a dry run would delete), or of what a shard did. */
export function reportPart(p: Partial<Plan> & { deferred?: number }): ReportPart {
  const out = emptyPart()
  const repo = (name: string) =>
    (out.repositories[name] ??= { manifests: { count: 0, bytes: 0 }, links: { count: 0, bytes: 0 }, tags: [] })
  for (const t of p.tags ?? []) repo(t.repo).tags.push({ tag: t.tag, rule: t.rule })
  for (const t of p.retained ?? []) (repo(t.repo).retained ??= []).push({ tag: t.tag, rule: t.rule })
  for (const m of p.manifests ?? []) {
    repo(m.repo).manifests.count++
    repo(m.repo).manifests.bytes += m.size
  }
  for (const l of p.links ?? []) {
    repo(l.repo).links.count++
    repo(l.repo).links.bytes += l.size
  }
  const sum = (xs: { size: number }[] = []) => xs.reduce((n, x) => n + x.size, 0)
  out.freed = { manifests: sum(p.manifests), blobs: sum(p.blobs), uploads: sum(p.uploads) }
  out.totals = {
    manifests: p.manifests?.length ?? 0,
    links: p.links?.length ?? 0,
    blobs: p.blobs?.length ?? 0,
    uploads: p.uploads?.length ?? 0,
    bytes: out.freed.manifests + out.freed.blobs + out.freed.uploads,
  }
  if (p.kept) out.kept = { ...p.kept }
  out.deferred = p.deferred ?? 0
  return out
}

/** The sum of report parts (shards cover disjoint repositories, digests and uploads). */
export function mergeParts(parts: ReportPart[]): ReportPart {
  const out = emptyPart()
  for (const p of parts) {
    for (const [name, r] of Object.entries(p.repositories)) {
      const into = (out.repositories[name] ??= { manifests: { count: 0, bytes: 0 }, links: { count: 0, bytes: 0 }, tags: [] })
      into.manifests.count += r.manifests.count
      into.manifests.bytes += r.manifests.bytes
      into.links.count += r.links.count
      into.links.bytes += r.links.bytes
      into.tags.push(...r.tags)
      if (r.retained) (into.retained ??= []).push(...r.retained)
    }
    for (const k of Object.keys(out.totals) as (keyof ReportPart['totals'])[]) out.totals[k] += p.totals[k]
    for (const k of Object.keys(out.freed) as (keyof ReportPart['freed'])[]) out.freed[k] += p.freed[k]
    out.kept.blobs += p.kept.blobs
    out.kept.bytes += p.kept.bytes
    out.deferred += p.deferred
    if (p.repositoriesOmitted) out.repositoriesOmitted = (out.repositoriesOmitted ?? 0) + p.repositoriesOmitted
  }
  return out
}

/**
 * A part whose `repositories` fit in about `maxBytes` of JSON (a shard's result travels as a
 * Workflow event, a run's report as its output: 1 MiB each): the repositories freeing the most
 * bytes stay, the rest are counted in `repositoriesOmitted`. Totals are untouched. CPU only.
 */
export function abridge<T extends ReportPart | GcReport>(part: T, maxBytes: number): T {
  const entries = Object.entries(part.repositories)
  const sizeOf = ([name, r]: [string, RepoReport]) => name.length + JSON.stringify(r).length + 4
  if (entries.reduce((n, e) => n + sizeOf(e), 0) <= maxBytes) return part
  const freed = ([, r]: [string, RepoReport]) => r.manifests.bytes + r.links.bytes + r.tags.length
  entries.sort((a, b) => freed(b) - freed(a) || (a[0] < b[0] ? -1 : 1))
  const repositories: Record<string, RepoReport> = {}
  let used = 0
  for (const e of entries) {
    used += sizeOf(e)
    if (used > maxBytes) break
    repositories[e[0]] = e[1]
  }
  const omitted = entries.length - Object.keys(repositories).length
  return { ...part, repositories, repositoriesOmitted: (part.repositoriesOmitted ?? 0) + omitted }
}

/** The report of a run: its parts summed. */
export function report(id: string, started: string, params: RunParams, part: ReportPart, finished: string): GcReport {
  return { id, started, finished, dryRun: params.dryRun, untagged: params.untagged, repo: params.repo, ...part }
}
