/**
 * One collection run as a sequence of bounded, idempotent steps (docs/garbage-collection.md).
 * A Runner gives durability: in production a Cloudflare Workflow (workflow.ts: each step's
 * result is stored and a restarted run replays them), in tests a map standing in for it.
 *
 *   scan     list KV repos/ (tags, links), R2 repos/ (manifests, referrers), blobs/, data/,
 *            one page per step; read manifests 50 per step                      → plan (CPU)
 *   dry run  the plan's report; nothing written
 *   real     retention tags → mark links and blobs → sleep GC_SETTLE_SECONDS → re-check
 *            (manifests pushed since the scan rescue what they name) → sweep manifests,
 *            links, blobs, uploads → clean old marks → report in R2
 */
import type { Env } from '../env'
import { listBlobIndexPage, listKvPage, listMarksPage, listRepoObjectsPage, listUploadsPage, type ManifestEntry, type Page } from '../storage/gc-scan'
import { putReport, type GcReport } from '../storage/gc-reports'
import { gcConfig } from './config'
import { immutableRule } from './immutable'
import type { RunParams } from './params'
import { plan, report, type Plan, type Refs, type Scan } from './plan'
import { retentionRules, ruleFor, usesPulls } from './retention'
import { lastPulls } from '../storage/pull-stats'
import { globMatch } from '../auth/rules'
import { notificationSettings } from '../settings'
import * as sweep from './sweep'

export interface Runner {
  /** Runs `fn` once; a resumed run gets the stored result instead. */
  do<T>(name: string, fn: () => Promise<T>): Promise<T>
  sleep(name: string, ms: number): Promise<void>
}

const BATCH = 50

