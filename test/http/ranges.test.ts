import { describe, expect, it } from 'vitest'
import { RegistryError } from '../../src/errors'
import { contentLength, parseContentRange, parseRange, progressRange } from '../../src/http/ranges'

function rangeError(header: string, size: number): RegistryError {
  try {
    parseRange(header, size)
  } catch (err) {
    return err as RegistryError
  }
  throw new Error(`${header} of ${size} bytes was satisfiable`)
}

describe('parseRange (blob GET Range)', () => {
  it.each([
    ['bytes=0-0', 100, { offset: 0, length: 1 }],
    ['bytes=10-19', 100, { offset: 10, length: 10 }],
    ['bytes=10-', 100, { offset: 10, length: 90 }],
    ['bytes=99-', 100, { offset: 99, length: 1 }],
    ['bytes=90-500', 100, { offset: 90, length: 10 }], // end past the blob is clamped
    ['bytes=-1', 100, { offset: 99, length: 1 }],
    ['bytes=-30', 100, { offset: 70, length: 30 }],
    ['bytes=-500', 100, { offset: 0, length: 100 }], // suffix longer than the blob: all of it
    ['  bytes=1-2  ', 100, { offset: 1, length: 2 }],
  ])('%s of %i bytes', (header, size, expected) => {
    expect(parseRange(header, size)).toEqual(expected)
  })

  it.each([
    [null],
    [''],
    ['bytes=-'],
    ['bytes=0-1,5-6'], // multiple ranges: the whole blob is a valid answer
    ['items=0-1'],
    ['bytes=a-b'],
    ['0-10'],
  ])('serves the whole blob for %j', (header) => {
    expect(parseRange(header, 100)).toBeNull()
  })

  it.each([
    ['bytes=100-', 100],
    ['bytes=100-200', 100],
    ['bytes=5-2', 100],
    ['bytes=-0', 100],
    ['bytes=0-', 0],
    ['bytes=-5', 0],
  ])('%s of %i bytes is unsatisfiable (416 with Content-Range */size)', (header, size) => {
    const err = rangeError(header, size)
    expect(err).toBeInstanceOf(RegistryError)
    expect(err.code).toBe('RANGE_INVALID')
    expect(err.headers['Content-Range']).toBe(`bytes */${size}`)
  })
})

describe('parseContentRange (upload PATCH Content-Range)', () => {
  it.each([
    ['0-0', { start: 0, end: 0 }],
    ['0-1048575', { start: 0, end: 1048575 }],
    ['bytes=5-9', { start: 5, end: 9 }],
    ['bytes 5-9', { start: 5, end: 9 }],
    ['bytes 5-9/10', { start: 5, end: 9 }],
    ['5-9/*', { start: 5, end: 9 }],
    [' 7-8 ', { start: 7, end: 8 }],
  ])('%j', (header, expected) => {
    expect(parseContentRange(header)).toEqual(expected)
  })

  it('is null when absent', () => {
    expect(parseContentRange(null)).toBeNull()
  })

  it.each([[''], ['5-'], ['-5'], ['9-5'], ['bytes=a-b'], ['5-9/x'], ['bytes:0-1'], ['0-99999999999999999999']])(
    '%j is invalid',
    (header) => {
      expect(parseContentRange(header)).toBe('invalid')
    },
  )
})

describe('progressRange', () => {
  it.each([
    [0, '0-0'],
    [1, '0-0'],
    [2, '0-1'],
    [10 * 1024 * 1024, '0-10485759'],
  ])('%i bytes received → %s', (offset, expected) => {
    expect(progressRange(offset)).toBe(expected)
  })
})

describe('contentLength', () => {
  it('reads a number', () => {
    expect(contentLength(new Headers({ 'Content-Length': '0' }))).toBe(0)
    expect(contentLength(new Headers({ 'Content-Length': '12345' }))).toBe(12345)
  })

  it('is null when absent (chunked body)', () => {
    expect(contentLength(new Headers())).toBeNull()
  })

  it.each([['-1'], ['1.5'], ['abc'], ['1e3'], ['99999999999999999999']])('rejects %j as BLOB_UPLOAD_INVALID', (raw) => {
    expect(() => contentLength(new Headers({ 'Content-Length': raw }))).toThrowError(
      expect.objectContaining({ code: 'BLOB_UPLOAD_INVALID' }),
    )
  })
})
