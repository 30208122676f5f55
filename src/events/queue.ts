/**
 * The worker's queue() handler: it consumes its own EVENTS (deliveries) and PULLS (counted
 * pulls) queues. Each message is told by what it holds, not by its queue's name (which differs
 * per deployment); one that is neither is dropped (logged). A dead-letter queue attached as a
 * consumer is delivered again like EVENTS (docs/events.md).
 */
import type { Env } from '../env'
import { countPulls } from './count'
import { deliver } from './deliver'
import { isDelivery, isPull, type Delivery, type Pull } from './messages'
import { logEvent } from '../log'

export async function consume(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const deliveries: Message<Delivery>[] = []
  const pulls: Message<Pull>[] = []
  for (const m of batch.messages) {
    if (isDelivery(m.body)) deliveries.push(m as Message<Delivery>)
    else if (isPull(m.body)) pulls.push(m as Message<Pull>)
    else {
      logEvent('error', { event: 'events.message-dropped', queue: batch.queue, id: m.id }) // neither a delivery nor a counted pull
      m.ack()
    }
  }
  await Promise.all([deliveries.length && deliver(deliveries, env), pulls.length && countPulls(pulls, env)])
}
