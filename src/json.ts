/**
 * JSON from outside, bounded before it is parsed. `JSON.parse` of a 4 MiB body of nested
 * arrays takes over a second and ~100 MiB (an isolate has 128 MB), so every body the registry
 * parses is first scanned, in one pass over its bytes that allocates nothing, for its nesting
 * depth and its number of values; past either limit it is refused without being parsed.
 *
 * Real manifests nest 5 levels (index → manifests[] → descriptor → platform → os.features[])
 * and hold a few thousand values at most (MAX_REFERENCES descriptors of ~12 values each).
 */

/** Deepest nesting of objects and arrays accepted. */
export const MAX_JSON_DEPTH = 32
/** Most values accepted: each object, array, member and element counts once (an upper bound). */
export const MAX_JSON_VALUES = 20_000

export interface JsonLimits {
  depth: number
  values: number
}

export const JSON_LIMITS: JsonLimits = { depth: MAX_JSON_DEPTH, values: MAX_JSON_VALUES }

const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * Why `bytes` (UTF-8 JSON text) is over `limits`, or null. Strings are skipped with `indexOf`, so
 * the cost is one pass over the structure; malformed text is left for `JSON.parse` to refuse.
 */
export function jsonOverLimits(bytes: Uint8Array, limits: JsonLimits = JSON_LIMITS): string | null {
  let depth = 0
  let values = 0
  const n = bytes.length
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!
    if (b === QUOTE) {
      // The closing quote: the next one not escaped by an odd run of backslashes.
      let j = i
      for (;;) {
        j = bytes.indexOf(QUOTE, j + 1)
        if (j < 0) return null
        let k = j - 1
        while (bytes[k] === BACKSLASH) k--
        if ((j - k) % 2 === 1) break
      }
      i = j
    } else if (b === 0x7b || b === 0x5b) { // { [
      if (++depth > limits.depth) return `JSON nested deeper than ${limits.depth} levels`
      if (++values > limits.values) return `more than ${limits.values} JSON values`
    } else if (b === 0x7d || b === 0x5d) { // } ]
      depth--
    } else if (b === 0x2c) { // ,
      if (++values > limits.values) return `more than ${limits.values} JSON values`
    }
  }
  return null
}

/**
 * UTF-8 JSON text → value, or a reason it is refused: over the limits (checked first, without
 * parsing), not UTF-8, or not JSON.
 */
export function parseBoundedJson(bytes: Uint8Array, limits: JsonLimits = JSON_LIMITS): { value: unknown } | { refused: string } {
  const over = jsonOverLimits(bytes, limits)
  if (over) return { refused: `${over} (the limit)` }
  try {
    return { value: JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes)) }
  } catch {
    return { refused: 'not valid JSON' }
  }
}