export async function collect(env: Env, id: string, params: RunParams, run: Runner): Promise<GcReport> {
  const config = gcConfig(env)
  const rules = retentionRules(env)
  notificationSettings(env) // the run reports its deletes: a bad setting stops it before it marks anything
  const { now, started } = await run.do('start', async () => ({ now: Date.now(), started: new Date().toISOString() }))

  const scan: Scan = { now, tags: [], links: [], manifests: [], refs: {}, referrers: [], blobs: [], uploads: [] }
  for await (const page of pages(run, 'kv', (c) => listKvPage(env, c))) {
    scan.tags.push(...page.tags)
    scan.links.push(...page.links)
  }
  // Retention by pulls: the pull statistics of each repository (in scope) whose rule keeps by them.
  const byPulls = [...new Set(scan.tags.map((t) => t.repo))].filter((r) => {
    const rule = ruleFor(rules, r)
    return rule !== null && usesPulls(rule) && (params.repo === null || globMatch(params.repo, r))
  })
  scan.pulls = {}
  for (const part of await batches(run, 'pulls', byPulls, (b) => lastPulls(env, b))) Object.assign(scan.pulls, part)
  for await (const page of pages(run, 'repos', (c) => listRepoObjectsPage(env, c))) {
    scan.manifests.push(...page.manifests)
    scan.referrers.push(...page.referrers)
  }
  Object.assign(scan.refs, await readRefs(env, run, 'refs', scan.manifests))
  for await (const page of pages(run, 'blobs', (c) => listBlobIndexPage(env, c))) scan.blobs.push(...page)
  if (params.repo === null) for await (const page of pages(run, 'uploads', (c) => listUploadsPage(env, c))) scan.uploads.push(...page)

  const p = plan(scan, { params, graceMs: config.graceMs, rules, isImmutable: (r, t) => immutableRule(env, r, t) !== null })
  if (params.dryRun) return report(id, started, params, p, await run.do('finish', async () => new Date().toISOString()))

  await batches(run, 'sweep-tags', p.tags, (b) => sweep.dropTags(env, b))
  await batches(run, 'stamp', p.unstamped, (b) => sweep.stampLinks(env, b))
  const linkMarks = (await batches(run, 'mark-links', p.links, (b) => sweep.markLinks(env, id, b))).flat()
  const blobMarks = (await batches(run, 'mark-blobs', p.blobs, (b) => sweep.markBlobs(env, id, b))).flat()
  await run.sleep('settle', config.settleMs)

  // Second look: a manifest pushed (or re-pushed) since the scan rescues what it names.
  const since: ManifestEntry[] = []
  for await (const page of pages(run, 'recheck', (c) => listRepoObjectsPage(env, c))) {
    since.push(...page.manifests.filter((m) => m.uploaded > now))
  }
  const fresh = await readRefs(env, run, 'recheck-refs', since)
  const rescued = rescue(p, scan, since, fresh)
  // And links as they are now: a candidate re-linked since the scan (its time changed) stays, and
  // so does any blob with a link that is not being swept (a push linked it before the mark).
  const linkedNow = new Map<string, number | undefined>()
  for await (const page of pages(run, 'recheck-kv', (c) => listKvPage(env, c))) {
    for (const l of page.links) linkedNow.set(`${l.repo}+${l.digest}`, l.t)
  }
  const scanT = new Map(scan.links.map((l) => [`${l.repo}+${l.digest}`, l.t]))
  for (const l of p.links) {
    const k = `${l.repo}+${l.digest}`
    if (linkedNow.has(k) && linkedNow.get(k) !== scanT.get(k)) rescued.links.add(k)
  }
  const candidateLinks = new Set(p.links.map((l) => `${l.repo}+${l.digest}`))
  for (const k of linkedNow.keys()) if (!candidateLinks.has(k) || rescued.links.has(k)) rescued.blobs.add(k.slice(k.indexOf('+') + 1))
  const links = linkMarks.filter((l) => !rescued.links.has(`${l.repo}+${l.digest}`))
  await batches(run, 'unmark-links', linkMarks.filter((l) => rescued.links.has(`${l.repo}+${l.digest}`)), (b) => sweep.unmarkLinks(env, b))

  const manifests = p.manifests.filter((m) => !rescued.manifests.has(m.key))
  const saved = new Set(p.manifests.filter((m) => rescued.manifests.has(m.key)).map((m) => `${m.repo}+${m.digest}`))
  const referrers = p.referrers.filter((r) => !saved.has(`${r.repo}+${r.digest}`))
  await batches(run, 'sweep-referrers', referrers, (b) => sweep.dropObjects(env, b.map((r) => r.key)))
  await batches(run, 'sweep-manifests', manifests, (b) => sweep.dropManifests(env, b))
  const keptLinks = new Set<string>((await batches(run, 'sweep-links', links, (b) => sweep.sweepLinks(env, id, b))).flat())
  const swept = new Set(links.map((l) => `${l.repo}+${l.digest}`).filter((k) => !keptLinks.has(k)))
  const sweptLinks = p.links.filter((l) => swept.has(`${l.repo}+${l.digest}`))
  // A blob goes only if every link it had was swept (a kept or rescued link keeps it).
  const heldBy = new Set([...keptLinks, ...rescued.links].map((k) => k.slice(k.indexOf('+') + 1)))
  const blobs = blobMarks.filter((b) => !heldBy.has(b.digest) && !rescued.blobs.has(b.digest))
  const sweptBlobs = new Set((await batches(run, 'sweep-blobs', blobs, (b) => sweep.sweepBlobs(env, id, b))).flat())
  await batches(run, 'sweep-uploads', p.uploads, (b) => sweep.dropUploads(env, b))
  await cleanMarks(env, run, now - 2 * config.settleMs)

  const done: Plan = {
    ...p,
    manifests,
    referrers,
    links: sweptLinks,
    blobs: p.blobs.filter((b) => sweptBlobs.has(b.digest)),
  }
  const unswept = p.blobs.filter((b) => !sweptBlobs.has(b.digest))
  done.kept = { blobs: p.kept.blobs + unswept.length, bytes: p.kept.bytes + unswept.reduce((n, b) => n + b.size, 0) }
  const finished = await run.do('finish', async () => new Date().toISOString())
  const out = report(id, started, params, done, finished)
  await run.do('report', () => putReport(env, out))
  return out
}

