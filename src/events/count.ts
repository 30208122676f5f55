/**
 * The consumer of PULLS: a batch of counted pulls becomes one statistics write per repository
 * (storage/pull-stats.ts), never one per pull. A repository whose write fails (a conflict five
 * times in a row, R2 refusing) has its pulls retried in a minute; the others are acked.
 */
import type { Env } from '../env'
import type { Repo } from '../names'
import { addPulls, type PullStat } from '../storage/pull-stats'
import type { Pull } from './messages'
import { logEvent } from '../log'

export async function countPulls(messages: Message<Pull>[], env: Env): Promise<void> {
  const byRepo = new Map<string, { messages: Message<Pull>[]; pulls: Map<string, PullStat> }>()
  for (const m of messages) {
    const { repo, digest, at } = m.body
    const entry = byRepo.get(repo) ?? byRepo.set(repo, { messages: [], pulls: new Map() }).get(repo)!
    entry.messages.push(m)
    const had = entry.pulls.get(digest)
    entry.pulls.set(digest, { pulls: (had?.pulls ?? 0) + 1, last: Math.max(had?.last ?? 0, at) })
  }
  await Promise.all([...byRepo].map(async ([repo, { messages, pulls }]) => {
    try {
      await addPulls(env, repo as Repo, pulls)                                               // R2 get + R2 put
      for (const m of messages) m.ack()
    } catch (err) {
      logEvent('error', { event: 'pulls.not-written', repo, error: String(err) }) // retried
      for (const m of messages) m.retry({ delaySeconds: 60 })
    }
  }))
}
