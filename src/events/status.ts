/** What became of each NOTIFICATIONS endpoint's deliveries: `/admin/events` and the web UI's Events page. */
import type { Env } from '../env'
import { notificationSettings } from '../settings'
import { readDeliveryLog } from '../storage/deliveries'

/** Per NOTIFICATIONS endpoint: where it goes (the URL without its query, which may hold a token) and its log. */
export async function endpointReports(env: Env) {
  const { endpoints } = notificationSettings(env)
  return Promise.all(endpoints.map(async (e) => {
    const log = await readDeliveryLog(env, e.name)                                          // R2 get
    const u = new URL(e.url)
    return {
      name: e.name,
      url: `${u.origin}${u.pathname}${u.search ? '?…' : ''}`,
      format: e.format,
      actions: e.actions,
      deadLetters: log.deadLetters,
      deliveries: log.deliveries,
    }
  }))
}
