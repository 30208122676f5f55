import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: { bindings: { DELETE_ENABLED: 'true' } },
    }),
  ],
  test: { include: ['test/**/*.test.ts'], testTimeout: 60_000 },
})
