import type { Env } from './env'
import { startRun } from './gc/workflow'
import { logEvent } from './log'
import { consume } from './events/queue'
import { router } from './router'
import { logMisconfiguration, readSettings } from './settings'

export { GcWorkflow } from './gc/workflow'
export { UntagWorkflow } from './gc/untag'

export default {
  fetch: router.fetch,
  /**
   * The Cron Trigger (wrangler.toml [triggers], off by default): a default-mode collection;
   * none while READ_ONLY (a real run writes, as /admin/gc refuses then too), nor while a
   * setting is bad (fails closed, as requests do).
   */
  scheduled: (_event, env, ctx) => {
    const s = readSettings(env)
    if (!s.ok) return logMisconfiguration(s.problems, { trigger: 'cron' })
    if (s.settings.READ_ONLY) return logEvent('log', { event: 'gc.skipped', reason: 'READ_ONLY = "true": the scheduled collection is skipped' })
    ctx.waitUntil(startRun(env, { dryRun: false, untagged: false, repo: null }))
  },
  /** Deliveries of events and counted pulls (src/events/queue.ts; docs/events.md). */
  queue: (batch, env) => consume(batch, env),
} satisfies ExportedHandler<Env>
