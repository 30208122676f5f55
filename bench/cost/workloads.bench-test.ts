/**
 * Counts the R2, KV and Cache API calls of each reference workload (shared/COST.md)
 * by sending the clients' request sequences (shared/CLIENTS.md) through the real
 * router with metered bindings. Prints one `BENCH_COST {json}` line per workload;
 * bench/run.mjs prices them. Not part of `npm test`.
 */
import { it } from 'vitest'
import { randomBytes } from './meter'
import { freshRepo, lengthBody, makeImage, MiB, pushImage, sha256, streamedBody, withDigest, Workload } from './workload'
/** POST, then `size` bytes in `chunk`-byte PATCHes with Content-Range, then PUT ?digest=. */
async function chunkedUpload(w: Workload, repo: string, size: number, chunk: number) {
  const bytes = randomBytes(size)
  const digest = await sha256(bytes)
  const post = await w.send('POST upload', 'POST', `/v2/${repo}/blobs/uploads/`, [202])
  let location = post.headers.get('location') ?? ''
  for (let at = 0; at < size; at += chunk) {
    const part = bytes.subarray(at, Math.min(size, at + chunk))
    const res = await w.send(`PATCH ${chunk / MiB} MiB (Content-Range)`, 'PATCH', location, [202], {
      body: part,
      headers: {
        'Content-Length': String(part.byteLength),
        'Content-Range': `${at}-${at + part.byteLength - 1}`,
        'Content-Type': 'application/octet-stream',
      },
    })
    location = res.headers.get('location') ?? location
  }
  await w.send('PUT ?digest=', 'PUT', withDigest(location, digest, w.origin), [201])
  const check = await w.send('GET blob (check)', 'GET', `/v2/${repo}/blobs/${digest}`, [200])
  if ((await sha256(check.body)) !== digest) w.steps.at(-1)!.status = -1
  w.steps.pop() // the check is not part of the upload's cost
}

async function singlePatchUpload(w: Workload, repo: string, size: number, framing: 'length' | 'chunked') {
  const bytes = randomBytes(size)
  const b = { digest: await sha256(bytes), bytes }
  const post = await w.send('POST upload', 'POST', `/v2/${repo}/blobs/uploads/`, [202])
  const patch = await w.send(`PATCH (${framing})`, 'PATCH', post.headers.get('location') ?? '', [202],
    framing === 'length' ? lengthBody(bytes) : streamedBody([bytes]))
  await w.send('PUT ?digest=', 'PUT', withDigest(patch.headers.get('location') ?? '', b.digest, w.origin), [201])
}

it('reference push, cold pull, warm pull (skopeo order)', async () => {
  // Once per isolate the upload routes load their signing key (src/storage/secrets.ts);
  // counted apart so the workloads show the steady state.
  const warmup = new Workload('isolate-first-upload', 'http://push.registry.test')
  await warmup.send('POST upload', 'POST', `/v2/${freshRepo('warmup')}/blobs/uploads/`, [202])
  warmup.print()

  const image = await makeImage()
  const repo = freshRepo('ref')
  const push = new Workload('push', 'http://push.registry.test')
  await pushImage(push, repo, image, 'length', { headManifest: true, headAfter: false })
  push.print({ blobs: [image.config, ...image.layers].map((b) => b.bytes.byteLength) })

  // Another location: nothing of this image is in its cache.
  const cold = new Workload('pull-cold', 'http://pull.registry.test')
  await cold.pull(repo, 'latest', image)
  cold.print()
  const warm = new Workload('pull-warm', cold.origin)
  await warm.pull(repo, 'latest', image)
  warm.print()

  // A third location where the pull comes back after the link copies expired (LINK_CACHE_SECONDS):
  // modelled by a zero TTL, so links are never cached but blob bytes are.
  const first = new Workload('pull-cold-links-uncached', 'http://later.registry.test', { LINK_CACHE_SECONDS: '0' })
  await first.pull(repo, 'latest', image)
  const later = new Workload('pull-warm-links-expired', first.origin, { LINK_CACHE_SECONDS: '0' })
  await later.pull(repo, 'latest', image)
  later.print()

  // The same image pushed again to the same repository (CI re-push): every HEAD answers 200.
  const again = new Workload('push-unchanged', push.origin)
  await pushImage(again, repo, image, 'length', { headManifest: true, headAfter: false })
  again.print()
})

