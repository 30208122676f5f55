import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'
import { unstable_readConfig } from 'wrangler'

/**
 * The Rate Limiting bindings of wrangler.toml (src/auth/throttle.ts) count per key for the whole
 * run, and most tests sign in from no address: under the shipped limits, one test's wrong
 * passwords would throttle another's. So the bindings get limits no test reaches, and the
 * throttle tests get the shipped ones, read from wrangler.toml, as `SHIPPED_<name>`.
 */
const shipped: { name: string; simple: { limit: number; period: number } }[] = unstable_readConfig({ config: './wrangler.toml' }).ratelimits
const ratelimits = Object.fromEntries(shipped.flatMap((r) => [
  [r.name, { simple: { limit: 1_000_000, period: 60 } }],
  [`SHIPPED_${r.name}`, { simple: { limit: r.simple.limit, period: r.simple.period } }],
]))

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: { bindings: { DELETE_ENABLED: 'true' }, ratelimits },
    }),
  ],
  test: {
    // `*.node.test.ts` need Node (files, processes): vitest.node.config.ts runs them.
    include: ['test/**/*.test.ts'],
    exclude: ['test/**/*.node.test.ts'],
    testTimeout: 60_000,
    // Every request writes its log line (src/log.ts); test/log.test.ts checks them. Printed, they
    // would bury the output, so they are dropped here (other events still show).
    onConsoleLog: (log) => !/^\{\s*event: (\x1b\[\d+m)?'request'/.test(log),
  },
})
