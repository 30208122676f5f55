/**
 * The worker's one log: structured events, each one object on one line. Workers Logs indexes
 * every field of a logged object ([observability] in wrangler.toml); `wrangler tail --format json`
 * shows it as the line's `message[0]` (docs/operating.md has queries for both).
 *
 * - `request`: one per HTTP request, written by the outer layer of the router (`observed`) once
 *   the reply is ready. Layers that learn something about the request add it with `annotate`
 *   (the route wrapper: repository and identity; the error writer: the OCI code; the sign-in
 *   throttle: the attempt); routes never log.
 * - every other event (`oidc.refused`, `error`, …) carries the id of the request it happened in,
 *   so a query joins it to that request's line; outside a request (the collector, the cron) it has none.
 *
 * What is never logged: a password, token, cookie, upload `_state`, query string or setting
 * value. The fields are typed here, so nothing else can slip into a line.
 */
import { AsyncLocalStorage } from 'node:async_hooks'

/** Who made a request, as logs name it: `alice`, `robot:ci`, `oidc:github:<sub>`, or `anonymous`. */
export type Identity = string

/** A sign-in attempt (Basic credentials, /token, the web UI's form): the name tried and how it ended. */
export interface SignInFacts {
  /** The user name, when it is a configured user, a robot or `oidc`; `(unknown)` otherwise (it may be a mistyped password). */
  user: string
  outcome: 'ok' | 'refused' | 'throttled'
}

/** The request line: one per request. */
export interface RequestLine {
  event: 'request'
  /** `cf-ray` on Cloudflare, else made up here; also the reply's X-Request-Id. */
  requestId: string
  method: string
  /** The route pattern it matched (`/v2/:name+/manifests/:reference`), `*` for none. */
  route: string
  repository: string | null
  /** A manifest's tag or digest. */
  reference: string | null
  /** A blob's or referrers subject's digest. */
  digest: string | null
  /** An upload session's id (never its `_state`). */
  upload: string | null
  status: number
  /** The OCI error code of an error reply. */
  code: string | null
  /** Request body bytes: its Content-Length, or as counted for a chunked upload body; null when unknown. */
  bytesIn: number | null
  /** Reply body bytes: its Content-Length (0 without a body); null when the reply did not declare it. */
  bytesOut: number | null
  /** Wall time until the reply's headers, in ms (a Worker's clock moves only on I/O). */
  durationMs: number
  identity: Identity
  /** CF-Connecting-IP. */
  address: string | null
  userAgent: string | null
  signIn?: SignInFacts
  /** Why a 429 was answered. */
  throttled?: 'signin' | 'signin-checks' | 'anonymous-pulls'
  /** A pull-through cache's namespace, when the repository is proxied. */
  upstream?: string
  /** The upstream could not be asked; the reply came from the cache (with a Warning). */
  stale?: boolean
}

/** Every other event; `requestId` is added when it happens inside a request. */
export type LogEvent =
  | { event: 'oidc.signed-in'; identity: Identity }
  | { event: 'oidc.refused'; issuer: string | null; reason: string }
  | { event: 'error'; message: string; stack: string | null }
  | { event: 'background.failed'; message: string; stack: string | null }
  | { event: 'health.failed'; check: 'r2' | 'kv' | 'cache'; message: string }
  | { event: 'settings.invalid'; setting: string; message: string }
  | { event: 'misconfigured'; settings: string[]; problems: string[]; [context: string]: unknown }
  | { event: 'throttle.unbound'; binding: string }
  | { event: 'gc.skipped'; reason: string }
  | { event: 'gc.finished'; run: string; dryRun: boolean; deleted: Record<string, number>; kept: { blobs: number; bytes: number } }
  | { event: 'events.not-queued'; error: string; events: unknown[] }
  | { event: 'events.message-dropped'; queue: string; id: string }
  | { event: 'events.endpoint-gone'; endpoint: string; deliveries: number }
  | { event: 'events.log-not-written'; endpoint: string; error: string; records: unknown[] }
  | { event: 'events.dead-letter'; endpoint: string; id: string; attempts: number }
  | { event: 'events.dead-letter-lost'; delivery: unknown }
  | { event: 'events.dead-letter-retry'; id: string; error: string }
  | { event: 'pulls.not-written'; repo: string; error: string }
  | { event: 'storage.write-conflict'; key: string; error: string }
  | { event: 'blob.corrupt'; digest: string; at: string; size: number; expected: number }
  | { event: 'blob.cache-mismatch'; digest: string; origin: string; expected: number }
  | { event: 'blob.read-broke'; digest: string; at: string; error: string }

