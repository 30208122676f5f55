/** The Repositories page: what the viewer may pull, filtered by name, a page at a time. */
import type { Viewer } from '../../auth/session'
import type { RepoSummary } from '../../storage/repo-summary'
import { formatBytes, formatTime } from '../format'
import { html, type Html } from '../html'
import { page, time } from '../layout'
import { repoUrl } from '../urls'

export interface RepositoryRow extends RepoSummary {
  name: string
}

export interface RepositoriesData {
  rows: RepositoryRow[]
  /** The filter (a substring of the name), '' for none. */
  q: string
  /** The name the next page starts after, or null on the last page. */
  next: string | null
  /** Where the next page resumes reading, sealed (src/http/resume.ts), when the scan stopped short. */
  resume?: string | null
  /** Whether this is not the first page. */
  paged: boolean
}

export function repositoriesPage(viewer: Viewer, d: RepositoriesData): Html {
  const q = d.q ? `&q=${encodeURIComponent(d.q)}` : ''
  const body = html`
<form class="filter" method="get" action="/" role="search">
<label for="q" class="muted">Filter by name</label>
<input id="q" name="q" type="search" value="${d.q}" placeholder="e.g. team/app" data-filter="tr[data-name]" autocomplete="off">
<button type="submit">Filter</button>
</form>
${d.rows.length === 0
  ? html`<p class="notice">${d.q ? 'No repository you may pull matches this filter.' : 'No repositories you may pull yet.'}${viewer.authEnabled && !viewer.user ? html` <a href="/sign-in?next=%2F">Sign in</a> to see more.` : null}</p>`
  : html`<div class="scroll"><table>
<caption class="sr">Repositories</caption>
<thead><tr><th scope="col">Repository</th><th scope="col" class="num">Tags</th><th scope="col" class="num">Size</th><th scope="col">Last push</th></tr></thead>
<tbody>${d.rows.map((r) => html`<tr data-name="${r.name}"><td><a href="${repoUrl(r.name)}">${r.name}</a></td><td class="num">${r.tags}${r.moreTags ? '+' : ''}</td><td class="num">${r.moreBytes ? '≥ ' : ''}${formatBytes(r.bytes)}</td><td>${time(r.lastPush, formatTime(r.lastPush))}</td></tr>`)}</tbody>
</table></div>`}
<nav class="pager" aria-label="Pages">
${d.paged && html`<a href="/?${q.slice(1)}">First page</a>`}
${d.next !== null && html`<a href="/?last=${encodeURIComponent(d.next)}${q}${d.resume ? `&resume=${d.resume}` : ''}" rel="next">Next page</a>`}
</nav>`
  return page({ title: 'Repositories', viewer, path: '/', body })
}
