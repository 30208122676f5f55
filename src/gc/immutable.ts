/**
 * IMMUTABLE_TAGS: tags that, once set, may not move to another manifest nor be deleted.
 *
 *   IMMUTABLE_TAGS = '["v*", {"repos": "prod/*", "tags": ["release-*", "stable"]}]'   or   'v*,stable'
 *
 * A string is a tag pattern for every repository; an object limits patterns to repositories.
 * `*` matches one or more characters (AUTH_RULES syntax). Re-pushing the same manifest to
 * such a tag is allowed (idempotent); moving or deleting it answers 403 DENIED naming the rule.
 * What such a tag reaches (an index's children, every config and layer) is pinned when it is
 * pushed, and deleting any of it by digest answers 403 DENIED too (`assertNotPinned`).
 */
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { globMatch } from '../glob'
import { parseBoundedJson } from '../json'
import { handlerFor } from '../manifests'
import { isObject, type Parsed } from '../manifests/handler'
import type { Digest, Repo } from '../names'
import { parseSetting, settings } from '../settings'
import type { ImmutableRule } from '../settings/gc'
import { getManifest } from '../storage/manifests'
import { listPins } from '../storage/pins'
import { readTagRecord } from '../storage/tags'

export type { ImmutableRule } from '../settings/gc'

/** The rules of IMMUTABLE_TAGS (src/settings/gc.ts). CPU only. */
export const immutableRules = (env: Env): ImmutableRule[] => settings(env).IMMUTABLE_TAGS

/** Parses IMMUTABLE_TAGS alone; throws a SettingsError naming each problem. */
export const parseImmutable = (json: string | undefined): ImmutableRule[] => parseSetting('IMMUTABLE_TAGS', json)

/** The rule making `tag` of `repo` immutable, as `IMMUTABLE_TAGS[i] "pattern"`, or null. CPU only. */
export function immutableRule(env: Env, repo: string, tag: string): string | null {
  for (const rule of immutableRules(env)) {
    if (rule.repos && !rule.repos.some((p) => globMatch(p, repo))) continue
    const hit = rule.tags.find((p) => globMatch(p, tag))
    if (hit) return `${rule.name} "${hit}"`
  }
  return null
}

/** 403 DENIED, its message naming the rule (docker prints the message). */
export function immutableDenied(repo: string, tag: string, rule: string, what: 'moved' | 'deleted'): RegistryError {
  return new RegistryError('DENIED', { tag, rule }, {}, { message: `tag ${repo}:${tag} is immutable and cannot be ${what} (${rule})` })
}

/** Whether any rule can cover a tag of `repo` (CPU only): without one, no check costs a call. */
export function repoHasImmutableRules(env: Env, repo: string): boolean {
  return immutableRules(env).some((rule) => !rule.repos || rule.repos.some((p) => globMatch(p, repo)))
}

// ---------------------------------------------------------------------------------------------
// Reach: an immutable tag protects what it reaches (issue 19), through pins (storage/pins.ts).

/** Most manifests and blobs one push to an immutable tag may pin (each 1 R2 put, once). */
export const MAX_PINS = 2000
/** Most child manifests read to find what an index reaches (1 R2 get each, CHILD_READS_AT_ONCE at a time). */
export const MAX_PIN_READS = 500
const CHILD_READS_AT_ONCE = 4
/** Pins of one digest checked per delete (1 KV get each); more, all stale, refuse to be safe. */
const PIN_CHECKS = 10

/**
 * Every digest the manifest `root` reaches: itself, its blobs, its child manifests and, read from
 * R2, theirs (nested indexes too). Costs 1 R2 get per child manifest, at most MAX_PIN_READS; a
 * reach over MAX_PINS digests, or needing more reads, is refused (400 MANIFEST_INVALID) before
 * anything is written, since what it reaches could not all be protected.
 */
