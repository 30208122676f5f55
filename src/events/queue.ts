/**
 * The worker's queue() handler: it consumes its own EVENTS (deliveries) and PULLS (counted
 * pulls) queues, told apart by what their messages hold (a queue's name differs per deployment).
 * A dead-letter queue attached as a consumer is delivered again like EVENTS (docs/events.md).
 */
import type { Env } from '../env'
import { countBatch } from './count'
import { deliverBatch } from './deliver'
import { isPull } from './messages'

export async function consume(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  if (batch.messages.length === 0) return
  if (isPull(batch.messages[0]!.body)) await countBatch(batch, env)
  else await deliverBatch(batch, env)
}
