/**
 * The web UI at `/`: server-rendered pages (src/ui/), same origin and same auth as the API.
 * Browsing writes nothing; each page's reads are in its doc line (docs/ui.md). A repository
 * the viewer may not pull answers exactly as one that does not exist. Writes (delete, sign in
 * and out) are POSTs that must come from this origin's own pages: Origin and Sec-Fetch-Site
 * say same origin, and with a session the form's CSRF token matches the session (auth/session.ts).
 */
import type { IRequest } from 'itty-router'
import { signedOutCookie, signIn, viewerOf, type Viewer } from '../auth/session'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { contextOf, type Ctx } from '../http/context'
import { parseDigest, parseReference, parseRepo, type Repo } from '../names'
import { readBlobLink } from '../storage/links'
import { readBlob } from '../storage/blobs'
import { listReports } from '../storage/gc-reports'
import { getManifest, listRepositories, repoExists } from '../storage/manifests'
import { listReferrers } from '../storage/referrers'
import { allTags, readTag } from '../storage/tags'
import { repoSummary } from '../storage/repo-summary'
import { pullFilter } from '../auth/access'
import { APP_CSS, APP_JS } from '../ui/assets'
import { htmlResponse } from '../ui/layout'
import { confirmDeletePage, messagePage, signInPage } from '../ui/pages/forms'
import { configDescriptor, isObj, manifestPage } from '../ui/pages/manifest'
import { referrersPage } from '../ui/pages/referrers'
import { repositoriesPage, type RepositoryRow } from '../ui/pages/repositories'
import { repositoryPage, TAG_SORTS, type TagRow, type TagSort } from '../ui/pages/repository'
import { storagePage, storagePoints } from '../ui/pages/storage'
import { repoUrl } from '../ui/urls'
import { deleteReference } from './manifests'
import { cachingUpstream } from '../proxy/config'

type Page = (req: IRequest, c: Ctx, viewer: Viewer) => Promise<Response>

/** Wraps a page: the viewer from the session cookie, errors as HTML pages. */
export const uiPage = (h: Page) => async (req: IRequest, env: Env, exec: ExecutionContext): Promise<Response> => {
  const viewer = await viewerOf(req, env)
  try {
    return await h(req, contextOf(req, env, exec), viewer)
  } catch (err) {
    return errorPage(err, viewer)
  }
}

const REPOS_PER_PAGE = 50
const TAGS_PER_PAGE = 50
/** Larger configs are not read (real ones are a few KiB). */
const CONFIG_MAX_BYTES = 1024 * 1024
const REPORTS_SHOWN = 100

/**
 * GET / — Repositories, 50 a page. Names: 1 R2 list per 1,000 names scanned, only under the
 * prefixes the viewer's rules name when they name any (pullPrefixes); then at most 2 KV lists
 * per repository shown (repo-summary.ts; 1 for a repository of up to 1,000 links and tags):
 * a page of 50 costs at most 101 calls at any registry size.
 */
export const repositories: Page = async (req, c, viewer) => {
  const url = new URL(req.url)
  const q = (url.searchParams.get('q') ?? '').trim().toLowerCase().slice(0, 255)
  const last = url.searchParams.get('last')
  const pull = viewer.access ? pullFilter(viewer.access) : null
  const matches = (name: string) => !q || name.includes(q)
  const filter = pull ? { keep: (name: string) => matches(name) && pull.keep(name), prefixes: pull.prefixes } : q ? { keep: matches, prefixes: null } : null
  const { names, more } = await listRepositories(c.env, REPOS_PER_PAGE, last, filter)       // R2 list(s)
  // Independent: at most 2 KV lists per repository shown.
  const rows = await Promise.all(names.map(async (name): Promise<RepositoryRow> => ({ name, ...(await repoSummary(c.env, name as Repo)) })))
  return htmlResponse(repositoriesPage(viewer, { rows, q, next: more ? names[names.length - 1]! : null, paged: !!last }), viewer)
}

/** GET /r/<name> — its tags. 1 KV list per 1,000 tags (+1 R2 list when it has none). */
export const repository: Page = async (req, c, viewer) => {
  const repo = visibleRepo(req, viewer)
  const url = new URL(req.url)
  const sortParam = url.searchParams.get('sort') as TagSort | null
  const sort: TagSort = sortParam && TAG_SORTS.includes(sortParam) ? sortParam : 'pushed'
  const desc = (url.searchParams.get('order') ?? (sort === 'tag' ? 'asc' : 'desc')) === 'desc'
  const rows: TagRow[] = []
  for await (const t of allTags(c.env, repo)) {                                              // KV list(s)
    if (!t.digest || !t.record) continue
    const r = t.record
    rows.push({ tag: t.tag, digest: t.digest, mediaType: r.mediaType, platforms: r.platforms ?? null, size: r.size ?? null, pushed: r.pushed ?? null })
  }
  if (rows.length === 0 && !(await repoExists(c.env, repo))) return notFound(viewer)        // R2 list
  const key = (r: TagRow) => (sort === 'tag' ? r.tag : sort === 'size' ? r.size ?? -1 : r.pushed ?? 0)
  rows.sort((a, b) => {
    const [x, y] = [key(a), key(b)]
    const order = x < y ? -1 : x > y ? 1 : a.tag < b.tag ? -1 : 1
    return desc ? -order : order
  })
  const pages = Math.max(1, Math.ceil(rows.length / TAGS_PER_PAGE))
  const pageNumber = Math.min(pages, Math.max(1, Number.parseInt(url.searchParams.get('page') ?? '1', 10) || 1))
  const shown = rows.slice((pageNumber - 1) * TAGS_PER_PAGE, pageNumber * TAGS_PER_PAGE)
  return htmlResponse(repositoryPage(viewer, {
    repo, host: url.host, rows: shown, total: rows.length, sort, desc, pageNumber, pages, canDelete: offersDelete(c, viewer, repo),
  }), viewer)
}

