/**
 * The UI's stylesheet and script, served by the worker at /ui/app.css and /ui/app.js: the
 * Content-Security-Policy allows no inline script or style, only these. Pages work without the
 * script (forms and links; a delete is confirmed on a page of its own); it adds copy buttons, live
 * filtering of the rows shown, and local times.
 */

export const APP_CSS = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--accent:#0550ae;--soft:#f6f8fa;--bar:#0969da;--danger:#cf222e}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#30363d;--accent:#58a6ff;--soft:#161b22;--bar:#388bfd;--danger:#ff7b72}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid var(--bar);outline-offset:2px}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;padding:.6rem 1rem;border-bottom:1px solid var(--line);background:var(--soft)}
header .brand{font-weight:700;text-decoration:none;color:var(--fg)}
header nav{display:flex;gap:1rem;flex-wrap:wrap;align-items:center;margin-left:auto}
header form{display:inline;margin:0}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.2rem 0 1rem;overflow-wrap:anywhere}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.crumbs{font-size:.9rem;color:var(--muted);overflow-wrap:anywhere}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;white-space:nowrap}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
td code{overflow-wrap:anywhere}
pre{background:var(--soft);border:1px solid var(--line);padding:.75rem;overflow:auto;max-height:40rem}
.muted{color:var(--muted)}
.skip{position:absolute;left:-999px;top:0;padding:.4rem .8rem;background:var(--bg)}
.skip:focus{left:.5rem;z-index:1}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.filter{display:flex;gap:.5rem;flex-wrap:wrap;margin-bottom:1rem}
.filter input{flex:1 1 12rem}
input,button,select{font:inherit;color:inherit;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:.35rem .6rem}
button{cursor:pointer;background:var(--soft)}
button.danger{color:var(--danger);border-color:var(--danger)}
.pager{display:flex;gap:1rem;margin:1rem 0}
.cmds{display:grid;grid-template-columns:auto 1fr auto;gap:.35rem .5rem;align-items:center}
.cmds label{font-size:.9rem;color:var(--muted)}
.cmds input{width:100%;min-width:0;font-family:ui-monospace,monospace;font-size:.85em}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;overflow-wrap:anywhere}
svg.bar{width:100%;height:1.5rem;display:block;margin:.5rem 0}
svg.bar rect{fill:var(--bar);stroke:var(--bg);stroke-width:1}
svg.chart{width:100%;max-height:16rem}
svg.chart .line{fill:none;stroke:var(--bar);stroke-width:2}
svg.chart .dot{fill:var(--bar)}
svg.chart text{fill:var(--muted);font-size:11px}
svg.chart .axis{stroke:var(--line)}
.notice{padding:.6rem .8rem;border:1px solid var(--line);border-radius:6px;background:var(--soft)}
.error{border-color:var(--danger)}
form.signin{display:grid;gap:.5rem;max-width:20rem}
@media (max-width:40rem){main{padding:.6rem}.hide-narrow{display:none}th,td{padding:.3rem}.cmds{grid-template-columns:1fr auto}.cmds label{grid-column:1/-1;margin-top:.3rem}}
`

export const APP_JS = `
'use strict';
document.querySelectorAll('button[data-copy]').forEach(function (b) {
  b.hidden = false;
  b.addEventListener('click', function () {
    var input = document.getElementById(b.getAttribute('data-copy'));
    var done = function () { b.textContent = 'Copied'; setTimeout(function () { b.textContent = 'Copy'; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(input.value).then(done, function () { input.select(); });
    else { input.select(); document.execCommand('copy'); done(); }
  });
});
var live = document.querySelector('input[data-filter]');
if (live) live.addEventListener('input', function () {
  var q = live.value.toLowerCase();
  document.querySelectorAll(live.getAttribute('data-filter')).forEach(function (row) {
    row.hidden = q !== '' && (row.getAttribute('data-name') || '').indexOf(q) < 0;
  });
});
document.querySelectorAll('time[datetime]').forEach(function (t) {
  var d = new Date(t.getAttribute('datetime'));
  if (!isNaN(d)) { t.title = t.textContent; t.textContent = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }); }
});
`

/**
 * The site icon (a stack of layers), declared by every page and also served at /favicon.ico,
 * which browsers and tools ask for regardless: without it every page logs a 404.
 */
export const APP_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect width="32" height="32" rx="6" fill="#0969da"/>
<path d="M16 6 27 11.5 16 17 5 11.5Z" fill="#fff"/>
<path d="M7.5 15.2 16 19.5l8.5-4.3L27 16.5 16 22 5 16.5Z" fill="#fff" opacity=".85"/>
<path d="M7.5 20.2 16 24.5l8.5-4.3L27 21.5 16 27 5 21.5Z" fill="#fff" opacity=".7"/>
</svg>
`

/** A short content hash, for URLs that can be cached for a year. */
export function assetVersion(): string {
  let h = 0x811c9dc5
  for (const c of APP_CSS + APP_JS + APP_ICON) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193)
  return (h >>> 0).toString(36)
}
