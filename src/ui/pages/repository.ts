/** The Repository page: its tags, sortable and paged, and how to pull them. */
import type { Viewer } from '../../auth/session'
import { formatBytes, formatTime, INDEX_MEDIA_TYPES, mediaTypeName, shortDigest } from '../format'
import { html, type Html } from '../html'
import { page, time } from '../layout'
import { deleteUrl, manifestUrl, repoUrl } from '../urls'
import { pullCommands } from './parts'

export interface TagRow {
  tag: string
  digest: string
  mediaType: string
  platforms: string | null
  size: number | null
  pushed: number | null
  /** Pulls of the manifest it names, and the last (PULL_STATS; null when off). */
  pulls?: number | null
  lastPulled?: number | null
}

export type TagSort = 'tag' | 'pushed' | 'size'
export const TAG_SORTS: readonly TagSort[] = ['tag', 'pushed', 'size']

export interface RepositoryData {
  repo: string
  /** host[:port], for pull commands. */
  host: string
  /** This page's rows, already sorted. */
  rows: TagRow[]
  total: number
  /**
   * Set when the repository has more tags than the page sorts (UI_SORT_TAGS): rows come in name
   * order, a page at a time, `next` being the next page's address (null on the last).
   */
  byName?: { next: string | null; paged: boolean; sorted: number }
  sort: TagSort
  desc: boolean
  pageNumber: number
  pages: number
  canDelete: boolean
  /** Whether pulls are counted (PULL_STATS): the Pulls and Last pulled columns. */
  pullStats?: boolean
}

export function repositoryPage(viewer: Viewer, d: RepositoryData): Html {
  const base = repoUrl(d.repo)
  const link = (sort: TagSort, desc: boolean, p = 1) => `${base}?sort=${sort}&order=${desc ? 'desc' : 'asc'}${p > 1 ? `&page=${p}` : ''}`
  const header = (sort: TagSort, label: string, cls = '') => {
    const current = d.sort === sort
    const desc = current ? !d.desc : sort !== 'tag'
    const aria = current ? (d.desc ? 'descending' : 'ascending') : null
    return html`<th scope="col"${cls && html` class="${cls}"`}${aria && html` aria-sort="${aria}"`}><a href="${link(sort, desc)}">${label}${current ? (d.desc ? ' ▼' : ' ▲') : ''}</a></th>`
  }
  const top = d.rows[0]
  const byName = d.byName
  const plain = (label: string, cls = '') => html`<th scope="col"${cls && html` class="${cls}"`}>${label}</th>`
  const body = html`
<h2 id="tags-h">Tags <span class="muted">(${byName ? `more than ${byName.sorted.toLocaleString('en-US')}` : d.total})</span></h2>
${byName && html`<p class="notice">This repository has more than ${byName.sorted.toLocaleString('en-US')} tags: they are listed by name, a page at a time, and cannot be sorted here.</p>`}
${d.total === 0 && !byName ? html`<p class="notice">No tags: this repository holds only untagged manifests.</p>` : html`
<div class="scroll"><table aria-labelledby="tags-h">
<thead><tr>${byName ? plain('Tag') : header('tag', 'Tag')}<th scope="col">Digest</th><th scope="col" class="hide-narrow">Type</th><th scope="col">Platforms</th>${byName ? plain('Size', 'num') : header('size', 'Size', 'num')}${byName ? plain('Pushed') : header('pushed', 'Pushed')}${d.pullStats && html`<th scope="col" class="num">Pulls</th><th scope="col">Last pulled</th>`}${d.canDelete && html`<th scope="col"><span class="sr">Actions</span></th>`}</tr></thead>
<tbody>${d.rows.map((r) => html`<tr>
<td><a href="${manifestUrl(d.repo, r.tag)}">${r.tag}</a></td>
<td><a href="${manifestUrl(d.repo, r.digest)}"><code title="${r.digest}">${shortDigest(r.digest)}</code></a></td>
<td class="hide-narrow">${mediaTypeName(r.mediaType)}</td>
<td>${r.platforms ?? (INDEX_MEDIA_TYPES.includes(r.mediaType) ? '—' : html`<span class="muted">single image</span>`)}</td>
<td class="num">${formatBytes(r.size)}</td>
<td>${time(r.pushed, formatTime(r.pushed))}</td>
${d.pullStats && html`<td class="num">${r.pulls ?? 0}</td><td>${r.lastPulled ? time(r.lastPulled, formatTime(r.lastPulled)) : html`<span class="muted">never</span>`}</td>`}
${d.canDelete && html`<td><a href="${deleteUrl(d.repo, r.tag)}">Delete<span class="sr"> tag ${r.tag}</span></a></td>`}
</tr>`)}</tbody>
</table></div>
${byName ? html`<nav class="pager" aria-label="Pages">
${byName.paged && html`<a href="${base}">First page</a>`}
${byName.next && html`<a href="${byName.next}" rel="next">Next page</a>`}
</nav>` : html`<nav class="pager" aria-label="Pages">
${d.pageNumber > 1 && html`<a href="${link(d.sort, d.desc, d.pageNumber - 1)}" rel="prev">Previous page</a>`}
<span class="muted">Page ${d.pageNumber} of ${d.pages}</span>
${d.pageNumber < d.pages && html`<a href="${link(d.sort, d.desc, d.pageNumber + 1)}" rel="next">Next page</a>`}
</nav>`}`}
${top ? pullCommands(`${d.host}/${d.repo}`, top.tag, top.digest) : null}`
  return page({ title: d.repo, viewer, path: base, crumbs: [['Repositories', '/'], [d.repo, null]], body })
}
