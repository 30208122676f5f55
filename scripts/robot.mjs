#!/usr/bin/env node
/**
 * `npm run robot -- create <name>`: a robot account for CI. Prints its token once (keep it
 * as a CI secret) and the `wrangler kv key put` command that stores only the token's
 * SHA-256 in KV, for the deployed registry (--remote) and for `npm start` (--local).
 * `npm run robot -- revoke <name>`: the `wrangler kv key delete` commands that end it.
 *
 * The robot signs in as user `robot:<name>` with the token as password; AUTH_RULES
 * names it the same way. The KV key and record are those of src/storage/keys.ts
 * (`auth/robots/<name>`) and src/auth/robots.ts (`{"sha256", "created"}`).
 */
import { createHash, randomBytes } from 'node:crypto'

const NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/
const [command, name, ...rest] = process.argv.slice(2)

if (!['create', 'revoke'].includes(command) || !name || rest.length > 0) usage()
if (name.length > 64 || !NAME.test(name)) {
  console.error(`robot names are lowercase letters and digits, separated by . _ or - (at most 64): "${name}"`)
  process.exit(2)
}
const key = `auth/robots/${name}`

if (command === 'create') {
  const token = `erbt_${randomBytes(32).toString('base64url')}`
  const record = JSON.stringify({ sha256: createHash('sha256').update(token).digest('hex'), created: new Date().toISOString() })
  console.log(`Robot "${name}". Its token, shown only now (store it as a CI secret):

  ${token}

It signs in as user  robot:${name}  with the token as password, e.g.
  docker login <registry> -u robot:${name} --password-stdin <<< "$TOKEN"

Store its hash in the registry's KV (only the hash; the token is not recoverable):
  deployed:    npx wrangler kv key put --binding LINKS --remote '${key}' '${record}'
  npm start:   npx wrangler kv key put --binding LINKS --local '${key}' '${record}'

Then let it do something in AUTH_RULES, e.g.
  {"repos": "team-a/*", "users": ["robot:${name}"], "actions": ["pull", "push"]}`)
} else {
  console.log(`Revoke robot "${name}" by deleting its KV record:
  deployed:    npx wrangler kv key delete --binding LINKS --remote '${key}'
  npm start:   npx wrangler kv key delete --binding LINKS --local '${key}'

Its sign-ins and refresh tokens stop working within about two minutes (KV propagation,
then each isolate's one-minute cache); access tokens it already holds live out their
5 minutes.`)
}

function usage() {
  console.error('usage: npm run robot -- create <name>\n       npm run robot -- revoke <name>')
  process.exit(2)
}
