/** Which events an endpoint hears (NOTIFICATIONS `actions`, `repos`, `tags`, `mediaTypes`). CPU only. */
import { globMatch } from '../auth/rules'
import type { Endpoint } from '../settings/events'
import type { RegistryEvent } from './event'

/**
 * Every filter the endpoint sets must pass. `repos`, `tags` and `mediaTypes` are patterns as in
 * AUTH_RULES (`*`: one or more characters). With `tags`, only events about a tag matching one are
 * heard (a manifest delete, by any tag it removed): untagged pushes and blob events are not.
 */
export function wants(e: Endpoint, ev: RegistryEvent): boolean {
  const t = ev.target
  if (!e.actions.includes(ev.action)) return false
  if (e.repos && !e.repos.some((p) => globMatch(p, t.repository))) return false
  if (e.tags) {
    const tags = t.tag !== undefined ? [t.tag] : (t.tags ?? [])
    if (!tags.some((tag) => e.tags!.some((p) => globMatch(p, tag)))) return false
  }
  if (e.mediaTypes && !(t.mediaType !== undefined && e.mediaTypes.some((p) => globMatch(p, t.mediaType!)))) return false
  return true
}
