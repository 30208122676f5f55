// @ts-check
/**
 * Image references as docker spells them: `[host[:port]/]repository[:tag][@digest]`.
 * A first component with a `.` or a `:`, or `localhost`, is a registry host; otherwise the
 * host is Docker Hub, and a one-component repository lives under `library/` (docker's rules,
 * distribution/reference `normalize.go`).
 */
import { usageError } from './errors.mjs'

export const DOCKER_HUB = 'docker.io'
/** Docker Hub's API host: `docker.io` is only a name. */
const DOCKER_HUB_API = 'registry-1.docker.io'

/** Repository path components (distribution-spec "name" grammar). */
const NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/
const TAG = /^[\w][\w.-]{0,127}$/
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/

/**
 * @typedef {object} Reference
 * @property {string} host registry host as written (`docker.io` for Docker Hub), with port
 * @property {string} repository repository name, `library/` added for Docker Hub's one-word names
 * @property {string | null} tag
 * @property {string | null} digest
 */

/** @param {string} text @returns {Reference} */
export function parseReference(text) {
  let rest = text.trim()
  /** @type {string | null} */
  let digest = null
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest)) throw usageError(`invalid digest in reference "${text}"`)
  }
  let host = DOCKER_HUB
  const slash = rest.indexOf('/')
  if (slash > 0) {
    const first = rest.slice(0, slash)
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      host = first
      rest = rest.slice(slash + 1)
    }
  }
  /** @type {string | null} */
  let tag = null
  const colon = rest.lastIndexOf(':')
  if (colon >= 0) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw usageError(`invalid tag in reference "${text}"`)
  }
  if (host === DOCKER_HUB && !rest.includes('/')) rest = `library/${rest}`
  if (!NAME.test(rest)) throw usageError(`invalid repository name in reference "${text}"`)
  return { host, repository: rest, tag, digest }
}

/** `host/repository:tag` or `host/repository@digest`, as people write it. */
export function formatReference(/** @type {Reference} */ ref) {
  return `${ref.host}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}

/** The host an API request goes to. */
export const apiHost = (/** @type {string} */ host) => (host === DOCKER_HUB ? DOCKER_HUB_API : host)

/**
 * Plain HTTP for loopback hosts, as docker does (it treats 127.0.0.0/8 as insecure), and for
 * any host when asked; HTTPS otherwise.
 * @param {string} host
 * @param {boolean} [plainHttp]
 */
export function schemeFor(host, plainHttp = false) {
  if (plainHttp) return 'http'
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]
  return name === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(name ?? '') || name === '[::1]' ? 'http' : 'https'
}
