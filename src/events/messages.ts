/** What goes on the queues (docs/events.md "Delivery"). */
import { parseRepo, tryDigest } from '../names'
import type { RegistryEvent } from './event'

/**
 * EVENTS: the events of one change for one endpoint, delivered as one request (distribution)
 * or one request per event (CloudEvents). `id` is the `webhook-id` every attempt carries: the
 * event's own id when it is alone, else an id of its own.
 */
export interface Delivery {
  endpoint: string
  id: string
  events: RegistryEvent[]
}

/** PULLS: one counted pull (a manifest GET answered 200), `at` in ms. */
export interface Pull {
  repo: string
  digest: string
  at: number
}

export const isDelivery = (x: unknown): x is Delivery =>
  typeof x === 'object' && x !== null && typeof (x as Delivery).endpoint === 'string' &&
  typeof (x as Delivery).id === 'string' && Array.isArray((x as Delivery).events)

export const isPull = (x: unknown): x is Pull =>
  typeof x === 'object' && x !== null && typeof (x as Pull).repo === 'string' && tryRepo((x as Pull).repo) &&
  tryDigest((x as Pull).digest) !== null && Number.isFinite((x as Pull).at)

const tryRepo = (name: string): boolean => {
  try {
    parseRepo(name)
    return true
  } catch {
    return false
  }
}
