/**
 * What became of each NOTIFICATIONS endpoint's deliveries, for `/admin/events` and the web UI:
 * one R2 object per endpoint, `_registry/events/<endpoint>.json`, holding its last 100 delivery
 * attempts and how many deliveries went to the dead-letter queue. The consumer writes it once per
 * endpoint per batch (1 R2 get + 1 R2 put), never per delivery.
 */
import type { Env } from '../env'
import { readJson, updateJson } from './json-object'
import { keys } from './keys'

/** One delivery attempt. */
export interface DeliveryRecord {
  /** When it was attempted (RFC 3339). */
  time: string
  /** Its webhook-id (the event id when the delivery holds one event). */
  id: string
  events: number
  /** The endpoint's HTTP status, or null when none came (timeout, refused connection). */
  status: number | null
  error?: string
  /** Which attempt this was (1 = the first). */
  attempts: number
  /** delivered; retrying (again after `retryIn` seconds); dead (to the dead-letter queue). */
  outcome: 'delivered' | 'retrying' | 'dead'
  retryIn?: number
}

export interface DeliveryLog {
  deliveries: DeliveryRecord[]
  /** Deliveries sent to the dead-letter queue, ever. */
  deadLetters: number
}

export const DELIVERIES_KEPT = 100

/** 1 R2 get; an endpoint that never delivered has an empty log. */
export async function readDeliveryLog(env: Env, endpoint: string): Promise<DeliveryLog> {
  const log = await readJson<DeliveryLog>(env, keys.deliveryLog(endpoint))
  return { deliveries: log?.deliveries ?? [], deadLetters: log?.deadLetters ?? 0 }
}

/** Appends attempts (newest first in the log). 1 R2 get + 1 R2 put (more on a conflict). */
export async function recordDeliveries(env: Env, endpoint: string, records: DeliveryRecord[]): Promise<void> {
  const dead = records.filter((r) => r.outcome === 'dead').length
  await updateJson<DeliveryLog>(env, keys.deliveryLog(endpoint), () => ({ deliveries: [], deadLetters: 0 }), (log) => ({
    deliveries: [...[...records].reverse(), ...(Array.isArray(log.deliveries) ? log.deliveries : [])].slice(0, DELIVERIES_KEPT),
    deadLetters: (Number.isSafeInteger(log.deadLetters) ? log.deadLetters : 0) + dead,
  }))
}
