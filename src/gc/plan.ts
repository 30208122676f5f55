/**
 * What a collection deletes, computed from what the scan listed (CPU only, no storage call):
 * the dry run reports it, the real run marks, re-checks and sweeps it.
 */
import { globMatch } from '../glob'
import type { BlobEntry, LinkEntry, ManifestEntry, ReferrerEntry, TagEntry, UploadObject } from '../storage/gc-scan'
import type { GcReport, RepoReport } from '../storage/gc-reports'
import { keys } from '../storage/keys'
import { MAX_SESSION_AGE_MS } from '../upload/state'
import type { RunParams } from './params'
import { applyRetention, ruleFor, type RetentionRule } from './retention'

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

const DAY = 86_400_000

export function plan(scan: Scan, policy: Policy): Plan {
  const { params, graceMs } = policy
  const now = scan.now
  const old = (t: number) => now - t >= graceMs
  const inScope = (repo: string) => params.repo === null || globMatch(params.repo, repo)
  const out: Plan = { tags: [], retained: [], manifests: [], referrers: [], links: [], unstamped: [], blobs: [], uploads: [], kept: { blobs: 0, bytes: 0 } }

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
  /** Digests some kept manifest names as a blob, registry-wide (a blob is never deleted under a live manifest). */
  const namedBlobs = new Set<string>()
  /** Digests with a link that stays. */
  const linked = new Set<string>()
  const candidateLinks = new Set<string>()

  for (const repo of [...repos].sort()) {
    const manifests = new Map((manifestsBy.get(repo) ?? []).map((m) => [m.digest, m]))
    const refsOf = (d: string) => scan.refs[manifests.get(d)?.key ?? ''] ?? { blobs: [], children: [] }
    const links = linksBy.get(repo) ?? []
    if (!inScope(repo)) {
      for (const m of manifests.values()) for (const b of refsOf(m.digest).blobs) namedBlobs.add(b)
      for (const l of links) linked.add(l.digest)
      continue
    }
    const tags = tagsBy.get(repo) ?? []
    const rule = ruleFor(policy.rules, repo)
    const pulls = scan.pulls?.[repo] ?? {}
    const ages = tags.map((t) => ({ ...t, lastPulled: pulls[t.digest] }))
    const { drop: drops, keptByPulls } = rule ? applyRetention(rule, ages, now, (t) => policy.isImmutable(repo, t)) : { drop: [], keptByPulls: [] }
    const dropped = new Set(drops.map((d) => d.tag))
    const pushed = new Map(tags.map((t) => [t.tag, t.pushed]))
    for (const d of drops) out.tags.push({ repo, ...d, pushed: pushed.get(d.tag) })
    for (const k of keptByPulls) out.retained.push({ repo, ...k })

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

    const used = new Set<string>()
    for (const d of reachable) for (const b of refsOf(d).blobs) used.add(b)
    for (const b of used) namedBlobs.add(b)
    for (const l of links) {
      if (used.has(l.digest)) linked.add(l.digest)
      else if (l.t === undefined) {
        out.unstamped.push({ repo, digest: l.digest })
        linked.add(l.digest)
      } else if (old(l.t)) {
        out.links.push({ repo, digest: l.digest, size: 0 })
        candidateLinks.add(l.digest)
      } else linked.add(l.digest)
    }
  }

  const live = scan.blobs.filter((b) => !b.gone)
  const size = new Map(live.map((b) => [b.digest, b.size]))
  for (const l of out.links) l.size = size.get(l.digest) ?? 0
  const pointedAt = new Set<string>()
  for (const b of live) {
    const collect = params.repo === null && old(b.uploaded) && !linked.has(b.digest) && !namedBlobs.has(b.digest)
    if (collect) out.blobs.push(b)
    else {
      out.kept.blobs++
      out.kept.bytes += b.size
      pointedAt.add(b.at)
    }
  }
  if (params.repo === null) {
    // Abandoned: not a live blob's bytes, and the session is past the upload expiry (its
    // Locations no longer verify), and the object itself past the grace period.
    const doomedAt = new Set(out.blobs.map((b) => b.at))
    // A listed parts object is a completed multipart upload: its writes' `mp` must not be
    // aborted (the bytes are a blob's, or go with it; R2 has nothing to abort).
    const completed = new Set(scan.uploads.filter((u) => u.key === keys.uploadParts(u.id)).map((u) => u.id))
    for (const u of scan.uploads) {
      if (pointedAt.has(u.key) || doomedAt.has(u.key)) continue
      if (now - u.started > MAX_SESSION_AGE_MS && old(u.uploaded)) {
        if (u.mp && completed.has(u.id)) {
          const { mp: _, ...write } = u
          out.uploads.push(write)
        } else out.uploads.push(u)
      }
    }
  }
  return out
}

/** The report of a plan (dry run), or of what a real run did. */
export function report(id: string, started: string, params: RunParams, p: Plan, finished: string): GcReport {
  const repositories: Record<string, RepoReport> = {}
  const repo = (name: string) =>
    (repositories[name] ??= { manifests: { count: 0, bytes: 0 }, links: { count: 0, bytes: 0 }, tags: [] })
  for (const t of p.tags) repo(t.repo).tags.push({ tag: t.tag, rule: t.rule })
  for (const t of p.retained ?? []) (repo(t.repo).retained ??= []).push({ tag: t.tag, rule: t.rule })
  for (const m of p.manifests) {
    repo(m.repo).manifests.count++
    repo(m.repo).manifests.bytes += m.size
  }
  for (const l of p.links) {
    repo(l.repo).links.count++
    repo(l.repo).links.bytes += l.size
  }
  const sum = (xs: { size: number }[]) => xs.reduce((n, x) => n + x.size, 0)
  const freed = { manifests: sum(p.manifests), blobs: sum(p.blobs), uploads: sum(p.uploads) }
  return {
    id,
    started,
    finished,
    dryRun: params.dryRun,
    untagged: params.untagged,
    repo: params.repo,
    repositories,
    totals: {
      manifests: p.manifests.length,
      links: p.links.length,
      blobs: p.blobs.length,
      uploads: p.uploads.length,
      bytes: freed.manifests + freed.blobs + freed.uploads,
    },
    freed,
    kept: p.kept,
  }
}
