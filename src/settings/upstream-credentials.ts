/**
 * Which UPSTREAMS entry each UPSTREAM_CREDENTIALS key names. A key names an entry by its
 * namespace (prefix, else host, else first ns) or by its url's host, and must name exactly one:
 * with two entries on one upstream (two teams mirroring ghcr.io), a key both could answer to
 * would hand one entry's credentials, and everything they can read, to the other. So a key
 * naming two entries, or an entry named by two keys, is refused when the settings are parsed
 * (the cross-check `credentialsNameOneUpstream` in proxy.ts). CPU only.
 */
import type { Problem } from './values'

/** An UPSTREAMS entry as far as UPSTREAM_CREDENTIALS keys can name it. */
export interface NamedUpstream {
  /** Its local namespace (prefix, else host, else first ns). */
  namespace: string
  /** Its url (an absolute http(s) URL). */
  url: string
}

/**
 * Per entry of `upstreams` (same order), its credentials or null, and every problem. A key
 * that names nothing is counted, never quoted (it may be a credential pasted in the wrong
 * place); a key that names an entry is that entry's namespace or host, so it may be shown.
 */
export function credentialsByUpstream(
  upstreams: readonly NamedUpstream[],
  credentials: ReadonlyMap<string, string>,
): { credentials: (string | null)[]; problems: Problem[] } {
  const out: (string | null)[] = upstreams.map(() => null)
  const problems: Problem[] = []
  const keyOf = new Map<number, string>()
  let n = 0
  for (const [key, value] of credentials) {
    n++
    const shown = JSON.stringify(key.slice(0, 64))
    const named = upstreams.flatMap((u, i) => {
      const how = u.namespace === key ? 'its namespace' : new URL(u.url).host === key ? "its url's host" : null
      return how ? [{ i, how }] : []
    })
    if (named.length === 0) {
      problems.push({ setting: 'UPSTREAM_CREDENTIALS', path: `[key ${n}]`, message: "names no upstream of UPSTREAMS (keys are an upstream's prefix, host, or its url's host)" })
      continue
    }
    if (named.length > 1) {
      const which = named.map((m) => `UPSTREAMS[${m.i}] (${m.how})`).join(' and ')
      problems.push({ setting: 'UPSTREAM_CREDENTIALS', path: `[${shown}]`, message: `is ambiguous: it names ${which}; key each upstream's credentials by its prefix` })
      continue
    }
    const { i } = named[0]!
    const other = keyOf.get(i)
    if (other !== undefined) {
      problems.push({ setting: 'UPSTREAM_CREDENTIALS', path: `[${shown}]`, message: `names UPSTREAMS[${i}], as [${JSON.stringify(other.slice(0, 64))}] does: keep one` })
      continue
    }
    keyOf.set(i, key)
    out[i] = value
  }
  return { credentials: out, problems }
}
