import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { EXIT } from '../../tool/core/errors.mjs'
import { configPaths, credentialsFor, loadConfig, parseCreds } from '../../tool/node/credentials.mjs'

const b64 = (s: string) => Buffer.from(s).toString('base64')

describe('credentials from ~/.docker/config.json', () => {
  let dir: string
  let path: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-registry-creds-'))
    path = process.env.PATH ?? ''
  })
  afterEach(async () => {
    process.env.PATH = path
    await rm(dir, { recursive: true, force: true })
  })

  it('decodes auths[host].auth (base64 user:password; the password may hold colons)', async () => {
    const config = { auths: { 'registry.example.com': { auth: b64('alice:pa:ss') }, 'localhost:8870': { auth: b64('bob:x') } } }
    expect(await credentialsFor(config, 'registry.example.com')).toEqual({ username: 'alice', password: 'pa:ss' })
    expect(await credentialsFor(config, 'localhost:8870')).toEqual({ username: 'bob', password: 'x' })
    expect(await credentialsFor(config, 'other.example.com')).toBeNull()
  })

  it('matches keys written as URLs, and Docker Hub under https://index.docker.io/v1/', async () => {
    const config = { auths: { 'https://registry.example.com/v2/': { auth: b64('a:b') }, 'https://index.docker.io/v1/': { auth: b64('hub:pw') } } }
    expect(await credentialsFor(config, 'registry.example.com')).toEqual({ username: 'a', password: 'b' })
    expect(await credentialsFor(config, 'docker.io')).toEqual({ username: 'hub', password: 'pw' })
  })

  it('prefers an identity token (refresh token) that docker login stored', async () => {
    const config = { auths: { 'r.example.com': { auth: b64('alice:'), identitytoken: 'refresh-123' } } }
    expect(await credentialsFor(config, 'r.example.com')).toEqual({ identityToken: 'refresh-123' })
  })

  it('refuses a malformed auth with the exit status for auth failures', async () => {
    const config = { auths: { 'r.example.com': { auth: b64('no-colon') } } }
    await expect(credentialsFor(config, 'r.example.com')).rejects.toMatchObject({ exitCode: EXIT.AUTH })
  })

  it('asks docker-credential-<helper> get (credHelpers per host, credsStore for the rest), falling back to auths', async () => {
    // Real helpers on PATH: each prints what it was asked for, or "credentials not found".
    const helper = (name: string, body: string) => writeFile(join(dir, `docker-credential-${name}`), `#!/bin/sh\nread server\n${body}\n`).then(() => chmod(join(dir, `docker-credential-${name}`), 0o755))
    await helper('pass', 'printf \'{"ServerURL":"%s","Username":"u-%s","Secret":"s3cret"}\' "$server" "$server"')
    await helper('store', 'if [ "$server" = "stored.example.com" ]; then printf \'{"Username":"<token>","Secret":"idtok"}\'; else echo "credentials not found in native keychain"; exit 1; fi')
    process.env.PATH = `${dir}:${path}`
    const config = {
      credHelpers: { 'helped.example.com': 'pass' },
      credsStore: 'store',
      auths: { 'plain.example.com': { auth: b64('p:q') } },
    }
    expect(await credentialsFor(config, 'helped.example.com')).toEqual({ username: 'u-helped.example.com', password: 's3cret' })
    expect(await credentialsFor(config, 'stored.example.com')).toEqual({ identityToken: 'idtok' })
    expect(await credentialsFor(config, 'plain.example.com')).toEqual({ username: 'p', password: 'q' })
    expect(await credentialsFor(config, 'none.example.com')).toBeNull()
  })

  it('a helper that is not installed is an auth failure naming it', async () => {
    await expect(credentialsFor({ credsStore: 'absent-helper-xyz' }, 'r.example.com')).rejects.toMatchObject({
      exitCode: EXIT.AUTH, message: expect.stringMatching(/docker-credential-absent-helper-xyz/),
    })
  })

  it('reads $REGISTRY_AUTH_FILE first, then $DOCKER_CONFIG/config.json', async () => {
    expect(configPaths({ REGISTRY_AUTH_FILE: '/a/auth.json', DOCKER_CONFIG: '/d', HOME: '/h' })).toEqual(['/a/auth.json', '/d/config.json'])
    expect(configPaths({ HOME: '/h' })).toEqual(['/h/.docker/config.json'])
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'x.example.com': { auth: b64('x:y') } } }))
    const config = await loadConfig([join(dir, 'missing.json'), join(dir, 'config.json')])
    expect(await credentialsFor(config, 'x.example.com')).toEqual({ username: 'x', password: 'y' })
    expect(await loadConfig([join(dir, 'missing.json')])).toEqual({})
  })

  it('--creds user:password keeps colons in the password; no colon is a usage error', () => {
    expect(parseCreds('robot:ci:tok:en')).toEqual({ username: 'robot', password: 'ci:tok:en' })
    expect(() => parseCreds('alice')).toThrow(expect.objectContaining({ exitCode: EXIT.USAGE }))
  })
})
