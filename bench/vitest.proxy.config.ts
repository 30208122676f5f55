/** The pull-through cache's cost bench (bench/proxy/*.bench-test.ts) inside workerd; run by bench/proxy.mjs. */
import { fileURLToPath } from 'node:url'
import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'

const root = fileURLToPath(new URL('..', import.meta.url))

export default defineConfig({
  root,
  plugins: [cloudflareTest({ wrangler: { configPath: './wrangler.toml' } })],
  test: { include: ['bench/proxy/*.bench-test.ts'], testTimeout: 600_000 },
})
