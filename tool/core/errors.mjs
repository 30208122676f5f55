// @ts-check
/**
 * The tool's failures, each with the exit status scripts can rely on (docs/big-layers.md, exit statuses).
 */

/** Exit statuses, one per kind of failure. */
export const EXIT = Object.freeze({
  OK: 0,
  /** Anything unexpected (a bug, an unreadable reply). */
  FAILED: 1,
  /** Bad command line: unknown flag, malformed reference or source name. */
  USAGE: 2,
  /** The source cannot be read: missing file or tag, malformed layout or archive, `docker save` failed. */
  SOURCE: 3,
  /** The registry refused the credentials (401) or the access (403). */
  AUTH: 4,
  /** The registry refused the content: a 4xx other than auth (413 over its chunk limit, invalid manifest…). */
  REFUSED: 5,
  /** The registry or the network kept failing (5xx, resets, timeouts) after every retry. */
  UNAVAILABLE: 6,
  /** Interrupted (SIGINT); run the same command again to resume. */
  INTERRUPTED: 130,
})

/** A failure with a message for people and an exit status for scripts. */
export class ToolError extends Error {
  /**
   * @param {string} message
   * @param {number} exitCode one of EXIT
   * @param {{ status?: number, code?: string, cause?: unknown }} [extra]
   */
  constructor(message, exitCode, extra = {}) {
    super(message, { cause: extra.cause })
    this.name = 'ToolError'
    this.exitCode = exitCode
    /** HTTP status of the reply that caused it, when there was one. */
    this.status = extra.status
    /** OCI error code of that reply, when it had one. */
    this.code = extra.code
  }
}

/** A source problem (exit 3). */
export const sourceError = (/** @type {string} */ message, /** @type {unknown} */ cause = undefined) =>
  new ToolError(message, EXIT.SOURCE, { cause })

/** A command-line problem (exit 2). */
export const usageError = (/** @type {string} */ message) => new ToolError(message, EXIT.USAGE)
