import type { Env } from './env'
import { startRun } from './gc/workflow'
import { router } from './router'

export { GcWorkflow } from './gc/workflow'

export default {
  fetch: router.fetch,
  /** The Cron Trigger (wrangler.toml [triggers], off by default): a default-mode collection. */
  scheduled: (_event, env, ctx) => ctx.waitUntil(startRun(env, { dryRun: false, untagged: false, repo: null })),
} satisfies ExportedHandler<Env>
