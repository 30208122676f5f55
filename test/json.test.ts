/** src/json.ts: JSON depth and size are checked in one pass over the bytes, before parsing. */
import { describe, expect, it } from 'vitest'
import { jsonOverLimits, MAX_JSON_DEPTH, MAX_JSON_VALUES, parseBoundedJson } from '../src/json'

const bytes = (s: string) => new TextEncoder().encode(s)
const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth)
const nestedObjects = (depth: number) => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1)

describe('jsonOverLimits', () => {
  it(`accepts nesting ${MAX_JSON_DEPTH} deep and refuses ${MAX_JSON_DEPTH + 1}, arrays and objects alike`, () => {
    expect(jsonOverLimits(bytes(nested(MAX_JSON_DEPTH)))).toBeNull()
    expect(jsonOverLimits(bytes(nested(MAX_JSON_DEPTH + 1)))).toBe(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`)
    expect(jsonOverLimits(bytes(nestedObjects(MAX_JSON_DEPTH)))).toBeNull()
    expect(jsonOverLimits(bytes(nestedObjects(MAX_JSON_DEPTH + 1)))).toMatch(/nested deeper/)
  })

  it(`accepts ${MAX_JSON_VALUES} values and refuses one more (a container and each comma count once)`, () => {
    const array = (n: number) => `[${Array.from({ length: n }, () => '0').join(',')}]`
    // [0,0,…] of n elements counts 1 + (n - 1).
    expect(jsonOverLimits(bytes(array(MAX_JSON_VALUES)))).toBeNull()
    expect(jsonOverLimits(bytes(array(MAX_JSON_VALUES + 1)))).toBe(`more than ${MAX_JSON_VALUES} JSON values`)
  })

  it('skips strings: brackets, commas and escaped quotes inside them count for nothing', () => {
    const s = JSON.stringify({ a: '['.repeat(1000) + ','.repeat(MAX_JSON_VALUES * 2) + '\\"[[[' + '\\', b: ['"]"'] })
    expect(jsonOverLimits(bytes(s))).toBeNull()
    expect(JSON.parse(s).b).toEqual(['"]"'])
  })

  it('refuses a 4 MiB body of nested arrays (the issue\'s case) before parsing it', () => {
    const half = 2 * 1024 * 1024
    const body = bytes('['.repeat(half) + ']'.repeat(half))
    expect(parseBoundedJson(body)).toEqual({ refused: `JSON nested deeper than ${MAX_JSON_DEPTH} levels (the limit)` })
  })

  it('leaves malformed text to JSON.parse: an unterminated string is not over the limits, and not JSON', () => {
    expect(jsonOverLimits(bytes('{"a": "x'))).toBeNull()
    expect(parseBoundedJson(bytes('{"a": "x'))).toEqual({ refused: 'not valid JSON' })
    expect(parseBoundedJson(bytes('{"a": 1}'))).toEqual({ value: { a: 1 } })
    expect(parseBoundedJson(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))).toEqual({ refused: 'not valid JSON' })
  })
})
