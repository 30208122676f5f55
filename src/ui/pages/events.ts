/** The Events page (admins): each NOTIFICATIONS endpoint, its last deliveries and dead letters. */
import type { Viewer } from '../../auth/session'
import type { DeliveryRecord } from '../../storage/deliveries'
import { formatTime } from '../format'
import { html, type Html } from '../html'
import { page, time } from '../layout'

export interface EndpointView {
  name: string
  /** Without its query (which may hold a token). */
  url: string
  format: string
  actions: string[]
  deadLetters: number
  deliveries: DeliveryRecord[]
}

export function eventsPage(viewer: Viewer, endpoints: EndpointView[]): Html {
  const body = endpoints.length === 0
    ? html`<p class="notice">No endpoints: NOTIFICATIONS names none (see docs/events.md).</p>`
    : html`${endpoints.map((e) => html`
<section aria-labelledby="ep-${e.name}">
<h2 id="ep-${e.name}">${e.name}</h2>
<dl class="facts">
<dt>URL</dt><dd><code>${e.url}</code></dd>
<dt>Format</dt><dd>${e.format}</dd>
<dt>Actions</dt><dd>${e.actions.join(', ')}</dd>
<dt>Dead letters</dt><dd>${e.deadLetters > 0 ? html`<strong class="error">${e.deadLetters}</strong>` : 0}</dd>
</dl>
${e.deliveries.length === 0 ? html`<p class="muted">No deliveries yet.</p>` : html`
<div class="scroll"><table>
<caption class="sr">Last deliveries to ${e.name}</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Event id</th><th scope="col" class="num">Status</th><th scope="col" class="num">Attempt</th><th scope="col">Outcome</th></tr></thead>
<tbody>${e.deliveries.map((d) => html`<tr>
<td>${time(Date.parse(d.time), formatTime(Date.parse(d.time)))}</td>
<td><code>${d.id}</code>${d.events > 1 ? html` <span class="muted">(${d.events} events)</span>` : ''}</td>
<td class="num">${d.status ?? html`<span title="${d.error ?? ''}">—</span>`}</td>
<td class="num">${d.attempts}</td>
<td>${outcome(d)}</td>
</tr>`)}</tbody>
</table></div>`}
</section>`)}`
  return page({ title: 'Events', viewer, path: '/events', body })
}

function outcome(d: DeliveryRecord): Html {
  if (d.outcome === 'delivered') return html`delivered`
  if (d.outcome === 'dead') return html`<strong>dead letter</strong>${d.error ? html` <span class="muted">(${d.error})</span>` : ''}`
  return html`retrying${d.retryIn ? html` in ${d.retryIn} s` : ''}${d.error ? html` <span class="muted">(${d.error})</span>` : ''}`
}
