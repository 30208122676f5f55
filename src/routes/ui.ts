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
import { annotate, errorFields, logEvent } from '../log'
import { parseDigest, parseReference, parseRepo, type Repo } from '../names'
import { readBlobLink } from '../storage/links'
import { readBlob } from '../storage/blobs'
import { listReports } from '../storage/gc-reports'
import { getManifest, listRepositories, repoExists } from '../storage/manifests'
import { listReferrers } from '../storage/referrers'
import { listTagPage, readTag, type TagEntry } from '../storage/tags'
import { repoSummary } from '../storage/repo-summary'
import { pullFilter } from '../auth/access'
import { APP_CSS, APP_ICON, APP_JS } from '../ui/assets'
import { htmlResponse } from '../ui/layout'
import { confirmDeletePage, messagePage, signInPage } from '../ui/pages/forms'
import { configDescriptor, isObj, manifestPage } from '../ui/pages/manifest'
import { referrersPage } from '../ui/pages/referrers'
import { repositoriesPage, type RepositoryRow } from '../ui/pages/repositories'
import { repositoryPage, TAG_SORTS, type TagRow, type TagSort } from '../ui/pages/repository'
import { storagePage, storagePoints } from '../ui/pages/storage'
import { eventsPage } from '../ui/pages/events'
import { endpointReports } from '../events/status'
import { notificationSettings } from '../settings'
import { readPullStats, type PullStat } from '../storage/pull-stats'
import { repoUrl } from '../ui/urls'
import { parseBoundedJson } from '../json'
import { openResume, sealResume } from '../http/resume'
import { deleteReference } from './manifests'
import { cachingUpstream, mirrorHost } from '../proxy/config'

type Page = (req: IRequest, c: Ctx, viewer: Viewer) => Promise<Response>

/**
 * Wraps a page: the viewer from the session cookie, errors as HTML pages. On a mirror host (an
 * upstream's `host`) there are no pages: its names are the upstream's, so a local repository
 * listed there, with its pull command, would pull the upstream's image of that name instead.
 */
export const uiPage = (h: Page) => async (req: IRequest, env: Env, exec: ExecutionContext): Promise<Response> => {
  const viewer = await viewerOf(req, env)
  annotate({ identity: viewer.user ?? 'anonymous' })
  try {
    if (mirrorHost(env, new URL(req.url))) return mirrorHostPage(viewer)
    return await h(req, contextOf(req, env, exec, viewer.user ?? 'anonymous'), viewer)
  } catch (err) {
    return errorPage(err, viewer)
  }
}

const REPOS_PER_PAGE = 50
const TAGS_PER_PAGE = 50
/** Tags a repository page reads to sort them (5 KV lists); a larger repository is listed by name. */
const UI_SORT_TAGS = 5000
/** KV list pages a by-name page of tags reads at most. */
const UI_TAG_PAGES = 5
/** R2 list pages of names the Repositories page scans at most (filtered by name and by access). */
const REPO_SCAN_PAGES = 10
/** Larger configs are not read (real ones are a few KiB). */
const CONFIG_MAX_BYTES = 1024 * 1024
const REPORTS_SHOWN = 100
const REFERRERS_PER_PAGE = 50

/**
 * GET / — Repositories, 50 a page. Names: 1 R2 list per 1,000 names scanned, only under the
 * prefixes the viewer's rules name when they name any (pullPrefixes), at most REPO_SCAN_PAGES
 * (then the page is short and its next link resumes where the scan stopped); then at most 2 KV
 * lists per repository shown (repo-summary.ts; 1 for a repository of up to 1,000 links and tags):
 * a page of 50 costs at most 10 + 100 calls at any registry size.
 */
