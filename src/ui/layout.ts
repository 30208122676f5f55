/** The page shell every UI page shares, and the headers every UI reply carries. */
import type { Viewer } from '../auth/session'
import { assetVersion } from './assets'
import { html, type Html } from './html'

/**
 * No inline script or style at all, so injected markup could not run even if escaping failed;
 * forms may only post here; no framing (clickjacking a delete button).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ')

export interface PageOptions {
  title: string
  viewer: Viewer
  /** Where the page is, for the sign-in form's return. */
  path: string
  /** Breadcrumb links above the title: [text, href] (the last one may have no href). */
  crumbs?: [string, string | null][]
  body: Html
}

export function page({ title, viewer, path, crumbs, body }: PageOptions): Html {
  const v = assetVersion()
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${title} · registry</title>
<link rel="icon" href="/ui/icon.svg?v=${v}" type="image/svg+xml">
<link rel="stylesheet" href="/ui/app.css?v=${v}">
<script src="/ui/app.js?v=${v}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<a class="brand" href="/">registry</a>
<nav aria-label="Main">
<a href="/">Repositories</a>
${viewer.global && html`<a href="/storage">Storage</a>`}
${viewer.admin && html`<a href="/events">Events</a>`}
${account(viewer, path)}
</nav>
</header>
<main id="main" tabindex="-1">
${crumbs && html`<p class="crumbs">${crumbs.map(([text, href], i) => html`${i > 0 && ' / '}${href ? html`<a href="${href}">${text}</a>` : text}`)}</p>`}
<h1>${title}</h1>
${body}
</main>
</body>
</html>`
}

function account(viewer: Viewer, path: string): Html | null {
  if (!viewer.authEnabled) return null
  if (viewer.user === null) return html`<a href="/sign-in?next=${encodeURIComponent(path)}">Sign in</a>`
  return html`<span>Signed in as <strong>${viewer.user}</strong></span>
<form method="post" action="/sign-out"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit">Sign out</button></form>`
}

/** An HTML reply: private (never cached by a shared cache), with the UI's security headers. */
export function htmlResponse(body: Html, viewer: Viewer | null, status = 200, extra: Record<string, string> = {}): Response {
  const headers = new Headers({
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'same-origin',
    'Cache-Control': 'no-store',
    Vary: 'Cookie',
    ...extra,
  })
  if (viewer?.setCookie) headers.append('Set-Cookie', viewer.setCookie)
  return new Response(body.text, { status, headers })
}

/** `<time>` with a machine-readable value (the script shows it in local time). */
export const time = (ms: number | undefined | null, text: string): Html =>
  ms ? html`<time datetime="${new Date(ms).toISOString()}">${text}</time>` : html`${text}`
