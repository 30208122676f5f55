/**
 * What is wrong with a JSON setting's *shape*, for the error that fails closed: never a
 * character of its content (AUTH_USERS holds password hashes), only what a person can
 * fix by looking at how they wrote it.
 */

/** `<setting> is not valid JSON: <what its shape says>`. */
export function notJsonError(setting: string, value: string, expected: '{' | '['): Error {
  return new Error(`${setting} is not valid JSON: ${shapeOf(value, expected)}`)
}

function shapeOf(value: string, expected: '{' | '['): string {
  const v = value.trim()
  // .dev.vars is read by dotenv without variable expansion: inside single quotes every
  // character stays as written, so a `\$` reaches the worker as backslash-dollar.
  if (v.includes('\\$')) {
    return 'it contains \\$ (a backslash before a $). In .dev.vars write each $ as it is, the whole value in single quotes (docs/authentication.md)'
  }
  if (/^(['"`]).*\1$/s.test(v) && v.length >= 2) return 'it is wrapped in quotes, which became part of the value'
  if (!v.startsWith(expected)) return `it does not start with ${expected}`
  try {
    JSON.parse(v)
  } catch (err) {
    // V8's messages may quote the text; keep only where parsing stopped.
    const at = /position (\d+)/.exec(String(err))?.[1]
    return at ? `parsing stops at character ${Number(at) + 1} of ${v.length}` : `it is cut short or malformed (${v.length} characters)`
  }
  return 'it parses'
}

/** What is wrong with a password hash's shape (`pbkdf2-sha256$<iterations>$<salt>$<hash>`). */
export function hashShape(value: unknown): string {
  if (typeof value !== 'string') return 'it is not a string'
  if (value.includes('\\')) return 'it contains a backslash (write each $ as it is)'
  const fields = value.split('$').length
  if (fields !== 4) {
    return `it has ${fields} $-separated field${fields === 1 ? '' : 's'}, not 4 (a $word expanded away? .env files and double-quoted shell strings expand them)`
  }
  return 'it is not pbkdf2-sha256$<iterations ≤ 100000>$<salt>$<hash>'
}
