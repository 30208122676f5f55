/**
 * /admin/gc: garbage collection runs (docs/garbage-collection.md), for admins only
 * (auth/admin.ts). Replies are JSON.
 *   POST /admin/gc[?dry-run=true&untagged=true&repo=<pattern>]  start a run → 202 {id}
 *   GET  /admin/gc/<id>   {id, status, report?, error?}: the Workflow's status; its report when done
 *   GET  /admin/gc        {reports: [...]}: the 20 newest stored reports (real runs)
 */
import type { IRequest } from 'itty-router'
import { authorizeAdmin } from '../auth/admin'
import { settings, type Env } from '../env'
import { RegistryError } from '../errors'
import { gcConfig } from '../gc/config'
import type { RunParams } from '../gc/params'
import { retentionRules } from '../gc/retention'
import { gcMaxKvWrites } from '../settings/gc-scale'
import { startRun } from '../gc/workflow'
import { getReport, listReports } from '../storage/gc-reports'

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body, null, 2), { status, headers: { 'Content-Type': 'application/json' } })
const RUN_ID = /^gc-[0-9TZ]{16}-[0-9a-f]{8}$/
const REPO_PATTERN = /^[a-z0-9._\/*-]{1,255}$/

/** 1 Workflow create. */
export async function start(req: IRequest, env: Env): Promise<Response> {
  await authorizeAdmin(req, env)
  const q = new URL(req.url).searchParams
  const repo = q.get('repo')
  if (repo !== null && !REPO_PATTERN.test(repo)) throw new RegistryError('NAME_INVALID', 'repo: a repository pattern (a-z 0-9 . _ - / *)')
  const params: RunParams = { dryRun: q.get('dry-run') === 'true', untagged: q.get('untagged') === 'true', repo }
  if (!params.dryRun && settings(env).readOnly) throw new RegistryError('UNSUPPORTED', null, {}, { message: 'the registry is read-only (READ_ONLY = "true"): only dry runs' })
  gcConfig(env) // a bad setting fails here, before a run starts
  retentionRules(env)
  gcMaxKvWrites(env)
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