/**
 * GET /r/<name>/-/manifest/<reference> — by tag 1 KV get, by digest 1 R2 get; an image's config:
 * + its blob link (cache, else 1 KV get) + 1 R2 get.
 */
export const manifest: Page = async (req, c, viewer) => {
  const repo = visibleRepo(req, viewer)
  const ref = parseReference(req.params.reference ?? '')
  const found = ref.kind === 'tag'
    ? await readTag(c.env, repo, ref.tag)                                                    // KV get
    : await getManifest(c.env, repo, ref.digest).then((m) => m && { ...m, digest: ref.digest }) // R2 get
  if (!found) return notFound(viewer, 'No such tag or manifest in this repository.')
  const text = new TextDecoder().decode(found.bytes)
  let config: Record<string, unknown> | null = null
  try {
    const wanted = configDescriptor(JSON.parse(text) as Record<string, unknown>)
    const digest = wanted && wanted.size <= CONFIG_MAX_BYTES ? parseDigest(wanted.digest) : null
    const link = digest && (await readBlobLink(c.env, c, repo, digest))                      // cache, else KV get
    const object = link && (await readBlob(c.env, link))                                     // R2 get
    const parsed: unknown = object && JSON.parse(await object.text())
    if (isObj(parsed)) config = parsed
  } catch {
    // A config that is not JSON (or a bad digest) is simply not summarised.
  }
  return htmlResponse(manifestPage(viewer, {
    repo, host: new URL(req.url).host, tag: ref.kind === 'tag' ? ref.tag : null, digest: found.digest,
    mediaType: found.mediaType, text, config, canDelete: offersDelete(c, viewer, repo),
  }), viewer)
}

/** GET /r/<name>/-/referrers/<digest> — 1 R2 list (first 1,000 referrers). */
export const referrers: Page = async (req, c, viewer) => {
  const repo = visibleRepo(req, viewer)
  const subject = parseDigest(req.params.digest)
  const page = await listReferrers(c.env, repo, subject, undefined)                          // R2 list
  return htmlResponse(referrersPage(viewer, repo, subject, page.descriptors), viewer)
}

/** GET /storage — the collector's reports: 1 R2 list per 1,000 reports + 1 R2 get per report shown. */
export const storage: Page = async (_req, c, viewer) => {
  if (!viewer.global) return notFound(viewer)
  const reports = await listReports(c.env, REPORTS_SHOWN)                                    // R2 list + gets
  return htmlResponse(storagePage(viewer, storagePoints(reports)), viewer)
}

/** GET /r/<name>/-/delete?reference= — the confirmation. No storage reads. */
export const confirmDelete: Page = async (req, c, viewer) => {
  const repo = visibleRepo(req, viewer)
  const reference = new URL(req.url).searchParams.get('reference') ?? ''
  const ref = parseReference(reference)
  if (!mayDelete(c, viewer, repo)) return htmlResponse(messagePage(viewer, 'Not allowed', 'You may not delete in this repository.'), viewer, 403)
  return htmlResponse(confirmDeletePage(viewer, repo, reference, ref.kind === 'tag'), viewer)
}

/** POST /r/<name>/-/delete — as DELETE /v2/<name>/manifests/<reference> (its cost), then back to the repository. */
export const remove: Page = async (req, c, viewer) => {
  const repo = visibleRepo(req, viewer)
  const form = await checkedForm(req, viewer)
  const ref = parseReference(form.get('reference') ?? '')
  if (!mayDelete(c, viewer, repo)) return htmlResponse(messagePage(viewer, 'Not allowed', 'You may not delete in this repository.'), viewer, 403)
  if (!(await deleteReference(c, repo, ref))) return notFound(viewer, 'No such tag or manifest in this repository.')
  return redirect(repoUrl(repo), viewer.setCookie)
}

/** GET /sign-in */
export const signInForm: Page = async (req, _c, viewer) => {
  if (!viewer.authEnabled) return notFound(viewer)
  return htmlResponse(signInPage(viewer, safeNext(new URL(req.url).searchParams.get('next')), null), viewer)
}

