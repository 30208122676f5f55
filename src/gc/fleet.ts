/**
 * A Fleet that runs each shard in this process, its steps inside the parent's Runner under
 * `<shard>/` names: a cut anywhere (parent or shard) resumes as Workflows would. For the tests
 * and the bench; production runs shards as child Workflow instances (workflow.ts).
 */
import type { Env } from '../env'
import { runShard, type Fleet, type Runner, type ShardTask } from './collector'

export function inlineFleet(env: Env, run: Runner): Fleet {
  const tasks = new Map<string, ShardTask>()
  return {
    async start(name, task) {
      await run.do(`start ${name}`, async () => null)
      tasks.set(name, task)
    },
    result<T>(name: string) {
      const task = tasks.get(name)
      if (!task) throw new Error(`shard ${name} was not started`)
      const child: Runner = { do: (step, fn) => run.do(`${name}/${step}`, fn), sleep: (step, ms) => run.sleep(`${name}/${step}`, ms) }
      return run.do(`await ${name}`, () => runShard(env, task, child) as Promise<T>)
    },
  }
}