type Level = 'log' | 'warn' | 'error'

/** What the layers learn about the current request while it runs. */
type Facts = Partial<Omit<RequestLine, 'event' | 'requestId'>> & { requestId: string; counted: number }

const current = new AsyncLocalStorage<Facts>()

/** Writes one event (with the current request's id). */
export function logEvent(level: Level, event: LogEvent): void {
  const requestId = current.getStore()?.requestId
  console[level](requestId ? { ...event, requestId } : { ...event })
}

/** Adds facts to the current request's line (nothing outside a request). */
export function annotate(facts: Partial<Omit<RequestLine, 'event' | 'requestId' | 'status' | 'durationMs'>>): void {
  const store = current.getStore()
  if (store) Object.assign(store, facts)
}

/** Counts request body bytes read from a body of unknown length (a chunked upload). */
export function countBodyBytes(n: number): void {
  const store = current.getStore()
  if (store) store.counted += n
}

/** The current request's id, or null outside a request. */
export const requestId = (): string | null => current.getStore()?.requestId ?? null

/** An error's message and stack, for `error` events. */
export const errorFields = (err: unknown): { message: string; stack: string | null } => ({
  message: err instanceof Error ? err.message : String(err),
  stack: err instanceof Error ? err.stack ?? null : null,
})

/**
 * The log layer around a fetch handler: the request's facts live for its whole run (background
 * work included), the reply gets X-Request-Id, and the request line is written when the reply
 * is ready.
 */
export function observed<A extends unknown[]>(fetch: (req: Request, ...rest: A) => Promise<Response>) {
  return async function observe(req: Request, ...rest: A): Promise<Response> {
    const started = Date.now()
    const facts: Facts = { requestId: requestIdOf(req.headers.get('cf-ray')), counted: 0 }
    let res: Response
    try {
      res = await current.run(facts, () => fetch(req, ...rest))
    } catch (err) {
      // The router answers every error itself; this is a bug, still worth its line.
      writeLine(req, facts, 500, started)
      throw err
    }
    const out = new Response(res.body, res)
    out.headers.set('X-Request-Id', facts.requestId)
    writeLine(req, facts, out.status, started, bytesOut(req, out))
    return out
  }
}

function writeLine(req: Request, facts: Facts, status: number, started: number, out: number | null = null): void {
  const routed = req as Request & { route?: string; params?: Record<string, string> }
  const params = routed.params ?? {}
  const { counted, requestId: id, ...learned } = facts
  const line: RequestLine = {
    event: 'request',
    requestId: id,
    method: req.method,
    route: routed.route ?? '*',
    repository: clip(params.name),
    reference: clip(params.reference),
    digest: clip(params.digest),
    upload: clip(params.uuid),
    status,
    code: null,
    bytesIn: bytesIn(req, counted),
    bytesOut: out,
    durationMs: Date.now() - started,
    identity: 'anonymous',
    address: clip(req.headers.get('cf-connecting-ip') ?? undefined),
    userAgent: clip(req.headers.get('user-agent') ?? undefined),
    ...learned,
  }
  console.log(line)
}

/** `cf-ray` when it looks like one (Cloudflare sets it; a client could send anything locally), else a new id. */
function requestIdOf(ray: string | null): string {
  if (ray && /^[0-9a-f]{16}(-[A-Z]{3})?$/i.test(ray)) return ray
  const bytes = crypto.getRandomValues(new Uint8Array(8))
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('') + '-LOCAL'
}

function bytesIn(req: Request, counted: number): number | null {
  const length = req.headers.get('content-length')
  if (length !== null && /^\d+$/.test(length)) return Number(length)
  if (!req.body) return 0
  return counted > 0 ? counted : null
}

function bytesOut(req: Request, res: Response): number | null {
  if (req.method === 'HEAD' || !res.body) return 0
  const length = res.headers.get('content-length')
  return length !== null && /^\d+$/.test(length) ? Number(length) : null
}

/** Path parameters are percent-encoded URL text; long ones are cut. */
const clip = (s: string | undefined): string | null => (s === undefined ? null : s.length > 256 ? `${s.slice(0, 256)}…` : s)
