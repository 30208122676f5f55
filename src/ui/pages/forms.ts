/** Pages with forms that write: sign in, and the confirmation before a delete. */
import type { Viewer } from '../../auth/session'
import { html, type Html } from '../html'
import { page } from '../layout'
import { manifestUrl, repoUrl } from '../urls'

export function signInPage(viewer: Viewer, next: string, error: string | null): Html {
  const body = html`${error && html`<p class="notice error" role="alert">${error}</p>`}
<form class="signin" method="post" action="/sign-in">
<input type="hidden" name="next" value="${next}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password or robot token</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`
  return page({ title: 'Sign in', viewer, path: '/sign-in', body })
}

export function confirmDeletePage(viewer: Viewer, repo: string, reference: string, isTag: boolean): Html {
  const what = isTag ? `tag ${reference}` : `manifest ${reference}`
  const body = html`<p>${isTag
    ? html`Delete the tag <strong>${reference}</strong> from <strong>${repo}</strong>? The manifest it points at stays, by digest.`
    : html`Delete the manifest <code>${reference}</code> from <strong>${repo}</strong>, with every tag that points at it? Pulls by this digest will fail.`}</p>
<form method="post" action="/r/${repo}/-/delete">
<input type="hidden" name="reference" value="${reference}">
<input type="hidden" name="csrf" value="${viewer.csrf ?? ''}">
<button type="submit" class="danger">Delete ${what}</button>
<a href="${manifestUrl(repo, reference)}">Cancel</a>
</form>`
  return page({ title: `Delete ${what}`, viewer, path: repoUrl(repo), crumbs: [['Repositories', '/'], [repo, repoUrl(repo)], ['Delete', null]], body })
}

/** A short page saying what happened (not found, refused, deleted). */
export function messagePage(viewer: Viewer, title: string, text: string, back: [string, string] = ['Repositories', '/']): Html {
  return page({ title, viewer, path: back[1], body: html`<p>${text}</p><p><a href="${back[1]}">${back[0]}</a></p>` })
}