/** POST /sign-in — checks credentials as POST /token does (CPU only for users; a robot: 1 KV get). */
export const signInSubmit: Page = async (req, c, viewer) => {
  if (!viewer.authEnabled) return notFound(viewer)
  const form = await checkedForm(req, null)
  const next = safeNext(form.get('next'))
  const cookie = await signIn(req, c.env, form.get('username') ?? '', form.get('password') ?? '')
  if (!cookie) return htmlResponse(signInPage(viewer, next, 'Wrong user name or password.'), viewer, 401)
  return redirect(next, cookie)
}

/** POST /sign-out — no storage. */
export const signOut: Page = async (req, _c, viewer) => {
  await checkedForm(req, viewer)
  return redirect('/', signedOutCookie())
}

/** GET /ui/app.css, /ui/app.js — versioned URLs, cached for a year. */
export function asset(req: IRequest): Response {
  const css = req.params.file === 'app.css'
  const js = req.params.file === 'app.js'
  if (!css && !js) throw new RegistryError('NOT_FOUND')
  return new Response(css ? APP_CSS : APP_JS, {
    headers: {
      'Content-Type': css ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8',
      'Cache-Control': 'public, max-age=31536000, immutable',
      'X-Content-Type-Options': 'nosniff',
    },
  })
}

// ---------------------------------------------------------------- helpers

/** Whether the viewer may pull a repository (everything, with auth off). */
const pullable = (viewer: Viewer) => (repo: string): boolean => !viewer.access || viewer.access.can(repo, 'pull')

const mayDelete = (c: Ctx, viewer: Viewer, repo: Repo): boolean =>
  c.settings.deleteEnabled && (!viewer.access || viewer.access.can(repo, 'delete'))

/** Whether a page offers delete: a pull-through cache's repositories take none (deleteReference refuses it). */
const offersDelete = (c: Ctx, viewer: Viewer, repo: Repo): boolean => mayDelete(c, viewer, repo) && !cachingUpstream(c.env, repo)

/** The route's repository, if the viewer may pull it; otherwise the same "not found" as an absent one. */
function visibleRepo(req: IRequest, viewer: Viewer): Repo {
  const repo = parseRepo(req.params.name)
  if (!pullable(viewer)(repo)) throw new HiddenError()
  return repo
}

class HiddenError extends Error {}

const FORM_MAX_BYTES = 16 * 1024

/**
 * A url-encoded form posted by one of our own pages: Origin (and, from browsers that send it,
 * Sec-Fetch-Site) is this host, and with a session its `csrf` field matches. Otherwise 403.
 */
async function checkedForm(req: IRequest, viewer: Viewer | null): Promise<URLSearchParams> {
  const site = req.headers.get('sec-fetch-site')
  const origin = req.headers.get('origin')
  let sameOrigin = false
  try {
    sameOrigin = origin !== null && new URL(origin).host === new URL(req.url).host
  } catch {
    sameOrigin = false
  }
  if (!sameOrigin || (site !== null && site !== 'same-origin')) throw new CsrfError()
  const length = Number(req.headers.get('content-length') ?? NaN)
  const type = req.headers.get('content-type') ?? ''
  if (!(length <= FORM_MAX_BYTES) || !/^application\/x-www-form-urlencoded\b/i.test(type)) throw new CsrfError()
  const form = new URLSearchParams(await req.text())
  if (viewer?.csrf && form.get('csrf') !== viewer.csrf) throw new CsrfError()
  return form
}

class CsrfError extends Error {}

/** A path on this site to return to after signing in; anything else goes home. */
function safeNext(next: string | null): string {
  return next && /^\/(?![/\\])/.test(next) && !/[\u0000-\u001f]/.test(next) ? next : '/'
}

function redirect(location: string, cookie: string | null): Response {
  const headers = new Headers({ Location: location, 'Cache-Control': 'no-store', 'Content-Type': 'text/plain; charset=utf-8' })
  if (cookie) headers.append('Set-Cookie', cookie)
  return new Response(null, { status: 303, headers })
}

function notFound(viewer: Viewer, text = 'No such repository, or you may not pull it.'): Response {
  const hint = viewer.authEnabled && !viewer.user ? ' Signing in may show more.' : ''
  return htmlResponse(messagePage(viewer, 'Not found', text + hint), viewer, 404)
}

function errorPage(err: unknown, viewer: Viewer): Response {
  if (err instanceof HiddenError) return notFound(viewer)
  if (err instanceof CsrfError) {
    return htmlResponse(messagePage(viewer, 'Refused', 'This form did not come from this registry\'s own page (or your session changed). Reload the page and try again.'), viewer, 403)
  }
  if (err instanceof RegistryError) {
    // DENIED: an IMMUTABLE_TAGS refusal of a delete (its message names the rule).
    const status = err.code.endsWith('_INVALID') ? 400 : err.code === 'UNSUPPORTED' ? 405 : err.code === 'DENIED' ? 403 : 404
    const text = status === 400 ? 'That is not a valid repository name, tag or digest.' : err.message
    const title = status === 400 ? 'Invalid address' : status === 403 ? 'Not allowed' : status === 405 ? 'Refused' : 'Not found'
    return htmlResponse(messagePage(viewer, title, text), viewer, status)
  }
  console.error(err)
  return htmlResponse(messagePage(viewer, 'Something went wrong', 'The registry could not show this page.'), viewer, 500)
}
