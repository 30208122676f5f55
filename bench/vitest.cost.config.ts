/**
 * The cost bench: runs bench/cost/*.bench-test.ts inside workerd with the project's
 * own bindings (simulated R2, KV, Cache API), apart from `npm test`. bench/run.mjs
 * runs it and reads the `BENCH_COST` lines it prints.
 */
import { fileURLToPath } from 'node:url'
import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'

const root = fileURLToPath(new URL('..', import.meta.url))

export default defineConfig({
  root,
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: { bindings: { DELETE_ENABLED: 'true' } },
    }),
  ],
  test: {
    include: ['bench/cost/*.bench-test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
})
