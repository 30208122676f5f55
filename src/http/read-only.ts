/**
 * READ_ONLY = "true" (maintenance, migrations): a layer in front of every route answers each
 * write with 405 UNSUPPORTED and says why; reads and token requests pass. CPU only.
 */
import type { IRequest } from 'itty-router'
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { settings } from '../settings'

const READS = new Set(['GET', 'HEAD', 'OPTIONS'])

export function assertWritable(req: IRequest, env: Env): void {
  if (!settings(env).READ_ONLY || READS.has(req.method)) return
  throw readOnlyError()
}

/** The refusal of a write while READ_ONLY (also for writes outside /v2/, such as the web UI's deletes). */
export const readOnlyError = (): RegistryError =>
  new RegistryError('UNSUPPORTED', { readOnly: true }, {}, { message: 'the registry is read-only for maintenance (READ_ONLY = "true"); writes are refused, pulls work' })
