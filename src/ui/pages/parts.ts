/** Pieces several pages share: pull commands with copy buttons, tables of key/value text. */
import { html, type Html } from '../html'

let ids = 0

/** `docker`, `podman`, `crane` and `oras` commands for `image` (host/name) by tag and/or digest. */
export function pullCommands(image: string, tag: string | null, digest: string | null): Html {
  const refs = [tag && { how: 'tag', ref: `${image}:${tag}` }, digest && { how: 'digest', ref: `${image}@${digest}` }]
    .filter((r): r is { how: string; ref: string } => !!r)
  const rows = refs.flatMap(({ how, ref }) => [
    ['docker', `docker pull ${ref}`],
    ['podman', `podman pull ${ref}`],
    ['crane', `crane pull ${ref} image.tar`],
    ['oras', `oras pull ${ref}`],
  ].map(([tool, command]) => {
    const id = `cmd-${++ids}`
    return html`<label for="${id}">${tool} (by ${how})</label>
<input id="${id}" readonly value="${command}">
<button type="button" data-copy="${id}" hidden aria-label="Copy the ${tool} command (by ${how})">Copy</button>`
  }))
  const what = tag ? `${tag}${digest ? ' (by tag or digest)' : ''}` : digest ? 'by digest' : ''
  return html`<section aria-labelledby="pull-h"><h2 id="pull-h">Pull <span class="muted">${what}</span></h2><div class="cmds">${rows}</div></section>`
}

/** A two-column table of text pairs (labels, annotations); nothing when empty. */
export function pairs(caption: string, entries: [string, string][]): Html | null {
  if (entries.length === 0) return null
  return html`<h2>${caption}</h2><div class="scroll"><table>
<thead><tr><th scope="col">Key</th><th scope="col">Value</th></tr></thead>
<tbody>${entries.map(([k, v]) => html`<tr><td><code>${k}</code></td><td><code>${v}</code></td></tr>`)}</tbody>
</table></div>`
}
