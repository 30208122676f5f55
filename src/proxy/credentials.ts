/**
 * Which UPSTREAMS entry each UPSTREAM_CREDENTIALS key names. A key names an entry by its
 * namespace (prefix, else host, else first ns) or by its url's host, and must name exactly one:
 * with two entries on one upstream (two teams mirroring ghcr.io), a key both could answer to
 * would hand one entry's credentials, and everything they can read, to the other. So a key
 * naming two entries, or an entry named by two keys, is refused when the settings are parsed.
 *
 * A function over the parsed settings (no parsing of its own), so the settings schema
 * (src/settings/) can run it as the cross-field check of the two settings. CPU only.
 */

/** An UPSTREAMS entry as far as UPSTREAM_CREDENTIALS keys can name it. */
export interface NamedUpstream {
  /** Its local namespace (prefix, else host, else first ns). */
  namespace: string
  /** Its url (an absolute http(s) URL). */
  url: string
}

/**
 * Per entry of `upstreams` (same order), its credentials or null. Throws an Error naming the
 * first problem by key and entry (never a credential's value).
 */
export function credentialsByUpstream(upstreams: readonly NamedUpstream[], credentials: Readonly<Record<string, string>>): (string | null)[] {
  const out: (string | null)[] = upstreams.map(() => null)
  const keyOf = new Map<number, string>()
  for (const [key, value] of Object.entries(credentials)) {
    const shown = JSON.stringify(key.slice(0, 64))
    const named = upstreams.flatMap((u, i) => {
      const how = u.namespace === key ? 'its namespace' : new URL(u.url).host === key ? "its url's host" : null
      return how ? [{ i, how }] : []
    })
    if (named.length === 0) throw new Error(`UPSTREAM_CREDENTIALS names no configured upstream: ${shown}`)
    if (named.length > 1) {
      const which = named.map((n) => `UPSTREAMS[${n.i}] (${n.how})`).join(' and ')
      throw new Error(`UPSTREAM_CREDENTIALS[${shown}] is ambiguous: it names ${which}; key each upstream's credentials by its prefix`)
    }
    const { i } = named[0]!
    const other = keyOf.get(i)
    if (other !== undefined) {
      throw new Error(`UPSTREAM_CREDENTIALS[${shown}] and [${JSON.stringify(other.slice(0, 64))}] both name UPSTREAMS[${i}]: keep one`)
    }
    keyOf.set(i, key)
    out[i] = value
  }
  return out
}
