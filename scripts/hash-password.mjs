#!/usr/bin/env node
/**
 * `npm run -s hash-password -- <user>`: hashes a password for AUTH_USERS and prints, on
 * stdout, the line to put in .dev.vars:
 *
 *   AUTH_USERS='{"alice":"pbkdf2-sha256$100000$<salt base64>$<hash base64>"}'
 *
 * and, on stderr, the command that stores the same value as a Cloudflare secret. Each `$`
 * stays as it is: wrangler reads .dev.vars with dotenv's parser alone (no variable
 * expansion), and inside single quotes dotenv keeps every character, a backslash included.
 * Without a user name it prints the bare hash (`pbkdf2-sha256$…`), as before.
 *
 * The password is read from the terminal without echo, or from stdin when piped
 * (`printf %s "$PW" | npm run -s hash-password -- alice`), never from the command line, so
 * it stays out of shell history and `ps`. src/auth/passwords.ts checks the hash.
 *
 * `--iterations N` (default and maximum 100000: Workers refuse more) trades CPU per
 * login for resistance to guessing; verified credentials are cached for a minute.
 */
import { webcrypto as crypto } from 'node:crypto'

const MAX_ITERATIONS = 100_000
// User names as AUTH_USERS takes them (src/settings/auth.ts): "robot" and "oidc" are reserved.
const USER = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/
const args = process.argv.slice(2)
const at = args.indexOf('--iterations')
const iterations = at >= 0 ? Number(args[at + 1]) : MAX_ITERATIONS
if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
  console.error(`--iterations must be between 1 and ${MAX_ITERATIONS}`)
  process.exit(2)
}
const user = args.filter((a, i) => !a.startsWith('--') && !(at >= 0 && i === at + 1))[0] ?? null
if (user !== null && (!USER.test(user) || user === 'robot' || user === 'oidc')) {
  console.error('a user name is 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit (robots live in KV; "oidc" is how CI jobs sign in)')
  process.exit(2)
}

const password = process.stdin.isTTY ? await promptTwice() : (await readStdin()).replace(/\r?\n$/, '')
if (!password) {
  console.error('empty password')
  process.exit(2)
}
const salt = crypto.getRandomValues(new Uint8Array(16))
const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveBits'])
const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, 256)
const b64 = (bytes) => Buffer.from(bytes).toString('base64')
const hash = `pbkdf2-sha256$${iterations}$${b64(salt)}$${b64(new Uint8Array(bits))}`
if (user === null) {
  console.log(hash)
} else {
  // Base64 and the user name hold no quote, backslash or space: both lines paste as printed.
  const json = JSON.stringify({ [user]: hash })
  console.log(`AUTH_USERS='${json}'`)
  console.error(`# the line above goes in .dev.vars as it is (each $ plain, inside single quotes); on Cloudflare:`)
  console.error(`echo '${json}' | npx wrangler secret put AUTH_USERS`)
  console.error(`# several users: one JSON object, {"${user}":"…","bob":"…"}`)
}

async function readStdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

async function promptTwice() {
  const first = await prompt('Password: ')
  const again = await prompt('Again: ')
  if (first !== again) {
    console.error('the passwords differ')
    process.exit(2)
  }
  return first
}

/** Reads one line from the terminal without echoing it. */
function prompt(question) {
  return new Promise((resolve) => {
    process.stderr.write(question)
    const stdin = process.stdin
    stdin.setRawMode(true)
    stdin.resume()
    let line = ''
    const onData = (buf) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          stdin.setRawMode(false)
          stdin.pause()
          stdin.off('data', onData)
          process.stderr.write('\n')
          resolve(line)
          return
        }
        if (ch === '\u0003') process.exit(130)
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1)
        else line += ch
      }
    }
    stdin.on('data', onData)
  })
}