export const repositories: Page = async (req, c, viewer) => {
  const url = new URL(req.url)
  const q = (url.searchParams.get('q') ?? '').trim().toLowerCase().slice(0, 255)
  const last = url.searchParams.get('last')
  const pull = viewer.access ? pullFilter(viewer.access) : null
  const matches = (name: string) => !q || name.includes(q)
  const keep = pull ? (name: string) => matches(name) && pull.keep(name) : q ? matches : null
  const from = await openResume(c.env, c.settings.UPLOAD_SECRET, url.searchParams.get('resume'))
  const { names, more, scanned } = await listRepositories(c.env, REPOS_PER_PAGE, from ?? last, {
    keep, prefixes: pull?.prefixes ?? null, maxPages: REPO_SCAN_PAGES,
  })                                                                                          // R2 list(s)
  // Independent: at most 2 KV lists per repository shown.
  const rows = await Promise.all(names.map(async (name): Promise<RepositoryRow> => ({ name, ...(await repoSummary(c.env, name as Repo)) })))
  const next = more ? names[names.length - 1] ?? last ?? '' : null
  const resume = scanned === null ? null : await sealResume(c.env, c.settings.UPLOAD_SECRET, scanned)
  return htmlResponse(repositoriesPage(viewer, { rows, q, next, resume, paged: !!last || !!from }), viewer)
}

/** A repository's pull statistics when PULL_STATS is on (1 R2 get), else null (no call). */
const pullStatsOf = (c: Ctx, repo: Repo): Promise<Map<string, PullStat> | null> =>
  notificationSettings(c.env).pullStats ? readPullStats(c.env, repo) : Promise.resolve(null)

/**
 * GET /r/<name> — its tags. A repository of up to UI_SORT_TAGS tags: sorted as asked, 1 KV list
 * per 1,000 (+1 R2 list when it has none). A larger one: by name, TAGS_PER_PAGE a page, at most
 * UI_SORT_TAGS / 1,000 KV lists for the first page and UI_TAG_PAGES for the next ones (they resume
 * from a KV cursor, as the tags API does). With PULL_STATS, +1 R2 get (the pulls and last pull
 * of each tag's manifest), read meanwhile.
 */
export const repository: Page = async (req, c, viewer) => {
  const repo = visibleRepo(req, viewer)
  const url = new URL(req.url)
  const last = url.searchParams.get('last')
  const from = url.searchParams.get('cursor')
  const canDelete = offersDelete(c, viewer, repo)
  const host = url.host
  const stats = pullStatsOf(c, repo)                                                         // R2 get (PULL_STATS), meanwhile
  let entries: TagEntry[]
  if (last === null && from === null) {
    const all = await listTagPage(c.env, repo, UI_SORT_TAGS, null, null, UI_SORT_TAGS / 1000)   // KV list(s)
    if (!all.more) return sortedTags(req, c, viewer, repo, all.entries, await stats)
    entries = all.entries.slice(0, TAGS_PER_PAGE)
  } else {
    const page = await listTagPage(c.env, repo, TAGS_PER_PAGE, last, from && from.length <= 2048 ? from : null, UI_TAG_PAGES) // KV lists
    entries = page.entries
    if (!page.more) return byNamePage(viewer, repo, host, entries, null, canDelete, await stats)
    return byNamePage(viewer, repo, host, entries, nextTagsHref(repo, entries.at(-1)?.tag ?? last, page.resume), canDelete, await stats)
  }
  return byNamePage(viewer, repo, host, entries, nextTagsHref(repo, entries.at(-1)!.tag, null), canDelete, await stats, false)
}

function nextTagsHref(repo: Repo, last: string | null, cursor: string | null): string {
  const query = new URLSearchParams()
  if (last) query.set('last', last)
  if (cursor) query.set('cursor', cursor)
  return `${repoUrl(repo)}?${query}`
}

const rowOf = (t: TagEntry, pulls: Map<string, PullStat> | null): TagRow | null => {
  const r = t.record
  if (!r?.digest) return null
  const p = pulls?.get(r.digest)
  return {
    tag: t.tag, digest: r.digest, mediaType: r.mediaType, platforms: r.platforms ?? null, size: r.size ?? null, pushed: r.pushed ?? null,
    pulls: p?.pulls ?? null, lastPulled: p?.last ?? null,
  }
}

function byNamePage(
  viewer: Viewer, repo: Repo, host: string, entries: TagEntry[], next: string | null, canDelete: boolean, pulls: Map<string, PullStat> | null, paged = true,
): Response {
  const rows = entries.map((t) => rowOf(t, pulls)).filter((r): r is TagRow => r !== null)
  return htmlResponse(repositoryPage(viewer, {
    repo, host, rows, total: rows.length, sort: 'tag', desc: false, pageNumber: 1, pages: 1, canDelete, pullStats: pulls !== null,
    byName: { next, paged, sorted: UI_SORT_TAGS },
  }), viewer)
}