it('client variants of the reference push', async () => {
  const docker = new Workload('push-docker', 'http://push.registry.test')
  await pushImage(docker, freshRepo('docker'), await makeImage(), 'chunked', { headManifest: false, headAfter: true })
  docker.print()
  const chunkedSkopeo = new Workload('push-chunked', 'http://push.registry.test')
  await pushImage(chunkedSkopeo, freshRepo('chunked'), await makeImage(), 'chunked', { headManifest: true, headAfter: false })
  chunkedSkopeo.print()
  const containerd = new Workload('push-monolithic', 'http://push.registry.test')
  await pushImage(containerd, freshRepo('mono'), await makeImage(), 'monolithic', { headManifest: false, headAfter: false })
  containerd.print()
})

it('64 MiB blob uploads', async () => {
  for (const chunk of [1, 16]) {
    const w = new Workload(`upload-64MiB-${chunk}MiB-chunks`, 'http://push.registry.test')
    await chunkedUpload(w, freshRepo('chunks'), 64 * MiB, chunk * MiB)
    w.print()
  }
  for (const framing of ['chunked', 'length'] as const) {
    const w = new Workload(`upload-64MiB-one-patch-${framing}`, 'http://push.registry.test')
    await singlePatchUpload(w, freshRepo('one'), 64 * MiB, framing)
    w.print()
  }
})

/**
 * `size` bytes made on the fly, never all in memory: a random 64 KiB block, each copy
 * stamped with its index (so no two blocks are alike). `from`-`to` of them as a stream.
 */
function generated(size: number) {
  const block = crypto.getRandomValues(new Uint8Array(65536))
  const piece = 1024 * 1024
  return (from: number, to: number) => {
    let at = from
    return new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= to) return c.close()
        const end = Math.min(to, at + piece)
        const out = new Uint8Array(end - at)
        for (let i = 0; i < out.length; ) {
          const pos = at + i
          const inBlock = pos % block.length
          const n = Math.min(block.length - inBlock, out.length - i)
          out.set(block.subarray(inBlock, inBlock + n), i)
          // the block's index in its first 8 bytes
          const index = Math.floor(pos / block.length)
          for (let b = inBlock; b < 8 && b < inBlock + n; b++) out[i + b - inBlock] = (index >> (8 * b)) & 0xff
          i += n
        }
        at = end
        c.enqueue(out)
      },
    })
  }
}

it('2 GiB blob in 95 MB chunks (issue 10: the big-layer hot path)', async () => {
  const size = 2 * 1024 * MiB
  const chunk = 95_000_000
  // 95 MB is over the 90 MiB default (a Free/Pro plan); as on a plan that allows it.
  const w = new Workload('upload-2GiB-95MB-chunks', 'http://push.registry.test', { MAX_CHUNK_BYTES: String(chunk) })
  const bytes = generated(size)
  const hash = new crypto.DigestStream('SHA-256')
  await bytes(0, size).pipeTo(hash)
  const digest = 'sha256:' + [...new Uint8Array(await hash.digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
  const repo = freshRepo('big')
  const post = await w.send('POST upload', 'POST', `/v2/${repo}/blobs/uploads/`, [202])
  let location = post.headers.get('location') ?? ''
  let chunks = 0
  for (let at = 0; at < size; at += chunk) {
    const end = Math.min(size, at + chunk)
    const res = await w.send('PATCH 95 MB (Content-Range)', 'PATCH', location, [202], {
      body: bytes(at, end),
      duplex: 'half',
      headers: { 'Content-Length': String(end - at), 'Content-Range': `${at}-${end - 1}`, 'Content-Type': 'application/octet-stream' },
    } as RequestInit)
    location = res.headers.get('location') ?? location
    chunks++
  }
  await w.send('PUT ?digest=', 'PUT', withDigest(location, digest, w.origin), [201])
  await w.send('HEAD blob (check)', 'HEAD', `/v2/${repo}/blobs/${digest}`, [200])
  w.steps.pop() // the check is not part of the upload's cost
  w.print({ blobBytes: size, chunkBytes: chunk, chunks })
})
