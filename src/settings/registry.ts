/** The registry's own switches and limits (docs/settings.md). */
import { flag, wholeNumber } from './values'

export const DELETE_ENABLED = flag(true, '"false": every DELETE answers 405 UNSUPPORTED')

export const SCHEMA1_ENABLED = flag(false, '"true": Docker schema 1 signed manifests are accepted (signatures verified)')

export const MANIFEST_MAX_BYTES = wholeNumber({
  fallback: 4 * 1024 * 1024,
  min: 1,
  description: 'Largest manifest accepted, in bytes (the spec asks for at least 4 MiB); larger answer 413',
  message: 'must be a whole number of bytes ≥ 1',
})

export const LINK_CACHE_SECONDS = wholeNumber({
  fallback: 60,
  min: 0,
  description: "Seconds an edge location caches a repository's right to a blob (0: off)",
  message: 'must be a whole number of seconds ≥ 0',
})

export const READ_ONLY = flag(false, '"true": every write answers 405 UNSUPPORTED (maintenance); pulls work')