/** A repository of at most UI_SORT_TAGS tags, sorted and paged in memory. */
async function sortedTags(req: IRequest, c: Ctx, viewer: Viewer, repo: Repo, entries: TagEntry[], pulls: Map<string, PullStat> | null): Promise<Response> {
  const url = new URL(req.url)
  const sortParam = url.searchParams.get('sort') as TagSort | null
  const sort: TagSort = sortParam && TAG_SORTS.includes(sortParam) ? sortParam : 'pushed'
  const desc = (url.searchParams.get('order') ?? (sort === 'tag' ? 'asc' : 'desc')) === 'desc'
  const rows = entries.map((t) => rowOf(t, pulls)).filter((r): r is TagRow => r !== null)
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
    pullStats: pulls !== null,
  }), viewer)
}

/**
 * GET /r/<name>/-/manifest/<reference> — by tag 1 KV get, by digest 1 R2 get; an image's config:
 * + its blob link (cache, else 1 KV get) + 1 R2 get; with PULL_STATS +1 R2 get.
 */
export const manifest: Page = async (req, c, viewer) => {
  const repo = visibleRepo(req, viewer)
  const ref = parseReference(req.params.reference ?? '')
  const found = ref.kind === 'tag'
    ? await readTag(c.env, repo, ref.tag)                                                    // KV get
    : await getManifest(c.env, repo, ref.digest).then((m) => m && { ...m, digest: ref.digest }) // R2 get
  if (!found) return notFound(viewer, 'No such tag or manifest in this repository.')
  const stats = pullStatsOf(c, repo)                                                         // R2 get (PULL_STATS), meanwhile
  const text = new TextDecoder().decode(found.bytes)
  let config: Record<string, unknown> | null = null
  try {
    const wanted = configDescriptor(JSON.parse(text) as Record<string, unknown>)
    const digest = wanted && wanted.size <= CONFIG_MAX_BYTES ? parseDigest(wanted.digest) : null
    const link = digest && (await readBlobLink(c.env, c, repo, digest))                      // cache, else KV get
    const object = link && (await readBlob(c.env, link))                                     // R2 get
    const parsed = object && parseBoundedJson(new Uint8Array(await object.arrayBuffer()))  // bounded: a config blob is anyone's bytes
    if (parsed && 'value' in parsed && isObj(parsed.value)) config = parsed.value
  } catch {
    // A config that is not JSON (or a bad digest) is simply not summarised.
  }
  return htmlResponse(manifestPage(viewer, {
    repo, host: new URL(req.url).host, tag: ref.kind === 'tag' ? ref.tag : null, digest: found.digest,
    mediaType: found.mediaType, text, config, canDelete: offersDelete(c, viewer, repo),
    ...(await stats.then((s) => s && { pulls: { count: s.get(found.digest)?.pulls ?? 0, last: s.get(found.digest)?.last ?? null } })),
  }), viewer)
}

/**
 * GET /r/<name>/-/referrers/<digest>[?last=<digest>] — a page of REFERRERS_PER_PAGE: 1 R2 list
 * (+1 R2 get per old uncapped entry, at most 8). Each descriptor is at most 1,800 bytes.
 */
export const referrers: Page = async (req, c, viewer) => {
  const repo = visibleRepo(req, viewer)
  const subject = parseDigest(req.params.digest)
  const last = new URL(req.url).searchParams.get('last')
  const page = await listReferrers(c.env, repo, subject, last ? parseDigest(last) : null, REFERRERS_PER_PAGE)  // R2 list
  return htmlResponse(referrersPage(viewer, repo, subject, page.descriptors, { next: page.next, paged: !!last }), viewer)
}

/** GET /storage — the collector's reports: 1 R2 list per 1,000 reports + 1 R2 get per report shown. */
export const storage: Page = async (_req, c, viewer) => {
  if (!viewer.global) return notFound(viewer)
  const reports = await listReports(c.env, REPORTS_SHOWN)                                    // R2 list + gets
  return htmlResponse(storagePage(viewer, storagePoints(reports)), viewer)
}

