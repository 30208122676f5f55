/**
 * Every error code the registry answers with, once, with its HTTP status
 * (OCI distribution-spec v1.1, "Error Codes"), and the one writer of the
 * `{"errors":[…]}` envelope (which puts the code on the request's log line).
 */
import { annotate, errorFields, logEvent } from './log'

const OCI = {
  BLOB_UNKNOWN: [404, 'blob unknown to registry'],
  BLOB_UPLOAD_INVALID: [400, 'blob upload invalid'],
  BLOB_UPLOAD_UNKNOWN: [404, 'blob upload unknown to registry'],
  DIGEST_INVALID: [400, 'provided digest did not match uploaded content'],
  MANIFEST_BLOB_UNKNOWN: [400, 'manifest references a manifest or blob unknown to registry'],
  MANIFEST_INVALID: [400, 'manifest invalid'],
  MANIFEST_UNKNOWN: [404, 'manifest unknown to registry'],
  NAME_INVALID: [400, 'invalid repository name'],
  NAME_UNKNOWN: [404, 'repository name not known to registry'],
  SIZE_INVALID: [400, 'provided length did not match content length'],
  UNAUTHORIZED: [401, 'authentication required'],
  DENIED: [403, 'requested access to the resource is denied'],
  UNSUPPORTED: [405, 'the operation is unsupported'],
  TOOMANYREQUESTS: [429, 'too many requests'],
  // Not in the spec's table, but with the statuses the spec prescribes.
  TAG_INVALID: [400, 'manifest tag did not match URI'],
  RANGE_INVALID: [416, 'requested range not satisfiable'],
  MANIFEST_TOO_LARGE: [413, 'manifest exceeds the size limit'],
  TOO_MANY_TAGS: [414, 'too many tags in one request'],
  PAGINATION_NUMBER_INVALID: [400, 'invalid number of results requested'],
  TOKEN_REQUEST_INVALID: [400, 'invalid token request'],
  NOT_FOUND: [404, 'no such route'],
  METHOD_UNKNOWN: [405, 'method not allowed'],
  // Pull-through cache (src/proxy/): the upstream failed and nothing is cached; the status is
  // the upstream's own 5xx when it gave one (502 when it gave none, 504 when it was too slow).
  UPSTREAM_UNAVAILABLE: [502, 'the upstream registry is unavailable'],
  UNKNOWN: [500, 'unknown error'],
} as const satisfies Record<string, readonly [number, string]>

export type OciCode = keyof typeof OCI

/**
 * A failure that maps to one OCI error code; `headers` ride along on the reply. `options.message`
 * replaces the table's only where the client must read more than the code (clients such as
 * skopeo and docker print the message of a code they do not know, never the detail);
 * `options.status` overrides the table's only to pass an upstream's status on (UPSTREAM_UNAVAILABLE)
 * or where the code is chosen for how clients react to it (a body over MAX_CHUNK_BYTES, a blob past
 * what R2's multipart assembles: 413 DENIED).
 */
export class RegistryError extends Error {
  constructor(
    readonly code: OciCode,
    readonly detail: unknown = null,
    readonly headers: Record<string, string> = {},
    /**
     * `message` replaces the code's stock message where the client must read why (docker prints
     * it); `status` overrides the table's where the code spans several (an upstream's 502/503/504,
     * the chunk limit's 413 DENIED).
     */
    readonly options: { message?: string; status?: number } = {},
  ) {
    super(options.message ?? OCI[code][1])
  }
}

/** Turns anything thrown by a route into the spec's error JSON; never leaks internals (the log has them). */
export function toErrorResponse(err: unknown, method = 'GET'): Response {
  if (!(err instanceof RegistryError)) logEvent('error', { event: 'error', ...errorFields(err) })
  const e = err instanceof RegistryError ? err : new RegistryError('UNKNOWN')
  annotate({ code: e.code })
  const [tableStatus] = OCI[e.code]
  const status = e.options.status ?? tableStatus
  const message = e.message
  const headers = { 'Content-Type': 'application/json', ...e.headers }
  // A HEAD reply carries no body (RFC 9110 §9.3.2); the status says it all.
  if (method === 'HEAD') return new Response(null, { status, headers })
  const body = JSON.stringify({ errors: [{ code: e.code, message, detail: e.detail }] })
  return new Response(body, { status, headers })
}
