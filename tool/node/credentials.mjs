// @ts-check
/**
 * Credentials as docker keeps them (docker/cli `config/configfile`, docker-credential-helpers):
 * `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`; `$REGISTRY_AUTH_FILE`, podman's and
 * skopeo's auth file in the same format, comes first when set) with
 *   credHelpers: { "<host>": "<helper>" }   run `docker-credential-<helper> get` for that host
 *   credsStore:  "<helper>"                  the same, for every other host
 *   auths:       { "<host>": { auth: base64("user:password"), identitytoken?: "<refresh token>" } }
 * Docker Hub is stored under `https://index.docker.io/v1/`.
 */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { EXIT, ToolError } from '../core/errors.mjs'
import { DOCKER_HUB } from '../core/reference.mjs'

/** @typedef {import('../core/registry.mjs').Credentials} Credentials */
/** @typedef {{ auths?: Record<string, { auth?: string, username?: string, password?: string, identitytoken?: string }>, credsStore?: string, credHelpers?: Record<string, string> }} DockerConfig */
/** @typedef {(helper: string, serverUrl: string) => Promise<{ Username?: string, Secret?: string } | null>} HelperRunner */

export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/'

/** Config files to read, first found wins. */
export function configPaths(env = process.env) {
  const paths = []
  if (env.REGISTRY_AUTH_FILE) paths.push(env.REGISTRY_AUTH_FILE)
  paths.push(join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json'))
  return paths
}

/** The first config file that exists, parsed ({} when none). @returns {Promise<DockerConfig>} */
export async function loadConfig(paths = configPaths()) {
  for (const path of paths) {
    let text
    try {
      text = await readFile(path, 'utf8')
    } catch {
      continue
    }
    try {
      return JSON.parse(text)
    } catch {
      throw new ToolError(`${path} is not valid JSON`, EXIT.AUTH)
    }
  }
  return {}
}

/** `https://host:port/v1/` → `host:port` (docker matches auths keys this way). */
export const hostOfKey = (/** @type {string} */ key) => key.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '')

const isHub = (/** @type {string} */ host) => ['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(host)

/**
 * The credentials for a registry host, or null (anonymous).
 * @param {DockerConfig} config
 * @param {string} host as written in the reference (`docker.io` for Docker Hub)
 * @param {HelperRunner} [runHelper]
 * @returns {Promise<Credentials | null>}
 */
export async function credentialsFor(config, host, runHelper = helperGet) {
  const hub = isHub(host) || host === DOCKER_HUB
  const serverUrl = hub ? DOCKER_HUB_KEY : host
  const matches = (/** @type {string} */ key) => (hub ? isHub(hostOfKey(key)) : hostOfKey(key) === host)
  const helper = Object.entries(config.credHelpers ?? {}).find(([key]) => matches(key))?.[1] ?? config.credsStore
  if (helper) {
    const found = await runHelper(helper, serverUrl)
    if (found?.Secret) {
      // A user name of "<token>" marks an identity (refresh) token (docker-credential-helpers).
      return found.Username === '<token>' ? { identityToken: found.Secret } : { username: found.Username ?? '', password: found.Secret }
    }
  }
  const entry = Object.entries(config.auths ?? {}).find(([key]) => matches(key))?.[1]
  if (!entry) return null
  if (entry.identitytoken) return { identityToken: entry.identitytoken }
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon < 0) throw new ToolError(`the stored credentials for ${host} are malformed (auth is not base64 "user:password")`, EXIT.AUTH)
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
  }
  if (entry.username && entry.password) return { username: entry.username, password: entry.password }
  return null
}

/** `user:password` from --creds (the password may hold colons). @returns {Credentials} */
export function parseCreds(/** @type {string} */ text) {
  const colon = text.indexOf(':')
  if (colon <= 0) throw new ToolError('--creds wants user:password', EXIT.USAGE)
  return { username: text.slice(0, colon), password: text.slice(colon + 1) }
}

/**
 * `docker-credential-<helper> get` with the server URL on stdin: its JSON, or null when it has
 * nothing for that server ("credentials not found").
 * @type {HelperRunner}
 */
export function helperGet(helper, serverUrl) {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, ['get'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    child.on('error', (e) => reject(new ToolError(`credential helper docker-credential-${helper}: ${e.message}`, EXIT.AUTH)))
    child.on('close', (code) => {
      if (code !== 0) {
        if (/not found/i.test(out + err)) return resolve(null)
        return reject(new ToolError(`docker-credential-${helper} get failed (exit ${code}): ${(out + err).trim().slice(0, 200)}`, EXIT.AUTH))
      }
      try {
        resolve(JSON.parse(out))
      } catch {
        reject(new ToolError(`docker-credential-${helper} get did not answer JSON`, EXIT.AUTH))
      }
    })
    child.stdin.end(serverUrl)
  })
}
