/** The Referrers page: signatures, SBOMs and attestations of a manifest, by artifactType. */
import type { Viewer } from '../../auth/session'
import type { Descriptor } from '../../manifests/handler'
import { formatBytes, shortDigest } from '../format'
import { html, type Html } from '../html'
import { page } from '../layout'
import { manifestUrl, referrersUrl, repoUrl } from '../urls'

/** Where the page is in the list: the digest the next page starts after (null on the last). */
export interface ReferrersPaging {
  next: string | null
  /** Whether this is not the first page. */
  paged: boolean
}

export function referrersPage(viewer: Viewer, repo: string, subject: string, referrers: Descriptor[], paging: ReferrersPaging = { next: null, paged: false }): Html {
  const groups = new Map<string, Descriptor[]>()
  for (const d of referrers) {
    const type = d.artifactType ?? 'unknown artifact type'
    groups.set(type, [...(groups.get(type) ?? []), d])
  }
  const body = html`<p>Manifests whose <code>subject</code> is <a href="${manifestUrl(repo, subject)}"><code>${subject}</code></a>.</p>
${groups.size === 0 && !paging.paged ? html`<p class="notice">No signatures, SBOMs or attestations refer to this manifest.</p>` : null}
${[...groups].sort(([a], [b]) => a.localeCompare(b)).map(([type, list]) => html`<section>
<h2><code>${type}</code> <span class="muted">(${list.length})</span></h2>
<div class="scroll"><table>
<thead><tr><th scope="col">Manifest</th><th scope="col" class="num">Size</th><th scope="col">Annotations</th></tr></thead>
<tbody>${list.map((d) => html`<tr><td><a href="${manifestUrl(repo, d.digest)}"><code title="${d.digest}">${shortDigest(d.digest)}</code></a></td>
<td class="num">${formatBytes(d.size)}</td>
<td>${Object.entries(d.annotations ?? {}).map(([k, v]) => html`<div><code>${k}</code>: <code>${String(v)}</code></div>`)}</td></tr>`)}</tbody>
</table></div></section>`)}
<nav class="pager" aria-label="Pages">
${paging.paged && html`<a href="${referrersUrl(repo, subject)}">First page</a>`}
${paging.next && html`<a href="${referrersUrl(repo, subject)}?last=${encodeURIComponent(paging.next)}" rel="next">Next page</a>`}
</nav>`
  return page({
    title: `Referrers of ${shortDigest(subject)}`,
    viewer,
    path: referrersUrl(repo, subject),
    crumbs: [['Repositories', '/'], [repo, repoUrl(repo)], [shortDigest(subject), manifestUrl(repo, subject)], ['Referrers', null]],
    body,
  })
}
