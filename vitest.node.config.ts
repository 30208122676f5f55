import { defineConfig } from 'vitest/config'

/** The tool's tests that need Node itself (files, child processes): `*.node.test.ts`, run by `npm test` after the workerd ones. */
export default defineConfig({
  test: { include: ['test/**/*.node.test.ts'], environment: 'node', testTimeout: 60_000 },
})
