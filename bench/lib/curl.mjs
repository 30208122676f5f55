/** curl as the bench's fastest client (the floor of the upload paths; bench/lib/uploads.mjs, stages.mjs). */
import { spawn } from 'node:child_process'

/**
 * Runs curl with `args`, the body to /dev/null; resolves { status, location } (the answer's
 * status and Location header), rejects when curl itself fails. No `Expect: 100-continue` (curl
 * asks it for bodies over 1 MiB): wrangler dev's own port never answers it, so curl would wait
 * its 1 s timeout before sending the body.
 */
export function curl(args) {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '-o', '/dev/null', '-H', 'Expect:', '-w', '%{http_code} %header{location}', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err = (err + d).slice(-2000)))
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`curl exited ${code}: ${err.trim()}`))
      const [status, location = ''] = out.trim().split(' ')
      resolve({ status: Number(status), location })
    })
  })
}