/** GET /events — for admins: each NOTIFICATIONS endpoint's last deliveries and dead letters (1 R2 get per endpoint). */
export const events: Page = async (_req, c, viewer) => {
  if (!viewer.admin) return notFound(viewer, 'No such page.')
  return htmlResponse(eventsPage(viewer, await endpointReports(c.env)), viewer)                 // R2 get per endpoint
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

/**
 * POST /sign-in — checks credentials as POST /token does (CPU only for users; a robot: 1 KV get),
 * throttled alike: past the limits, 429 with Retry-After and the form again, no password checked.
 */
export const signInSubmit: Page = async (req, c, viewer) => {
  if (!viewer.authEnabled) return notFound(viewer)
  const form = await checkedForm(req, null)
  const next = safeNext(form.get('next'))
  let cookie: string | null
  try {
    cookie = await signIn(req, c.env, form.get('username') ?? '', form.get('password') ?? '')
  } catch (err) {
    if (!(err instanceof RegistryError && err.code === 'TOOMANYREQUESTS')) throw err
    const text = `${err.message[0]!.toUpperCase()}${err.message.slice(1)}.`      // "Too many failed sign-ins …: try again in 60 seconds."
    return htmlResponse(signInPage(viewer, next, text), viewer, 429, { 'Retry-After': err.headers['Retry-After']! })
  }
  if (!cookie) return htmlResponse(signInPage(viewer, next, 'Wrong user name or password.'), viewer, 401)
  return redirect(next, cookie)
}

/** POST /sign-out — no storage. */
export const signOut: Page = async (req, _c, viewer) => {
  await checkedForm(req, viewer)
  return redirect('/', signedOutCookie())
}

const ASSETS: Record<string, [string, string]> = {
  'app.css': [APP_CSS, 'text/css; charset=utf-8'],
  'app.js': [APP_JS, 'text/javascript; charset=utf-8'],
  'icon.svg': [APP_ICON, 'image/svg+xml'],
}

/** GET /ui/app.css, /ui/app.js, /ui/icon.svg — versioned URLs, cached for a year. */
export function asset(req: IRequest): Response {
  const found = Object.hasOwn(ASSETS, req.params.file ?? '') ? ASSETS[req.params.file!] : undefined
  if (!found) throw new RegistryError('NOT_FOUND')
  return new Response(found[0], {
    headers: { 'Content-Type': found[1], 'Cache-Control': 'public, max-age=31536000, immutable', 'X-Content-Type-Options': 'nosniff' },
  })
}

/** GET /favicon.ico — the site icon (pages declare it; browsers and tools still ask here). A day's cache: its URL never changes. */
export function favicon(): Response {
  return new Response(APP_ICON, {
    headers: { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'public, max-age=86400', 'X-Content-Type-Options': 'nosniff' },
  })
}

// ---------------------------------------------------------------- helpers

/** Whether the viewer may pull a repository (everything, with auth off). */
const pullable = (viewer: Viewer) => (repo: string): boolean => !viewer.access || viewer.access.can(repo, 'pull')

const mayDelete = (c: Ctx, viewer: Viewer, repo: Repo): boolean =>
  c.settings.DELETE_ENABLED && (!viewer.access || viewer.access.can(repo, 'delete'))

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

/**
 * A path on this site to return to after signing in; anything else goes home. Only printable
 * ASCII: it becomes the Location header, which cannot hold other bytes (and a browser drops tabs
 * and newlines from a URL, which could turn `/\t/evil.example` into `//evil.example`).
 */
function safeNext(next: string | null): string {
  return next && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : '/'
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

function mirrorHostPage(viewer: Viewer): Response {
  const text = 'This hostname is a pull-through mirror of an upstream registry: pull its images by their upstream names here. The registry\'s own pages are on its other hostnames.'
  return htmlResponse(messagePage(viewer, 'A mirror', text), viewer, 404)
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
  logEvent('error', { event: 'error', ...errorFields(err) })
  return htmlResponse(messagePage(viewer, 'Something went wrong', 'The registry could not show this page.'), viewer, 500)
}