export async function reachOf(env: Env, repo: Repo, root: Digest, parsed: Parsed): Promise<Digest[]> {
  const reach = new Set<Digest>([root, ...parsed.blobs])
  let queue = parsed.manifests.map((m) => m.digest)
  let reads = 0
  const tooMuch = () =>
    new RegistryError('MANIFEST_INVALID', {
      reason: `a manifest pushed to an immutable tag may reach at most ${MAX_PINS} manifests and blobs, reading at most ${MAX_PIN_READS} child manifests (IMMUTABLE_TAGS)`,
    })
  while (queue.length > 0) {
    const fresh = [...new Set(queue)].filter((d) => !reach.has(d))
    queue = []
    for (const d of fresh) reach.add(d)
    for (let i = 0; i < fresh.length; i += CHILD_READS_AT_ONCE) {
      const batch = fresh.slice(i, i + CHILD_READS_AT_ONCE)
      reads += batch.length
      if (reads > MAX_PIN_READS) throw tooMuch()
      // Independent reads, a few at once: each child is up to MANIFEST_MAX_BYTES.
      const children = await Promise.all(batch.map((d) => childRefs(env, repo, d)))           // R2 get each
      for (const refs of children) {
        for (const b of refs.blobs) reach.add(b)
        queue.push(...refs.manifests)
      }
    }
    if (reach.size > MAX_PINS) throw tooMuch()
  }
  if (reach.size > MAX_PINS) throw tooMuch()
  return [...reach]
}

/** What a stored child manifest names; nothing when it cannot be read as one (a leaf). 1 R2 get. */
async function childRefs(env: Env, repo: Repo, digest: Digest): Promise<{ blobs: Digest[]; manifests: Digest[] }> {
  const none = { blobs: [], manifests: [] }
  const stored = await getManifest(env, repo, digest)
  const handler = stored && handlerFor(stored.mediaType)
  if (!stored || !handler) return none
  const bytes = new Uint8Array(stored.bytes)
  const json = parseBoundedJson(bytes)
  if (!('value' in json) || !isObject(json.value)) return none
  try {
    const parsed = await handler.parse(json.value, bytes, { repo, tag: null, mediaType: stored.mediaType })
    return { blobs: parsed.blobs, manifests: parsed.manifests.map((m) => m.digest) }
  } catch {
    return none
  }
}

/**
 * 403 DENIED when an immutable tag reaches `digest` (a manifest or a blob of `repo`): a pin on it
 * whose tag still names the pin's root and still matches a rule. Free when no rule covers the
 * repository; else 1 R2 list, +1 KV get per pin checked (at most PIN_CHECKS, stopping at the first
 * that holds). Pins that no longer hold (the rule was removed, the push that wrote them failed)
 * are ignored; more than PIN_CHECKS of them refuse, to be safe.
 */
export async function assertNotPinned(env: Env, repo: Repo, digest: Digest, what: 'manifest' | 'blob'): Promise<void> {
  if (!repoHasImmutableRules(env, repo)) return
  const pins = await listPins(env, repo, digest)                                         // R2 list
  for (const pin of pins.slice(0, PIN_CHECKS)) {
    const rule = immutableRule(env, repo, pin.tag)
    if (!rule) continue
    const record = await readTagRecord(env, repo, pin.tag)                               // KV get
    if (record?.digest === pin.root) throw reachDenied(repo, digest, what, pin.tag, rule)
  }
  if (pins.length > PIN_CHECKS) {
    const [pin] = pins
    throw reachDenied(repo, digest, what, pin!.tag, immutableRule(env, repo, pin!.tag) ?? 'IMMUTABLE_TAGS')
  }
}

function reachDenied(repo: string, digest: string, what: 'manifest' | 'blob', tag: string, rule: string): RegistryError {
  return new RegistryError('DENIED', { digest, tag, rule }, {}, {
    message: `${what} ${digest} is part of ${repo}:${tag}, an immutable tag, and cannot be deleted (${rule})`,
  })
}
