/**
 * The collector bench (bench/gc.mjs): bench/gc/*.bench-test.ts inside workerd with the project's
 * bindings, apart from `npm test`. It prints one `BENCH_GC <json>` line; BENCH_GC_OBJECTS sets the registry's size.
 */
import { fileURLToPath } from 'node:url'
import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'

const root = fileURLToPath(new URL('..', import.meta.url))

export default defineConfig({
  root,
  plugins: [cloudflareTest({ wrangler: { configPath: './wrangler.toml' }, miniflare: { bindings: { DELETE_ENABLED: 'true', BENCH_GC_OBJECTS: process.env.BENCH_GC_OBJECTS ?? '49400', BENCH_GC_SHARD_SCALE: process.env.BENCH_GC_SHARD_SCALE ?? '1' } } })],
  test: { include: ['bench/gc/*.bench-test.ts'], testTimeout: 1_800_000, hookTimeout: 1_800_000 },
})
