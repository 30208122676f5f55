/**
 * The UI's one template helper: `html` is a tagged template whose interpolations are text,
 * never markup. Strings and numbers are escaped (& < > " '), so a repository name, tag,
 * label or annotation holding `<script>` renders as those characters; only values already
 * built by `html` (or `trusted`, for the few constants that are markup) pass through.
 * Arrays are joined; null, undefined and false render nothing.
 */

/** Markup built by `html`: the only thing a page may emit unescaped. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text
  }
}

type Part = Html | string | number | null | undefined | false | readonly Part[]

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text as HTML: safe in element content and in quoted attribute values. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!)

function render(part: Part): string {
  if (part === null || part === undefined || part === false) return ''
  if (part instanceof Html) return part.text
  if (Array.isArray(part)) return part.map(render).join('')
  return escapeHtml(String(part))
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!
  })
  return new Html(out)
}

/** A constant known to be markup (never data). */
export const trusted = (markup: string): Html => new Html(markup)
