import { router } from './router'

export default { fetch: router.fetch } satisfies ExportedHandler<import('./env').Env>
