#!/usr/bin/env node
/**
 * `npm run hash-password`: prints the PBKDF2-SHA256 hash of a password for AUTH_USERS,
 * as `pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>` (src/auth/passwords.ts
 * checks it). The password is read from the terminal without echo, or from stdin when
 * piped (`printf %s "$PW" | npm run -s hash-password`), never from the command line,
 * so it stays out of shell history and `ps`.
 *
 * `--iterations N` (default and maximum 100000: Workers refuse more) trades CPU per
 * login for resistance to guessing; verified credentials are cached for a minute.
 */
import { webcrypto as crypto } from 'node:crypto'

const MAX_ITERATIONS = 100_000
const args = process.argv.slice(2)
const at = args.indexOf('--iterations')
const iterations = at >= 0 ? Number(args[at + 1]) : MAX_ITERATIONS
if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
  console.error(`--iterations must be between 1 and ${MAX_ITERATIONS}`)
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
console.log(`pbkdf2-sha256$${iterations}$${b64(salt)}$${b64(new Uint8Array(bits))}`)
if (process.stdout.isTTY) console.error('(in .dev.vars, write each $ as \\$: wrangler expands $NAME there)')

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
