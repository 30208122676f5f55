/** The Storage page: bytes stored over time, from the garbage collector's reports. */
import type { Viewer } from '../../auth/session'
import type { GcReport } from '../../storage/gc-reports'
import { formatBytes } from '../format'
import { html, type Html } from '../html'
import { page } from '../layout'

export interface StoragePoint {
  /** ms since epoch: when the run finished. */
  at: number
  /** Bytes stored after the run (a dry run deleted nothing: kept + would-be-freed). */
  stored: number
  freed: number
  dryRun: boolean
  id: string
}

/** Finished runs, oldest first. */
export function storagePoints(reports: GcReport[]): StoragePoint[] {
  return reports
    .filter((r) => r.finished && Number.isFinite(Date.parse(r.finished)) && r.kept && r.totals)
    .map((r) => ({
      at: Date.parse(r.finished!),
      stored: r.dryRun ? r.kept.bytes + r.totals.bytes : r.kept.bytes,
      freed: r.dryRun ? 0 : r.totals.bytes,
      dryRun: r.dryRun,
      id: r.id,
    }))
    .sort((a, b) => a.at - b.at)
}

export function storagePage(viewer: Viewer, points: StoragePoint[]): Html {
  const body = points.length === 0
    ? html`<p class="notice">No garbage collector reports yet: the chart appears after the collector's first run.</p>`
    : html`${chart(points)}
<div class="scroll"><table>
<caption class="sr">Collector runs</caption>
<thead><tr><th scope="col">Finished</th><th scope="col">Run</th><th scope="col" class="num">Stored</th><th scope="col" class="num">Freed</th></tr></thead>
<tbody>${[...points].reverse().map((p) => html`<tr><td><time datetime="${new Date(p.at).toISOString()}">${new Date(p.at).toISOString().slice(0, 16).replace('T', ' ')} UTC</time></td>
<td><code>${p.id}</code>${p.dryRun && html` <span class="muted">(dry run)</span>`}</td><td class="num">${formatBytes(p.stored)}</td><td class="num">${formatBytes(p.freed)}</td></tr>`)}</tbody>
</table></div>`
  return page({ title: 'Storage', viewer, path: '/storage', body })
}

/** A line chart in SVG geometry (no script, no inline style). */
function chart(points: StoragePoint[]): Html {
  const W = 600, H = 200, L = 60, B = 20
  const max = Math.max(...points.map((p) => p.stored), 1)
  const t0 = points[0]!.at, t1 = points[points.length - 1]!.at
  const x = (t: number) => (t1 === t0 ? L + (W - L) / 2 : L + ((t - t0) / (t1 - t0)) * (W - L - 10))
  const y = (b: number) => H - B - (b / max) * (H - B - 10)
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.at).toFixed(1)},${y(p.stored).toFixed(1)}`).join(' ')
  const label = `Stored bytes over ${points.length} collector runs, from ${formatBytes(points[0]!.stored)} to ${formatBytes(points[points.length - 1]!.stored)}`
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${label}">
<line class="axis" x1="${L}" y1="${H - B}" x2="${W}" y2="${H - B}"/><line class="axis" x1="${L}" y1="0" x2="${L}" y2="${H - B}"/>
<text x="${L - 4}" y="14" text-anchor="end">${formatBytes(max)}</text><text x="${L - 4}" y="${H - B}" text-anchor="end">0</text>
<text x="${L}" y="${H - 4}">${new Date(t0).toISOString().slice(0, 10)}</text><text x="${W}" y="${H - 4}" text-anchor="end">${new Date(t1).toISOString().slice(0, 10)}</text>
<path class="line" d="${path}"/>
${points.map((p) => html`<circle class="dot" cx="${x(p.at).toFixed(1)}" cy="${y(p.stored).toFixed(1)}" r="3"><title>${new Date(p.at).toISOString()}: ${formatBytes(p.stored)}</title></circle>`)}
</svg>`
}
