/**
 * The Manifest page: an index's platforms, an image's config summary, layers and history, an
 * artifact's type, blobs and annotations, and the raw JSON. Every value read from a manifest or
 * config is untrusted text (the templates escape it).
 */
import type { Viewer } from '../../auth/session'
import { formatBytes, formatTime, mediaTypeName, shortDigest } from '../format'
import { html, type Html } from '../html'
import { page, time } from '../layout'
import { deleteUrl, manifestUrl, referrersUrl, repoUrl } from '../urls'
import { pairs, pullCommands } from './parts'

type Json = Record<string, unknown>

export interface ManifestData {
  repo: string
  host: string
  /** The tag the page was opened by, if any. */
  tag: string | null
  digest: string
  mediaType: string
  /** The manifest's bytes as text. */
  text: string
  /** The image config, when the manifest is an image's and its config could be read. */
  config: Json | null
  canDelete: boolean
  /** Its pull statistics (PULL_STATS); absent when they are off. */
  pulls?: { count: number; last: number | null }
}

const IMAGE_CONFIG_TYPES = ['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']

export const isObj = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x)
const str = (x: unknown): string | null => (typeof x === 'string' ? x : null)
const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null)
const list = (x: unknown): unknown[] => (Array.isArray(x) ? x : [])
const textPairs = (x: unknown): [string, string][] =>
  isObj(x) ? Object.entries(x).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]) : []

/** What kind of manifest this is, from its shape (media types vary across clients). */
export function kindOf(doc: Json): 'index' | 'image' | 'artifact' | 'other' {
  if (Array.isArray(doc.manifests)) return 'index'
  if (!isObj(doc.config) && !Array.isArray(doc.layers) && !Array.isArray(doc.blobs)) return 'other'
  const configType = isObj(doc.config) ? str(doc.config.mediaType) : null
  if (!str(doc.artifactType) && configType !== null && IMAGE_CONFIG_TYPES.includes(configType)) return 'image'
  return 'artifact'
}

/** The config descriptor of an image manifest whose config the page wants (null otherwise). */
export function configDescriptor(doc: Json): { digest: string; size: number } | null {
  if (kindOf(doc) !== 'image' || !isObj(doc.config)) return null
  const digest = str(doc.config.digest)
  const size = num(doc.config.size)
  return digest && size !== null ? { digest, size } : null
}

export function manifestPage(viewer: Viewer, d: ManifestData): Html {
  let doc: Json = {}
  try {
    const parsed: unknown = JSON.parse(d.text)
    if (isObj(parsed)) doc = parsed
  } catch {
    // Stored manifests were valid JSON when pushed; show the raw text whatever happens.
  }
  const kind = kindOf(doc)
  const subject = isObj(doc.subject) ? str(doc.subject.digest) : null
  const pretty = (() => {
    try {
      return JSON.stringify(JSON.parse(d.text), null, 2)
    } catch {
      return d.text
    }
  })()
  const body = html`
<dl class="facts">
<dt>Digest</dt><dd><code>${d.digest}</code></dd>
<dt>Media type</dt><dd>${mediaTypeName(d.mediaType)} <span class="muted"><code>${d.mediaType}</code></span></dd>
${d.tag && html`<dt>Tag</dt><dd>${d.tag}</dd>`}
<dt>Manifest size</dt><dd>${formatBytes(new TextEncoder().encode(d.text).byteLength)}</dd>
${d.pulls && html`<dt>Pulls</dt><dd>${d.pulls.count}</dd><dt>Last pulled</dt><dd>${d.pulls.last ? time(d.pulls.last, formatTime(d.pulls.last)) : 'never'}</dd>`}
${subject && html`<dt>Subject</dt><dd><a href="${manifestUrl(d.repo, subject)}"><code>${subject}</code></a></dd>`}
<dt>Referrers</dt><dd><a href="${referrersUrl(d.repo, d.digest)}">Signatures, SBOMs and attestations</a></dd>
</dl>
${kind === 'index' ? indexSection(d.repo, doc) : null}
${kind === 'image' ? imageSection(doc, d.config) : null}
${kind === 'artifact' ? artifactSection(doc) : null}
${pullCommands(`${d.host}/${d.repo}`, d.tag, d.digest)}
${pairs('Annotations', textPairs(doc.annotations))}
<h2 id="raw-h">Raw manifest</h2>
<p class="muted">Digest <code>${d.digest}</code></p>
<pre aria-labelledby="raw-h" tabindex="0"><code>${pretty}</code></pre>
${d.canDelete && html`<p><a href="${deleteUrl(d.repo, d.tag ?? d.digest)}">Delete ${d.tag ? `tag ${d.tag}` : 'this manifest'}</a></p>`}`
  const crumbs: [string, string | null][] = [['Repositories', '/'], [d.repo, repoUrl(d.repo)], [d.tag ?? shortDigest(d.digest), null]]
  return page({ title: `${d.repo}${d.tag ? `:${d.tag}` : `@${shortDigest(d.digest)}`}`, viewer, path: manifestUrl(d.repo, d.tag ?? d.digest), crumbs, body })
}

