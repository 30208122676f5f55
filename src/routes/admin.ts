/**
 * /admin/: for admins only (auth/admin.ts). Replies are JSON.
 *   POST /admin/gc[?dry-run=true&untagged=true&repo=<pattern>]  start a run → 202 {id}
 *   GET  /admin/gc/<id>   {id, status, report?, error?}: the Workflow's status; its report when done
 *   GET  /admin/gc        {reports: [...]}: the 20 newest stored reports (real runs)
 *   GET  /admin/events    per NOTIFICATIONS endpoint its last deliveries and dead letters (docs/events.md)
 *   GET  /admin/stats/<name>  a repository's manifests with their tags, pulls and last pull
 */
import type { IRequest } from 'itty-router'
import { authorizeAdmin } from '../auth/admin'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import type { RunParams } from '../gc/params'
import { startRun } from '../gc/workflow'
import { notificationSettings, settings } from '../settings'
import { REPO_PATTERN } from '../settings/values'
import { getReport, listReports } from '../storage/gc-reports'
import { parseRepo } from '../names'
import { endpointReports } from '../events/status'
import { listManifestDigests } from '../storage/manifests'
import { readPullStats } from '../storage/pull-stats'
import { allTags } from '../storage/tags'

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body, null, 2), { status, headers: { 'Content-Type': 'application/json' } })
const RUN_ID = /^gc-[0-9TZ]{16}-[0-9a-f]{8}$/

/** 1 Workflow create. */
export async function start(req: IRequest, env: Env): Promise<Response> {
  await authorizeAdmin(req, env)
  const q = new URL(req.url).searchParams
  const repo = q.get('repo')
  if (repo !== null && !REPO_PATTERN.test(repo)) throw new RegistryError('NAME_INVALID', 'repo: a repository pattern (a-z 0-9 . _ - / *)')
  const params: RunParams = { dryRun: q.get('dry-run') === 'true', untagged: q.get('untagged') === 'true', repo }
  if (!params.dryRun && settings(env).READ_ONLY) throw new RegistryError('UNSUPPORTED', null, {}, { message: 'the registry is read-only (READ_ONLY = "true"): only dry runs' })
  notificationSettings(env) // the run reports its deletes: a missing queue fails here, before a run starts
  const id = await startRun(env, params)
  return json({ id, ...params }, 202)
}

/** 1 Workflow status (+1 R2 get when the instance is gone). */
export async function status(req: IRequest, env: Env): Promise<Response> {
  await authorizeAdmin(req, env)
  const id = req.params.id ?? ''
  if (!RUN_ID.test(id)) throw new RegistryError('NOT_FOUND', { id })
  try {
    const s = await env.GC_WORKFLOW!.get(id).then((i) => i.status())
    return json({ id, status: s.status, report: s.output ?? null, error: s.error ?? null })
  } catch {
    const report = await getReport(env, id)
    if (!report) throw new RegistryError('NOT_FOUND', { id })
    return json({ id, status: 'complete', report, error: null })
  }
}

/** See storage/gc-reports.ts listReports. */
export async function list(req: IRequest, env: Env): Promise<Response> {
  await authorizeAdmin(req, env)
  return json({ reports: await listReports(env, 20) })
}

/** 1 R2 get per endpoint (its delivery log). */
export async function events(req: IRequest, env: Env): Promise<Response> {
  await authorizeAdmin(req, env)
  return json({ endpoints: await endpointReports(env) })
}

/**
 * GET /admin/stats/<name>: every manifest of the repository, its tags, pulls and last pull
 * (PULL_STATS; zeros and null when off or never pulled). 1 R2 list per 1,000 manifests +
 * 1 KV list per 1,000 tags + 1 R2 get.
 */
export async function stats(req: IRequest, env: Env): Promise<Response> {
  await authorizeAdmin(req, env)
  const repo = parseRepo(req.params.name)
  // Independent reads: the manifests (R2), the tags (KV), the statistics (R2).
  const [digests, tags, pulls] = await Promise.all([
    listManifestDigests(env, repo),
    (async () => {
      const byDigest = new Map<string, string[]>()
      for await (const t of allTags(env, repo)) if (t.digest) (byDigest.get(t.digest) ?? byDigest.set(t.digest, []).get(t.digest)!).push(t.tag)
      return byDigest
    })(),
    readPullStats(env, repo),
  ])
  if (digests.length === 0) throw new RegistryError('NAME_UNKNOWN', { name: repo })
  return json({
    repository: repo,
    manifests: digests.map((digest) => {
      const p = pulls.get(digest)
      return { digest, tags: tags.get(digest) ?? [], pulls: p?.pulls ?? 0, lastPulled: p ? new Date(p.last).toISOString() : null }
    }),
  })
}
