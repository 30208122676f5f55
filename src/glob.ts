/**
 * The one wildcard of every pattern setting (AUTH_RULES, RETENTION, IMMUTABLE_TAGS, UPSTREAMS'
 * `repositories`): `*` stands for one or more characters, `/` included; the rest is literal.
 */

/**
 * Whether `name` matches `pattern`. The classic two-pointer wildcard walk (backtracking only to
 * the last `*`): O(n·m), no regex, so no pattern an operator writes can make it slow.
 */
export function globMatch(pattern: string, name: string): boolean {
  let p = 0
  let s = 0
  let star = -1
  let resume = 0
  while (s < name.length) {
    if (pattern[p] === '*') {
      // `*` takes one character now (it may not be empty), more on backtracking.
      star = p++
      resume = ++s
    } else if (p < pattern.length && pattern[p] === name[s]) {
      p++
      s++
    } else if (star >= 0) {
      p = star + 1
      s = ++resume
    } else {
      return false
    }
  }
  return p === pattern.length
}
