/** The Cron Trigger starts a default-mode collection through the Workflow binding. */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { expect, it } from 'vitest'
import worker from '../../src/index'
import { bindings } from '../helpers'
import type { Env } from '../../src/env'

it('a scheduled event starts one default-mode run (no --untagged, every repository)', async () => {
  const created: { id: string; params: unknown }[] = []
  const GC_WORKFLOW = { create: async (o: { id: string; params: unknown }) => void created.push(o) } as unknown as Env['GC_WORKFLOW']
  const ctx = createExecutionContext()
  worker.scheduled({ cron: '0 3 * * *', scheduledTime: Date.now(), type: 'scheduled', noRetry() {} } as ScheduledController, { ...bindings, GC_WORKFLOW }, ctx)
  await waitOnExecutionContext(ctx)
  expect(created).toHaveLength(1)
  expect(created[0]!.id).toMatch(/^gc-\d{8}T\d{6}Z-[0-9a-f]{8}$/)
  expect(created[0]!.params).toEqual({ dryRun: false, untagged: false, repo: null })
})

it('a scheduled event starts no run while READ_ONLY (the collector writes; only dry runs are allowed then)', async () => {
  const created: unknown[] = []
  const GC_WORKFLOW = { create: async (o: unknown) => void created.push(o) } as unknown as Env['GC_WORKFLOW']
  const ctx = createExecutionContext()
  worker.scheduled({ cron: '0 3 * * *', scheduledTime: Date.now(), type: 'scheduled', noRetry() {} } as ScheduledController, { ...bindings, GC_WORKFLOW, READ_ONLY: 'true' }, ctx)
  await waitOnExecutionContext(ctx)
  expect(created).toEqual([])
})
