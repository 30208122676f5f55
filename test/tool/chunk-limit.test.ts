import { describe, expect, it } from 'vitest'
import { EXIT, ToolError } from '../../tool/core/errors.mjs'
import { push } from '../../tool/core/push.mjs'
import { Registry } from '../../tool/core/registry.mjs'
import { bindings, MiB, repoName } from '../helpers'
import { HOST, memoryImage, pulled, routerFetch, sameBytes, workerFetch, type Sent } from './fixtures'

/** The registry with MAX_CHUNK_BYTES at its 1 MiB minimum. */
const limited = (log: Sent[] = []) => routerFetch({ ...bindings, MAX_CHUNK_BYTES: String(MiB) }, log)
const registry = (repo: string, fetch: typeof globalThis.fetch) => new Registry({ host: HOST, repository: repo, fetch, plainHttp: true })

/** The same registry behind something that drops OCI-Chunk-Max-Length from the POST reply. */
const unadvertised = (log: Sent[] = []) => {
  const inner = limited(log)
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const res = await inner(input, init)
    if (init?.method !== 'POST') return res
    const headers = new Headers(res.headers)
    headers.delete('oci-chunk-max-length')
    return new Response(res.body, { status: res.status, headers })
  }) as typeof fetch
}

/** Sizes of the chunks of a chunked upload: the PATCHes, then the closing PUT's (the one with a Content-Range). */
const patchSizes = (sent: Sent[]) => sent
  .filter((r) => r.method === 'PATCH' || (r.method === 'PUT' && r.headers.has('content-range')))
  .map((r) => Number(r.headers.get('content-length')))

describe('chunk size (OCI-Chunk-Max-Length, MAX_CHUNK_BYTES)', () => {
  it('sends chunks of the size the POST reply advertises when no --chunk-size is given', async () => {
    const repo = repoName('tool')
    const image = await memoryImage([2.5 * MiB])
    const sent: Sent[] = []
    await push(image.source, registry(repo, limited(sent)), { reference: 'v1' })
    expect(patchSizes(sent)).toEqual([MiB, MiB, 0.5 * MiB])
    for (const [digest, bytes] of image.blobs) expect(sameBytes(await pulled(repo, digest), bytes)).toBe(true)
  })

  it('a --chunk-size over the advertised limit is lowered to it; one under it is kept', async () => {
    const image = await memoryImage([2.5 * MiB])
    const over: Sent[] = []
    await push(image.source, registry(repoName('tool'), limited(over)), { reference: 'v1', chunkSize: 5 * MiB })
    expect(Math.max(...patchSizes(over))).toBe(MiB)
    const under: Sent[] = []
    await push(image.source, registry(repoName('tool'), limited(under)), { reference: 'v1', chunkSize: 0.75 * MiB })
    expect(patchSizes(under)).toEqual([0.75 * MiB, 0.75 * MiB, 0.75 * MiB, 0.25 * MiB])
  })

  it('with OCI-Chunk-Min-Length, chunks are a whole number of it (and still under the maximum)', async () => {
    const image = await memoryImage([2.5 * MiB])
    const sent: Sent[] = []
    const inner = limited(sent)
    const withMin = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const res = await inner(input, init)
      if (init?.method !== 'POST') return res
      const headers = new Headers(res.headers)
      headers.set('oci-chunk-min-length', String(0.25 * MiB))
      return new Response(res.body, { status: res.status, headers })
    }) as typeof fetch
    await push(image.source, registry(repoName('tool'), withMin), { reference: 'v1', chunkSize: 0.9 * MiB })
    expect(patchSizes(sent)).toEqual([0.75 * MiB, 0.75 * MiB, 0.75 * MiB, 0.25 * MiB])
  })

  it('against this registry (OCI-Chunk-Min-Length: a 10 MiB part), sends whole parts under --chunk-size', async () => {
    const repo = repoName('tool')
    const image = await memoryImage([25 * MiB])
    const sent: Sent[] = []
    await push(image.source, registry(repo, workerFetch(sent, { minimum: true })), { reference: 'v1', chunkSize: 15 * MiB })
    expect(patchSizes(sent)).toEqual([10 * MiB, 10 * MiB, 5 * MiB])
    for (const [digest, bytes] of image.blobs) expect(sameBytes(await pulled(repo, digest), bytes)).toBe(true)
  })

  it('when the limit only shows on a 413 (not on the POST), sends the same bytes again in chunks under it', async () => {
    const repo = repoName('tool')
    const image = await memoryImage([2.5 * MiB])
    const sent: Sent[] = []
    const result = await push(image.source, registry(repo, unadvertised(sent)), { reference: 'v1', chunkSize: 4 * MiB })
    expect(result.digest).toBe(image.digest)
    // First the whole layer in one PUT (413), then PATCHes of the limit on the same session.
    expect(sent.filter((r) => r.method === 'PUT' && r.url.includes('/uploads/') && !r.headers.has('content-range')).map((r) => r.headers.get('content-length'))).toContain(String(2.5 * MiB))
    expect(patchSizes(sent)).toEqual([MiB, MiB, 0.5 * MiB])
    for (const [digest, bytes] of image.blobs) expect(sameBytes(await pulled(repo, digest), bytes)).toBe(true)
  })

  it('a 413 that names no smaller limit fails with exit status 5 and the registry\'s message', async () => {
    const image = await memoryImage([2 * MiB])
    // A front that refuses bodies over 1.5 MiB with a bare OCI error (no limit header).
    const inner = limited()
    const front = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const length = Number(new Headers(init?.headers).get('content-length') ?? 0)
      if (length > 1.5 * MiB) {
        return Response.json({ errors: [{ code: 'SIZE_INVALID', message: 'request entity too large' }] }, { status: 413 })
      }
      return inner(input, init)
    }) as typeof fetch
    const noHeader = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const res = await front(input, init)
      if (init?.method !== 'POST') return res
      const headers = new Headers(res.headers)
      headers.delete('oci-chunk-max-length')
      return new Response(res.body, { status: res.status, headers })
    }) as typeof fetch
    const err = await push(image.source, registry(repoName('tool'), noHeader), { reference: 'v1', chunkSize: 3 * MiB }).catch((e) => e)
    expect(err).toBeInstanceOf(ToolError)
    expect(err.exitCode).toBe(EXIT.REFUSED)
    expect(err.message).toMatch(/413 SIZE_INVALID: request entity too large/)
  })
})
