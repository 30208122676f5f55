/** What starts a collection run (admin endpoint, cron, scripts/gc.mjs). */
export interface RunParams {
  /** Report what would be deleted; write nothing at all. */
  dryRun: boolean
  /** Also delete manifests no tag reaches (distribution's --delete-untagged). */
  untagged: boolean
  /** Only repositories matching this pattern (`*` = one or more characters); blobs and uploads are then left alone. */
  repo: string | null
}

/** What a run's Workflow instance is given: a run (the parent), or one shard of a run (a child, collector.ts). */
export type GcPayload = RunParams | { shard: import('./collector').ShardTask }
