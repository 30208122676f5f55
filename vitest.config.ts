import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: { bindings: { DELETE_ENABLED: 'true' } },
    }),
  ],
  // `*.node.test.ts` need Node (files, processes): vitest.node.config.ts runs them.
  test: { include: ['test/**/*.test.ts'], exclude: ['test/**/*.node.test.ts'], testTimeout: 60_000 },
})