/** What manifests pushed since the scan name (and the candidates they reach) stays. */
function rescue(p: Plan, scan: Scan, since: ManifestEntry[], fresh: Record<string, Refs>) {
  const manifests = new Set<string>()
  const blobsOf = new Map<string, Set<string>>() // repo → blob digests named
  const candidates = new Map(p.manifests.map((m) => [`${m.repo}+${m.digest}`, m]))
  const queue: [string, Refs][] = since.map((m) => [m.repo, fresh[m.key] ?? { blobs: [], children: [] }])
  for (const m of since) manifests.add(m.key) // re-pushed candidates
  while (queue.length) {
    const [repo, refs] = queue.pop()!
    for (const b of refs.blobs) (blobsOf.get(repo) ?? blobsOf.set(repo, new Set()).get(repo)!).add(b)
    for (const c of refs.children) {
      const m = candidates.get(`${repo}+${c}`)
      if (m && !manifests.has(m.key)) {
        manifests.add(m.key)
        queue.push([repo, scan.refs[m.key] ?? { blobs: [], children: [] }])
      }
    }
  }
  for (const m of p.manifests) if (manifests.has(m.key)) queue.push([m.repo, scan.refs[m.key] ?? { blobs: [], children: [] }])
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
const MAX_PAGES_PER_STEP = 20

type Listed = unknown[] | Record<string, unknown[]>
const count = (x: Listed) => (Array.isArray(x) ? x.length : Object.values(x).reduce((n, a) => n + a.length, 0))
const merge = <T extends Listed>(a: T, b: T): T =>
  (Array.isArray(a)
    ? [...a, ...(b as unknown[])]
    : Object.fromEntries(Object.entries(a as Record<string, unknown[]>).map(([k, v]) => [k, [...v, ...(b as Record<string, unknown[]>)[k]!]]))) as T

/** A listing, a few pages per step (each step's result stays well under Workflows' 1 MiB). */
async function* pages<T extends Listed>(run: Runner, name: string, list: (cursor: string | null) => Promise<Page<T>>): AsyncGenerator<T> {
  let cursor: string | null = null
  let i = 0
  do {
    const page: Page<T> = await run.do(`${name}:${i++}`, async () => {
      let out = await list(cursor)
      for (let n = 1; out.cursor && n < MAX_PAGES_PER_STEP && count(out.items) < ENTRIES_PER_STEP; n++) {
        const next = await list(out.cursor)
        out = { items: merge(out.items, next.items), cursor: next.cursor }
      }
      return out
    })
    yield page.items
    cursor = page.cursor
  } while (cursor)
}

async function batches<T, R>(run: Runner, name: string, items: T[], fn: (batch: T[]) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += BATCH) out.push(await run.do(`${name}:${i / BATCH}`, () => fn(items.slice(i, i + BATCH))))
  return out
}

/** What each manifest names, 50 manifests (R2 gets) per step. */
async function readRefs(env: Env, run: Runner, name: string, manifests: ManifestEntry[]): Promise<Record<string, Refs>> {
  const out: Record<string, Refs> = {}
  for (const part of await batches(run, name, manifests, (b) => sweep.readRefs(env, b.map((m) => m.key)))) Object.assign(out, part)
  return out
}

async function cleanMarks(env: Env, run: Runner, before: number): Promise<void> {
  for await (const page of pages(run, 'marks', (c) => listMarksPage(env, c))) {
    const old = page.filter((m) => m.uploaded < before).map((m) => m.key)
    if (old.length) await run.do(`clean:${old[0]}`, () => sweep.dropObjects(env, old))
  }
}
