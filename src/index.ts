import { settings, type Env } from './env'
import { startRun } from './gc/workflow'
import { router } from './router'

export { GcWorkflow } from './gc/workflow'
export { UntagWorkflow } from './gc/untag'

export default {
  fetch: router.fetch,
  /**
   * The Cron Trigger (wrangler.toml [triggers], off by default): a default-mode collection;
   * none while READ_ONLY (a real run writes, as /admin/gc refuses then too).
   */
  scheduled: (_event, env, ctx) => {
    if (settings(env).readOnly) return console.log('READ_ONLY = "true": the scheduled collection is skipped')
    ctx.waitUntil(startRun(env, { dryRun: false, untagged: false, repo: null }))
  },
} satisfies ExportedHandler<Env>
