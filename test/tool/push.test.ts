import { describe, expect, it } from 'vitest'
import { EXIT, ToolError } from '../../tool/core/errors.mjs'
import { push, type PushEvent } from '../../tool/core/push.mjs'
import { Registry } from '../../tool/core/registry.mjs'
import { registrySource } from '../../tool/core/registry-source.mjs'
import { ORIGIN, repoName } from '../helpers'
import { bindings } from '../helpers'
import { HOST, memoryImage, pulled, routerFetch, sameBytes, workerFetch, type Sent } from './fixtures'

const KiB = 1024
const noSleep = async () => {}

function registry(repo: string, fetch: typeof globalThis.fetch, scopes: string[] = []) {
  return new Registry({ host: HOST, repository: repo, fetch, plainHttp: true, scopes })
}

/** Every blob and manifest of the image is in `repo`, byte for byte. */
async function expectPushed(repo: string, image: Awaited<ReturnType<typeof memoryImage>>, tag: string) {
  for (const [digest, bytes] of image.blobs) expect(sameBytes(await pulled(repo, digest), bytes)).toBe(true)
  const res = await workerFetch()(`${ORIGIN}/v2/${repo}/manifests/${tag}`, {
    headers: { Accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' },
  })
  expect(res.status).toBe(200)
  expect(res.headers.get('docker-content-digest')).toBe(image.digest)
  expect(sameBytes(new Uint8Array(await res.arrayBuffer()), image.manifests.get(image.digest))).toBe(true)
}

describe('push (the tool against the worker)', () => {
  it('sends a blob larger than --chunk-size in chunks of at most that size with Content-Range, the last on PUT ?digest=', async () => {
    const repo = repoName('tool')
    const image = await memoryImage([1000 * KiB, 10 * KiB])
    const sent: Sent[] = []
    const result = await push(image.source, registry(repo, workerFetch(sent)), { reference: 'v1', chunkSize: 300 * KiB })
    expect(result.digest).toBe(image.digest)
    expect(result.blobs).toEqual({ exists: 0, mounted: 0, uploaded: 3 })
    const big = [...image.blobs.keys()][0]!
    const chunks = sent.filter((r) => (r.method === 'PATCH' || r.method === 'PUT') && r.url.includes('/blobs/uploads/'))
    const ofBig = chunks.filter((r) => r.method === 'PATCH' || new URL(r.url).searchParams.get('digest') === big)
    expect(ofBig.map((r) => [r.method, r.headers.get('content-range'), r.headers.get('content-length')])).toEqual([
      ['PATCH', `0-${300 * KiB - 1}`, String(300 * KiB)],
      ['PATCH', `${300 * KiB}-${600 * KiB - 1}`, String(300 * KiB)],
      ['PATCH', `${600 * KiB}-${900 * KiB - 1}`, String(300 * KiB)],
      ['PUT', `${900 * KiB}-${1000 * KiB - 1}`, String(100 * KiB)],
    ])
    // The small layer and the config: one PUT with the whole body each, no PATCH.
    expect(chunks.filter((r) => r.method === 'PUT' && new URL(r.url).searchParams.get('digest') !== big).map((r) => r.headers.get('content-range'))).toEqual([null, null])
    await expectPushed(repo, image, 'v1')
  })

  it('pushes a two-platform index with every child manifest and blob', async () => {
    const repo = repoName('tool')
    const image = await memoryImage([200 * KiB], ['amd64', 'arm64'])
    const result = await push(image.source, registry(repo, workerFetch()), { reference: 'multi', chunkSize: 64 * KiB, jobs: 2 })
    expect(result.digest).toBe(image.digest)
    await expectPushed(repo, image, 'multi')
    for (const digest of image.manifests.keys()) {
      const res = await workerFetch()(`${ORIGIN}/v2/${repo}/manifests/${digest}`, { method: 'HEAD', headers: { Accept: '*/*' } })
      expect(res.status).toBe(200)
    }
  })

  it('works on --jobs blobs at once', async () => {
    const image = await memoryImage([10 * KiB, 10 * KiB, 10 * KiB, 10 * KiB])
    const busiest = async (jobs: number) => {
      const inner = workerFetch()
      let now = 0
      let most = 0
      const counting = (async (input: RequestInfo | URL, init?: RequestInit) => {
        if (!String(input).includes('/blobs/')) return inner(input, init)
        most = Math.max(most, ++now)
        try {
          return await inner(input, init)
        } finally {
          now--
        }
      }) as typeof fetch
      await push(image.source, registry(repoName('tool'), counting), { reference: 'v1', jobs })
      return most
    }
    expect(await busiest(3)).toBe(3)
    expect(await busiest(1)).toBe(1)
  })

  it('skips blobs the repository already has (HEAD first), and a second run uploads nothing', async () => {
    const repo = repoName('tool')
    const image = await memoryImage([100 * KiB, 50 * KiB])
    await push(image.source, registry(repo, workerFetch()), { reference: 'v1' })
    const sent: Sent[] = []
    const again = await push(image.source, registry(repo, workerFetch(sent)), { reference: 'v1' })
    expect(again.blobs).toEqual({ exists: 3, mounted: 0, uploaded: 0 })
    expect(sent.filter((r) => r.method === 'POST' || r.method === 'PATCH')).toEqual([])
  })

  it('mounts blobs from --mount-from instead of uploading them', async () => {
    const from = repoName('tool')
    const repo = repoName('tool')
    const image = await memoryImage([100 * KiB])
    await push(image.source, registry(from, workerFetch()), { reference: 'v1' })
    const sent: Sent[] = []
    const result = await push(image.source, registry(repo, workerFetch(sent)), { reference: 'v1', mountFrom: from })
    expect(result.blobs).toEqual({ exists: 0, mounted: 2, uploaded: 0 })
    expect(sent.filter((r) => r.method === 'POST').every((r) => new URL(r.url).searchParams.get('from') === from)).toBe(true)
    expect(sent.some((r) => r.method === 'PATCH' || r.method === 'PUT' && r.url.includes('/blobs/'))).toBe(false)
    await expectPushed(repo, image, 'v1')
  })

  it('resumes after a cut chunk: asks the session its Range (GET on the Location) and sends the rest', async () => {
    const repo = repoName('tool')
    const image = await memoryImage([1000 * KiB])
    const sent: Sent[] = []
    const inner = routerFetch(bindings, sent)
    let patches = 0
    // The third PATCH is cut off half way: the registry sees its body fail, the tool a reset.
    const flaky = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (init?.method === 'PATCH' && ++patches === 3) {
        const request = new Request(input, init)
        let passed = 0
        const cut = request.body!.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, c) {
            passed += chunk.byteLength
            if (passed > 100 * KiB) throw new Error('connection reset by peer')
            c.enqueue(chunk)
          },
        }))
        await inner(input, { ...init, body: cut, duplex: 'half' } as RequestInit).catch(() => {})
        throw new TypeError('fetch failed: connection reset')
      }
      return inner(input, init)
    }) as typeof fetch
    const events: PushEvent[] = []
    const result = await push(image.source, registry(repo, flaky), {
      reference: 'v1', chunkSize: 256 * KiB, sleep: noSleep, onEvent: (e) => events.push(e),
    })
    expect(result.digest).toBe(image.digest)
    const retries = events.filter((e) => e.type === 'retry')
    expect(retries.map((e) => e.type === 'retry' && e.resumeAt)).toEqual([512 * KiB])
    // The retry first asked the session where it stands, then sent from there.
    const afterCut = sent.slice(sent.findIndex((r, i) => r.method === 'PATCH' && sent.slice(0, i + 1).filter((x) => x.method === 'PATCH').length === 3) + 1)
    expect(afterCut[0]?.method).toBe('GET')
    expect(afterCut[1]?.headers.get('content-range')).toBe(`${512 * KiB}-${768 * KiB - 1}`)
    expect(sent.filter((r) => r.method === 'POST').length).toBe(2)   // layer and config: no new session
    await expectPushed(repo, image, 'v1')
  })

  it('a chunk whose reply is lost is sent again from where the session stands (or a new session, if the registry dropped it)', async () => {
    const repo = repoName('tool')
    const image = await memoryImage([1000 * KiB])
    const inner = workerFetch()
    let patches = 0
    const lossy = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const res = await inner(input, init)
      if (init?.method === 'PATCH' && ++patches === 3) throw new TypeError('fetch failed: connection reset')
      return res
    }) as typeof fetch
    const events: PushEvent[] = []
    const result = await push(image.source, registry(repo, lossy), {
      reference: 'v1', chunkSize: 256 * KiB, sleep: noSleep, onEvent: (e) => events.push(e),
    })
    expect(result.digest).toBe(image.digest)
    expect(events.filter((e) => e.type === 'retry').length).toBe(1)
    await expectPushed(repo, image, 'v1')
  })

  it('an interrupted push run again skips the blobs it completed', async () => {
    const repo = repoName('tool')
    const image = await memoryImage([300 * KiB, 300 * KiB])
    const [first, second, config] = [...image.blobs.keys()]
    let current = ''
    const inner = workerFetch()
    // Every chunk of the second layer fails; the config and the first layer go through.
    const dying = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (init?.method === 'PATCH' && current === second) throw new TypeError('fetch failed')
      return inner(input, init)
    }) as typeof fetch
    await expect(push(image.source, registry(repo, dying), {
      reference: 'v1', chunkSize: 100 * KiB, jobs: 1, retries: 1, sleep: noSleep,
      onEvent: (e) => { if (e.type === 'chunk') current = e.digest },
    })).rejects.toMatchObject({ exitCode: EXIT.UNAVAILABLE })

    const events: PushEvent[] = []
    const result = await push(image.source, registry(repo, workerFetch()), {
      reference: 'v1', chunkSize: 100 * KiB, onEvent: (e) => events.push(e),
    })
    expect(result.blobs).toEqual({ exists: 2, mounted: 0, uploaded: 1 })
    expect(events.filter((e) => e.type === 'exists').map((e) => e.type === 'exists' && e.digest).sort()).toEqual([first, config].sort())
    expect(events.filter((e) => e.type === 'uploaded').map((e) => e.type === 'uploaded' && e.digest)).toEqual([second])
    await expectPushed(repo, image, 'v1')
  })

  it('copies registry to registry, every platform, in chunks', async () => {
    const from = repoName('tool')
    const repo = repoName('tool')
    const image = await memoryImage([500 * KiB], ['amd64', 'arm64'])
    await push(image.source, registry(from, workerFetch()), { reference: 'v1' })
    const sent: Sent[] = []
    const source = registrySource(registry(from, workerFetch(), []), 'v1')
    const result = await push(source, registry(repo, workerFetch(sent)), { reference: 'copy', chunkSize: 200 * KiB })
    expect(result.digest).toBe(image.digest)
    expect(result.blobs.uploaded).toBe(4)
    expect(sent.filter((r) => r.method === 'PATCH').length).toBe(2 * 2)   // 500 KiB: two 200 KiB PATCHes, the rest on the PUT
    await expectPushed(repo, image, 'copy')
  })

  it('a manifest the registry refuses fails with exit status 5 and its OCI error', async () => {
    const repo = repoName('tool')
    const image = await memoryImage([10 * KiB])
    // A manifest naming a layer that is not there: the registry answers MANIFEST_BLOB_UNKNOWN.
    const skipLayers = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (init?.method === 'HEAD' && String(input).includes('/blobs/')) return new Response(null, { status: 200 })
      return workerFetch()(input, init)
    }) as typeof fetch
    const err = await push(image.source, registry(repo, skipLayers), { reference: 'v1' }).catch((e) => e)
    expect(err).toBeInstanceOf(ToolError)
    expect(err.exitCode).toBe(EXIT.REFUSED)
    expect(err.message).toMatch(/MANIFEST_BLOB_UNKNOWN/)
  })
})
