/** The UI's template helper: interpolations are text, never markup. */
import { describe, expect, it } from 'vitest'
import { escapeHtml, html, trusted } from '../../src/ui/html'

describe('html template', () => {
  it('escapes the five characters that can start markup or end an attribute', () => {
    expect(escapeHtml(`<a href="x" title='y'>&amp;</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;')
  })

  it('escapes every interpolated string, in content and in attributes', () => {
    const label = '<script>alert(1)</script>'
    const attr = '" onmouseover="alert(1)'
    expect(html`<td title="${attr}">${label}</td>`.text).toBe(
      '<td title="&quot; onmouseover=&quot;alert(1)">&lt;script&gt;alert(1)&lt;/script&gt;</td>',
    )
  })

  it('passes markup built by html through once, without escaping it twice', () => {
    const inner = html`<b>${'a&b'}</b>`
    expect(html`<p>${inner}</p>`.text).toBe('<p><b>a&amp;b</b></p>')
  })

  it('escapes the items of arrays and joins them', () => {
    expect(html`<ul>${['<i>', 'x'].map((s) => html`<li>${s}</li>`)}</ul>`.text).toBe('<ul><li>&lt;i&gt;</li><li>x</li></ul>')
    expect(html`${['<', ['>']]}`.text).toBe('&lt;&gt;')
  })

  it('renders null, undefined and false as nothing, numbers as text', () => {
    expect(html`[${null}${undefined}${false}${0}${12.5}]`.text).toBe('[012.5]')
  })

  it('does not treat an object that merely looks like markup as markup', () => {
    const fake = { text: '<script>' } as unknown as string
    expect(html`${fake}`.text).toBe('[object Object]')
  })

  it('lets constants be marked as markup explicitly', () => {
    expect(html`${trusted('<br>')}`.text).toBe('<br>')
  })
})
