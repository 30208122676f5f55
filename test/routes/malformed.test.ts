/**
 * Malformed input of every kind gets an OCI error (4xx, JSON), never a 5xx: a
 * seeded sweep over paths, methods, headers and bodies, each through the router.
 */
import { describe, expect, it } from 'vitest'
import { callWith, pushBlob, randomBlob, repoName, sha256, startUpload } from '../helpers'

/** A small deterministic PRNG, so a failure names a reproducible case. */
function prng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
}

const WEIRD = ['', ' ', '%', '%zz', '..', '_x', 'A', 'a'.repeat(300), 'sha256:', 'sha256:zz', `sha256:${'a'.repeat(63)}`,
  `sha512:${'b'.repeat(64)}`, 'md5:abc', '😀', 'a//b', 'tag!', '-', ':', 'x'.repeat(129)]
const HEADERS: [string, string[]][] = [
  ['Range', ['bytes=', 'bytes=5-2', 'bytes=-0', 'bytes=a-b', 'bytes=0-1,3-4', 'items=0-1', 'bytes=99999999999999999999-']],
  ['Content-Range', ['', '5-2', 'bytes 0-', 'x-y', '0-99999999999999999999', '-1-2']],
  ['Content-Type', ['', 'application/json', 'application/vnd.oci.image.index.v1+json; x=y', '\u0000'.replace('\u0000', 'x')]],
  ['If-None-Match', ['', '*', '"', 'W/"x"']],
  ['Accept', ['', '*/*', ';;;', 'application/vnd.docker.distribution.manifest.v2+json;q=0']],
]
const BODIES = ['', '{', '[]', 'null', '{"schemaVersion":2}', '{"schemaVersion":2,"manifests":[{}]}',
  '{"schemaVersion":2,"config":{"digest":"sha256:x"},"layers":"no"}', '\u00ff\u00fe', '{"schemaVersion":1,"signatures":[{}]}']

describe('malformed requests', () => {
  it('never answer 5xx, and every error is OCI JSON', async () => {
    const repo = repoName('malformed')
    const digest = await pushBlob(repo, randomBlob(100))
    const session = await startUpload(repo)
    const rand = prng(7)
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
    const paths = (w: string) => [
      `/v2/${w}/blobs/${digest}`, `/v2/${repo}/blobs/${w}`, `/v2/${repo}/manifests/${w}`, `/v2/${w}/manifests/latest`,
      `/v2/${repo}/blobs/uploads/${w}`, `${session}&x=${encodeURIComponent(w)}`, `/v2/${repo}/blobs/uploads/?digest=${w}`,
      `/v2/${repo}/blobs/uploads/?mount=${w}&from=${w}`, `/v2/${repo}/tags/list?n=${w}&last=${w}`, `/v2/_catalog?n=${w}`,
      `/v2/${repo}/referrers/${w}`, `/v2/${repo}/referrers/${digest}?artifactType=${w}`, `/v2/${w}`, `/${w}`,
    ]
    let reached = 0
    for (let i = 0; i < 2000; i++) {
      const path = pick(paths(pick(WEIRD)))
      const method = pick(['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS'])
      const headers = new Headers()
      for (const [name, values] of HEADERS) if (rand() < 0.3) headers.set(name, pick(values))
      const body = method === 'GET' || method === 'HEAD' ? undefined : pick(BODIES)
      const init = { method, headers, body }
      let res: Response
      try {
        res = await callWith({}, path.startsWith('/') ? path : `/${path}`, init)
      } catch (err) {
        // The Request itself could not be built (e.g. an invalid URL): nothing reached the worker.
        if (err instanceof TypeError) continue
        throw err
      }
      reached++
      const what = `${method} ${path} ${JSON.stringify([...headers])} ${JSON.stringify(body)}`
      expect(res.status, what).toBeLessThan(500)
      if (res.status >= 400 && method !== 'HEAD') {
        const json = (await res.json()) as { errors?: { code: string }[] }
        expect(json.errors?.[0]?.code, what).toMatch(/^[A-Z_]+$/)
      } else {
        await res.body?.cancel()
      }
    }
    expect(reached).toBeGreaterThan(1800)
    // and the repository still serves its blob afterwards
    const res = await callWith({}, `/v2/${repo}/blobs/${digest}`)
    expect(res.status).toBe(200)
    expect(await sha256(new Uint8Array(await res.arrayBuffer()))).toBe(digest)
  })
})