function indexSection(repo: string, doc: Json): Html {
  const rows = list(doc.manifests).filter(isObj).map((m) => {
    const p = isObj(m.platform) ? m.platform : {}
    const platform = [str(p.os), str(p.architecture), str(p.variant)].filter(Boolean).join('/') || 'unknown'
    const digest = str(m.digest) ?? ''
    const refType = isObj(m.annotations) ? str(m.annotations['vnd.docker.reference.type']) : null
    return html`<tr><td>${platform}${refType && html` <span class="muted">(${refType})</span>`}</td>
<td><a href="${manifestUrl(repo, digest)}"><code title="${digest}">${shortDigest(digest)}</code></a></td>
<td class="hide-narrow">${mediaTypeName(str(m.mediaType) ?? '')}</td><td class="num">${formatBytes(num(m.size))}</td></tr>`
  })
  return html`<h2 id="platforms-h">Platforms</h2><div class="scroll"><table aria-labelledby="platforms-h">
<thead><tr><th scope="col">Platform</th><th scope="col">Manifest</th><th scope="col" class="hide-narrow">Type</th><th scope="col" class="num">Size</th></tr></thead>
<tbody>${rows}</tbody></table></div>`
}

function imageSection(doc: Json, config: Json | null): Html {
  const layers = list(doc.layers).filter(isObj)
  return html`${config ? configSection(config) : html`<p class="notice">The image config could not be read.</p>`}
${layerSection('Layers', layers)}
${config ? historySection(config) : null}`
}

function configSection(config: Json): Html {
  const c = isObj(config.config) ? config.config : {}
  const platform = [str(config.os), str(config.architecture), str(config.variant)].filter(Boolean).join('/')
  const command = (x: unknown) => (Array.isArray(x) ? JSON.stringify(x) : str(x))
  const ports = isObj(c.ExposedPorts) ? Object.keys(c.ExposedPorts) : []
  return html`<h2>Config</h2><dl class="facts">
<dt>Platform</dt><dd>${platform || '—'}</dd>
<dt>Created</dt><dd>${str(config.created) ?? '—'}</dd>
<dt>Entrypoint</dt><dd><code>${command(c.Entrypoint) ?? '—'}</code></dd>
<dt>Cmd</dt><dd><code>${command(c.Cmd) ?? '—'}</code></dd>
${str(c.WorkingDir) && html`<dt>Working directory</dt><dd><code>${str(c.WorkingDir)}</code></dd>`}
${str(c.User) && html`<dt>User</dt><dd><code>${str(c.User)}</code></dd>`}
<dt>Exposed ports</dt><dd>${ports.length ? ports.join(', ') : '—'}</dd>
</dl>
${pairs('Labels', textPairs(c.Labels))}`
}

/** Layers (or an artifact's blobs) with a bar of their sizes: SVG geometry, no inline style (CSP). */
function layerSection(title: string, descriptors: Json[]): Html {
  if (descriptors.length === 0) return html`<h2>${title}</h2><p class="muted">None.</p>`
  const sizes = descriptors.map((l) => num(l.size) ?? 0)
  const total = sizes.reduce((a, b) => a + b, 0) || 1
  let x = 0
  const rects = sizes.map((s, i) => {
    const w = (s / total) * 1000
    const r = html`<rect x="${x.toFixed(2)}" y="0" width="${Math.max(w, 0.5).toFixed(2)}" height="20"><title>${title.slice(0, -1)} ${i + 1}: ${formatBytes(s)}</title></rect>`
    x += w
    return r
  })
  const id = title.toLowerCase()
  return html`<h2 id="${id}-h">${title} <span class="muted">(${descriptors.length}, ${formatBytes(total)})</span></h2>
<svg class="bar" viewBox="0 0 1000 20" preserveAspectRatio="none" role="img" aria-label="${title} by size">${rects}</svg>
<div class="scroll"><table aria-labelledby="${id}-h">
<thead><tr><th scope="col" class="num">#</th><th scope="col">Digest</th><th scope="col" class="hide-narrow">Media type</th><th scope="col" class="num">Size</th></tr></thead>
<tbody>${descriptors.map((l, i) => {
    const title = isObj(l.annotations) ? str(l.annotations['org.opencontainers.image.title']) : null
    return html`<tr><td class="num">${i + 1}</td><td><code title="${str(l.digest) ?? ''}">${shortDigest(str(l.digest) ?? '')}</code>${title && html` ${title}`}</td><td class="hide-narrow"><code>${str(l.mediaType) ?? ''}</code></td><td class="num">${formatBytes(sizes[i])}</td></tr>`
  })}</tbody></table></div>`
}

function historySection(config: Json): Html | null {
  const history = list(config.history).filter(isObj)
  if (history.length === 0) return null
  return html`<h2 id="history-h">History</h2><div class="scroll"><table aria-labelledby="history-h">
<thead><tr><th scope="col">Created</th><th scope="col">Step</th></tr></thead>
<tbody>${history.map((h) => html`<tr><td class="mono">${str(h.created) ?? ''}</td><td><code>${str(h.created_by) ?? str(h.comment) ?? ''}</code>${h.empty_layer === true && html` <span class="muted">(no layer)</span>`}</td></tr>`)}</tbody>
</table></div>`
}

function artifactSection(doc: Json): Html {
  const configType = isObj(doc.config) ? str(doc.config.mediaType) : null
  const artifactType = str(doc.artifactType) ?? configType ?? '—'
  const blobs = list(doc.layers ?? doc.blobs).filter(isObj)
  return html`<h2>Artifact</h2><dl class="facts"><dt>Artifact type</dt><dd><code>${artifactType}</code></dd></dl>
${layerSection('Blobs', blobs)}`
}
