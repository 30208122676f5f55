/**
 * /v2/<name>/manifests/<reference>: PUT, GET, HEAD and DELETE over every media type,
 * multi-platform indexes, reference checks, every validation failure (with proof that
 * nothing was stored), the size limit, idempotence, tag moves, Accept negotiation,
 * conditional GETs, deletes and the settings that gate them, and schema 1.
 */
import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import type { Env } from '../../src/env'
import { keys } from '../../src/storage/keys'
import type { Digest } from '../../src/names'
import { randomBlob, repoName, sha256 } from '../helpers'
import {
  api,
  build,
  bytesOf,
  callWithEnv,
  dockerImage,
  expectError,
  expectNotStored,
  expectServes,
  getManifest,
  index,
  MT,
  ociArtifact,
  ociImage,
  push,
  pushBlob,
  pushBlobOf,
  putManifest,
  tagsOf,
  type Built,
  type Descriptor,
} from '../manifests/fixtures'
import { prettyPayload, schema1Key, signSchema1 } from '../manifests/schema1-sign'

const bindings = env as unknown as Env
const MiB = 1024 * 1024
const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' }
const del = (repo: string, ref: string) => api(`/v2/${repo}/manifests/${ref}`, { method: 'DELETE' })

/** A two-platform index of `type` whose children were pushed by digest (not yet the index). */
async function multiPlatform(repo: string, type: typeof MT.ociIndex | typeof MT.dockerList) {
  const image = type === MT.ociIndex ? ociImage : dockerImage
  const [a, b] = await Promise.all([image(repo, { platform: amd64 }), image(repo, { platform: arm64 })])
  await push(repo, a.digest, a)
  await push(repo, b.digest, b)
  const list = await index(type, [{ built: a, platform: amd64 }, { built: b, platform: arm64 }])
  return { amd64: a, arm64: b, list }
}

describe('every media type pushed and pulled back', () => {
  const kinds: [string, (repo: string) => Promise<Built>][] = [
    ['Docker image manifest v2', (r) => dockerImage(r)],
    ['OCI image manifest', (r) => ociImage(r)],
    ['OCI artifact', (r) => ociArtifact(r, 'application/vnd.example.thing')],
    ['Docker manifest list', async (r) => (await multiPlatform(r, MT.dockerList)).list],
    ['OCI image index', async (r) => (await multiPlatform(r, MT.ociIndex)).list],
  ]

  it.each(kinds)('%s: byte-for-byte by tag and by digest, GET and HEAD, with its exact headers', async (_, make) => {
    const repo = repoName('manifests')
    const m = await make(repo)
    const res = await push(repo, 'v1', m)
    expect(res.headers.get('location')).toBe(`/v2/${repo}/manifests/${m.digest}`)
    expect(res.headers.get('content-length')).toBe('0')
    for (const ref of ['v1', m.digest]) {
      await expectServes(await getManifest(repo, ref), m)
      await expectServes(await getManifest(repo, ref, { method: 'HEAD' }), m, 'HEAD')
    }
    expect(await tagsOf(repo)).toEqual(['v1'])
  })

  it.each([MT.ociIndex, MT.dockerList])('%s: children pushed by digest first, then the index by tag; every entry pulls', async (type) => {
    const repo = repoName('manifests')
    const { amd64: a, arm64: b, list } = await multiPlatform(repo, type)
    expect(await tagsOf(repo)).toEqual([])
    await push(repo, 'multi', list)
    await expectServes(await getManifest(repo, 'multi'), list)
    const served = JSON.parse(new TextDecoder().decode(await bytesOf(await getManifest(repo, list.digest)))) as { manifests: Descriptor[] }
    expect(served.manifests.map((d) => d.digest)).toEqual([a.digest, b.digest])
    await expectServes(await getManifest(repo, a.digest), a)
    await expectServes(await getManifest(repo, b.digest), b)
    expect(await tagsOf(repo)).toEqual(['multi'])
  })

  it.each([MT.ociIndex, MT.dockerList])('%s whose child is missing: 400 MANIFEST_BLOB_UNKNOWN, nothing stored or tagged', async (type) => {
    const repo = repoName('manifests')
    const { amd64: a, list: _ } = await multiPlatform(repo, type)
    const image = type === MT.ociIndex ? ociImage : dockerImage
    const missing = await image(repo, { platform: arm64 }) // blobs pushed, manifest never
    const list = await index(type, [{ built: a, platform: amd64 }, { built: missing, platform: arm64 }])
    await expectError(await putManifest(repo, 'multi', list.bytes, type), 400, 'MANIFEST_BLOB_UNKNOWN')
    await expectNotStored(repo, list.digest, { tag: 'multi' })
    await expectError(await putManifest(repo, list.digest, list.bytes, type), 400, 'MANIFEST_BLOB_UNKNOWN')
    await expectNotStored(repo, list.digest)
  })
})

describe('references an image manifest must have in its repository', () => {
  it('refuses a config that exists only in another repository (400 MANIFEST_BLOB_UNKNOWN), storing nothing', async () => {
    const [repo, other] = [repoName('manifests'), repoName('manifests-other')]
    const mine = await ociImage(repo)
    const config = await pushBlobOf(other, MT.ociConfig, '{"only":"elsewhere"}')
    const m = await build({ ...mine.doc, config })
    await expectError(await putManifest(repo, 'v1', m.bytes, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN')
    await expectNotStored(repo, m.digest, { tag: 'v1' })
  })

  it('refuses a layer that exists only in another repository (400 MANIFEST_BLOB_UNKNOWN), storing nothing', async () => {
    const [repo, other] = [repoName('manifests'), repoName('manifests-other')]
    const mine = await dockerImage(repo, { layers: 1 })
    const foreign = await pushBlobOf(other, MT.dockerLayer, randomBlob(2048))
    const m = await build({ ...mine.doc, layers: [...(mine.doc.layers as Descriptor[]), foreign] })
    await expectError(await putManifest(repo, 'v1', m.bytes, MT.dockerV2), 400, 'MANIFEST_BLOB_UNKNOWN')
    await expectNotStored(repo, m.digest, { tag: 'v1' })
    // Once mounted into this repository, the same manifest is accepted.
    const mount = await api(`/v2/${repo}/blobs/uploads/?mount=${foreign.digest}&from=${other}`, { method: 'POST' })
    expect(mount.status).toBe(201)
    await push(repo, 'v1', m)
  })

  it('refuses a blob never pushed anywhere (400 MANIFEST_BLOB_UNKNOWN)', async () => {
    const repo = repoName('manifests')
    const mine = await ociImage(repo, { layers: 1 })
    const ghost = { mediaType: MT.ociLayer, digest: 'sha256:' + '3'.repeat(64), size: 10 }
    const m = await build({ ...mine.doc, layers: [ghost] })
    await expectError(await putManifest(repo, 'v1', m.bytes, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN')
    await expectNotStored(repo, m.digest, { tag: 'v1' })
  })

  // A KV miss is confirmed against the R2 blob index (first holder, recent entries only);
  // the deleting location keeps a mark, so a blob deleted here does not satisfy manifests
  // even while the index entry is recent.
  it('refuses a blob deleted from the repository (400 MANIFEST_BLOB_UNKNOWN)', async () => {
    const repo = repoName('manifests')
    const mine = await ociImage(repo, { layers: 1 })
    const [layer] = mine.doc.layers as Descriptor[]
    expect((await api(`/v2/${repo}/blobs/${layer!.digest}`, { method: 'DELETE' })).status).toBe(202)
    expect((await api(`/v2/${repo}/blobs/${layer!.digest}`)).status).toBe(404)
    await expectError(await putManifest(repo, 'v1', mine.bytes, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN')
  })

  it('allows foreign layers with urls without their blob', async () => {
    const repo = repoName('manifests')
    const mine = await dockerImage(repo, { layers: 1 })
    const foreign = { mediaType: MT.dockerForeignLayer, digest: 'sha256:' + '4'.repeat(64), size: 5, urls: ['https://example.com/base.tar'] }
    const m = await build({ ...mine.doc, layers: [foreign, ...(mine.doc.layers as Descriptor[])] })
    await push(repo, 'win', m)
    await expectServes(await getManifest(repo, 'win'), m)
  })
})

describe('PUT validation failures: the code, and nothing stored', () => {
  const utf8 = (s: string) => new TextEncoder().encode(s)

  it.each([
    ['truncated JSON', utf8('{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",')],
    ['JSON with trailing garbage', utf8('{"schemaVersion":2} x')],
    ['invalid UTF-8', new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ['an empty body', new Uint8Array(0)],
    ['a JSON array', utf8('[{"schemaVersion":2}]')],
    ['a JSON string', utf8('"manifest"')],
    ['a JSON number', utf8('2')],
    ['JSON null', utf8('null')],
    ['JSON true', utf8('true')],
  ])('%s → 400 MANIFEST_INVALID', async (_, body) => {
    const repo = repoName('manifests')
    await push(repo, 'keep', await ociArtifact(repo, 'application/x.keep'))
    for (const type of [MT.ociManifest, null]) {
      await expectError(await putManifest(repo, 'bad', body, type), 400, 'MANIFEST_INVALID')
    }
    await expectNotStored(repo, await sha256(body), { tag: 'bad' })
    expect(await tagsOf(repo)).toEqual(['keep'])
  })

  it('a Content-Type that conflicts with the mediaType field → 400 MANIFEST_INVALID', async () => {
    const repo = repoName('manifests')
    const docker = await dockerImage(repo)
    const { list } = await multiPlatform(repo, MT.ociIndex)
    for (const [m, type] of [[docker, MT.ociManifest], [docker, MT.dockerList], [list, MT.dockerList], [list, MT.ociManifest]] as const) {
      await expectError(await putManifest(repo, 'bad', m.bytes, type), 400, 'MANIFEST_INVALID')
      await expectNotStored(repo, m.digest, { tag: 'bad' })
    }
  })

  it('a media type no handler knows → 400 MANIFEST_INVALID, from Content-Type or from the mediaType field', async () => {
    const repo = repoName('manifests')
    const oci = await ociImage(repo)
    const { mediaType: _, ...bare } = oci.doc
    const noField = await build(bare, MT.ociManifest)
    await expectError(await putManifest(repo, 'bad', noField.bytes, 'application/vnd.example.unknown+json'), 400, 'MANIFEST_INVALID')
    await expectNotStored(repo, noField.digest, { tag: 'bad' })
    const unknownField = await build({ ...bare, mediaType: 'application/vnd.example.unknown+json' })
    await expectError(await putManifest(repo, 'bad', unknownField.bytes, null), 400, 'MANIFEST_INVALID')
    await expectNotStored(repo, unknownField.digest, { tag: 'bad' })
    // Without either, the shape decides: an OCI image manifest.
    await push(repo, 'bare', { ...noField, mediaType: MT.ociManifest })
    const res = await putManifest(repo, noField.digest, noField.bytes, null)
    expect(res.status).toBe(201)
    expect((await getManifest(repo, 'bare')).headers.get('content-type')).toBe(MT.ociManifest)
  })

  it('ignores Content-Type parameters and case: the stored type is the bare media type', async () => {
    const repo = repoName('manifests')
    const m = await ociImage(repo)
    const res = await putManifest(repo, 'v1', m.bytes, `${MT.ociManifest.toUpperCase()}; charset=utf-8`)
    expect(res.status, await res.text()).toBe(201)
    await expectServes(await getManifest(repo, 'v1'), m)
  })

  it('a schema 1 manifest while schema 1 is off (the default) → 400 MANIFEST_INVALID', async () => {
    const repo = repoName('manifests')
    const layer = await pushBlob(repo, randomBlob(100))
    const body = await signSchema1(schema1Manifest(repo, 'old', [layer]))
    for (const type of [MT.schema1Signed, MT.schema1, null]) {
      await expectError(await putManifest(repo, 'old', body, type), 400, 'MANIFEST_INVALID')
    }
    await expectNotStored(repo, await sha256(prettyPayload(schema1Manifest(repo, 'old', [layer]))), { tag: 'old' })
  })

  it('a digest reference that does not match the content → 400 DIGEST_INVALID, stored under neither digest', async () => {
    const repo = repoName('manifests')
    const m = await ociImage(repo)
    const wrong = 'sha256:' + '5'.repeat(64)
    await expectError(await putManifest(repo, wrong, m.bytes, MT.ociManifest), 400, 'DIGEST_INVALID')
    await expectNotStored(repo, wrong)
    await expectNotStored(repo, m.digest)
    // Digest of the same content with another algorithm's name: also a mismatch.
    const sha512Named = 'sha512:' + '6'.repeat(128)
    await expectError(await putManifest(repo, sha512Named, m.bytes, MT.ociManifest), 400, 'DIGEST_INVALID')
    await expectNotStored(repo, m.digest)
  })

  it.each(['sha256:abc', 'sha256:' + 'Z'.repeat(64), 'md5:' + 'a'.repeat(32), 'sha256:'])('a malformed digest reference %s → 400 DIGEST_INVALID', async (ref) => {
    const repo = repoName('manifests')
    const m = await ociImage(repo)
    await expectError(await putManifest(repo, ref, m.bytes, MT.ociManifest), 400, 'DIGEST_INVALID')
    await expectNotStored(repo, m.digest)
  })

  it.each(['-leading-dash', '.leading-dot', 'a'.repeat(129), 'with+plus', 'with%20space', 'ünïcode'])('an invalid tag %s → 400 TAG_INVALID', async (tag) => {
    const repo = repoName('manifests')
    const m = await ociImage(repo)
    await expectError(await putManifest(repo, encodeURIComponent(tag).replaceAll('%2520', '%20'), m.bytes, MT.ociManifest), 400, 'TAG_INVALID')
    await expectNotStored(repo, m.digest)
    expect(await tagsOf(repo)).toEqual([])
  })

  it('accepts the longest valid tag (128 characters) and one starting with "_"', async () => {
    const repo = repoName('manifests')
    const m = await ociImage(repo)
    for (const tag of ['a'.repeat(128), '_under', 'A.b-C_9']) await push(repo, tag, m)
    expect(await tagsOf(repo)).toEqual(['A.b-C_9', '_under', 'a'.repeat(128)].sort())
  })
})

describe('manifest size limit (MANIFEST_MAX_BYTES, default 4 MiB)', () => {
  /** An OCI image manifest padded to exactly `size` bytes with an annotation. */
  async function ofSize(repo: string, base: Built, size: number): Promise<Built> {
    const empty = await build({ ...base.doc, annotations: { pad: '' } })
    const m = await build({ ...base.doc, annotations: { pad: 'x'.repeat(size - empty.size) } })
    expect(m.size).toBe(size)
    return m
  }

  it('accepts a manifest of exactly 4 MiB and serves it back byte-for-byte', async () => {
    const repo = repoName('manifests')
    const m = await ofSize(repo, await ociImage(repo, { layers: 1 }), 4 * MiB)
    await push(repo, 'big', m)
    await expectServes(await getManifest(repo, 'big'), m)
    await expectServes(await getManifest(repo, m.digest), m)
  })

  it('refuses 4 MiB + 1 byte with 413 MANIFEST_TOO_LARGE, with and without Content-Length, storing nothing', async () => {
    const repo = repoName('manifests')
    const base = await ociImage(repo, { layers: 1 })
    await push(repo, 'small', base)
    const m = await ofSize(repo, base, 4 * MiB + 1)
    await expectError(await putManifest(repo, 'big', m.bytes, MT.ociManifest), 413, 'MANIFEST_TOO_LARGE')
    await expectNotStored(repo, m.digest, { tag: 'big' })
    let sent = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= m.size) return c.close()
        c.enqueue(m.bytes.slice(sent, sent + 256 * 1024))
        sent += 256 * 1024
      },
    })
    const res = await api(`/v2/${repo}/manifests/big`, { method: 'PUT', body: stream, headers: { 'Content-Type': MT.ociManifest }, duplex: 'half' } as RequestInit)
    await expectError(res, 413, 'MANIFEST_TOO_LARGE')
    await expectNotStored(repo, m.digest, { tag: 'big' })
    expect(await tagsOf(repo)).toEqual(['small'])
  })

  it('follows MANIFEST_MAX_BYTES when set', async () => {
    const repo = repoName('manifests')
    const base = await ociImage(repo, { layers: 1 })
    const limit = { MANIFEST_MAX_BYTES: '2048' }
    const fits = await ofSize(repo, base, 2048)
    const over = await ofSize(repo, base, 2049)
    const put = (m: Built, tag: string) => callWithEnv(limit, `/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: m.bytes, headers: { 'Content-Type': MT.ociManifest } })
    await expectError(await put(over, 'over'), 413, 'MANIFEST_TOO_LARGE')
    await expectNotStored(repo, over.digest, { tag: 'over' })
    expect((await put(fits, 'fits')).status).toBe(201)
    await expectServes(await getManifest(repo, 'fits'), fits)
  })
})

describe('re-puts and tag moves', () => {
  it('re-putting identical bytes is idempotent, by tag and by digest', async () => {
    const repo = repoName('manifests')
    const m = await ociImage(repo)
    const first = await push(repo, 'v1', m)
    const again = await push(repo, 'v1', m)
    expect(again.headers.get('location')).toBe(first.headers.get('location'))
    await push(repo, m.digest, m)
    await expectServes(await getManifest(repo, 'v1'), m)
    expect(await tagsOf(repo)).toEqual(['v1'])
  })

  it('moves a tag to another manifest (of another media type); the old one stays by digest', async () => {
    const repo = repoName('manifests')
    const a = await dockerImage(repo)
    const { list: b } = await multiPlatform(repo, MT.ociIndex)
    await push(repo, 'latest', a)
    await push(repo, 'stable', a)
    await push(repo, 'latest', b)
    await expectServes(await getManifest(repo, 'latest'), b)
    await expectServes(await getManifest(repo, 'stable'), a)
    await expectServes(await getManifest(repo, a.digest), a)
    await push(repo, 'latest', a)
    await expectServes(await getManifest(repo, 'latest'), a)
    expect(await tagsOf(repo)).toEqual(['latest', 'stable'])
  })
})

describe('GET', () => {
  it('answers 404 NAME_UNKNOWN for an unknown repository, by tag and by digest', async () => {
    const repo = repoName('manifests-none')
    await expectError(await getManifest(repo, 'latest'), 404, 'NAME_UNKNOWN')
    await expectError(await getManifest(repo, 'sha256:' + '7'.repeat(64)), 404, 'NAME_UNKNOWN')
    const head = await getManifest(repo, 'latest', { method: 'HEAD' })
    expect(head.status).toBe(404)
    expect((await bytesOf(head)).byteLength).toBe(0)
  })

  it('answers 404 MANIFEST_UNKNOWN for an unknown tag or digest in a known repository', async () => {
    const repo = repoName('manifests')
    await push(repo, 'v1', await ociImage(repo))
    await expectError(await getManifest(repo, 'v2'), 404, 'MANIFEST_UNKNOWN')
    await expectError(await getManifest(repo, 'sha256:' + '8'.repeat(64)), 404, 'MANIFEST_UNKNOWN')
    expect((await getManifest(repo, 'v2', { method: 'HEAD' })).status).toBe(404)
  })

  it('answers 404 MANIFEST_UNKNOWN to GET and HEAD of a reference that is neither a tag nor a digest; PUT stays 400', async () => {
    const repo = repoName('manifests')
    const m = await ociImage(repo)
    await push(repo, 'v1', m)
    const invalid: [string, string][] = [
      ['-bad', 'TAG_INVALID'], ['.dot', 'TAG_INVALID'], ['a'.repeat(129), 'TAG_INVALID'], ['t%21', 'TAG_INVALID'],
      ['sha256:nothex', 'DIGEST_INVALID'], ['md5:' + 'a'.repeat(32), 'DIGEST_INVALID'], ['sha256:' + 'a'.repeat(63), 'DIGEST_INVALID'], [':', 'DIGEST_INVALID'],
    ]
    for (const [ref, putCode] of invalid) {
      await expectError(await getManifest(repo, ref), 404, 'MANIFEST_UNKNOWN')
      const head = await getManifest(repo, ref, { method: 'HEAD' })
      expect(head.status, ref).toBe(404)
      expect((await bytesOf(head)).byteLength).toBe(0)
      await expectError(await putManifest(repo, ref, m.bytes, MT.ociManifest), 400, putCode)
    }
    expect(await tagsOf(repo)).toEqual(['v1'])
  })

  it('answers If-None-Match with the digest with 304 and the headers, by tag and by digest, GET and HEAD', async () => {
    const repo = repoName('manifests')
    const m = await ociImage(repo)
    await push(repo, 'v1', m)
    for (const ref of ['v1', m.digest]) {
      for (const inm of [`"${m.digest}"`, m.digest, `W/"${m.digest}"`, `"sha256:${'0'.repeat(64)}", "${m.digest}"`, '*']) {
        for (const method of ['GET', 'HEAD']) {
          const res = await getManifest(repo, ref, { method, headers: { 'If-None-Match': inm } })
          expect(res.status, `${method} ${ref} If-None-Match: ${inm}`).toBe(304)
          expect(res.headers.get('etag')).toBe(`"${m.digest}"`)
          expect(res.headers.get('docker-content-digest')).toBe(m.digest)
          expect((await bytesOf(res)).byteLength).toBe(0)
        }
      }
      await expectServes(await getManifest(repo, ref, { headers: { 'If-None-Match': `"sha256:${'0'.repeat(64)}"` } }), m)
    }
  })

  it('answers a conditional GET with a stale digest after the tag moved with the new manifest', async () => {
    const repo = repoName('manifests')
    const [a, b] = [await ociImage(repo), await ociImage(repo)]
    await push(repo, 'v1', a)
    await push(repo, 'v1', b)
    await expectServes(await getManifest(repo, 'v1', { headers: { 'If-None-Match': `"${a.digest}"` } }), b)
  })
})

describe('Accept negotiation', () => {
  const only = (...types: string[]) => ({ headers: { Accept: types.join(', ') } })

  it('serves the stored manifest when its type is acceptable, or when no Accept is given', async () => {
    const repo = repoName('negotiation')
    const { list } = await multiPlatform(repo, MT.dockerList)
    await push(repo, 'multi', list)
    for (const accept of [
      null,
      '*/*',
      'application/*',
      MT.dockerList,
      `${MT.dockerV2}, ${MT.dockerList}`,
      `${MT.dockerV2};q=0.9, ${MT.dockerList};q=0.5`,
      `${MT.ociManifest}, ${MT.ociIndex}, ${MT.dockerV2}, ${MT.dockerList}`,
      `text/html, ${MT.dockerList.toUpperCase()}`,
    ]) {
      const init = accept === null ? {} : { headers: { Accept: accept } }
      await expectServes(await getManifest(repo, 'multi', init), list)
      await expectServes(await getManifest(repo, list.digest, init), list)
    }
  })

  it('serves the linux/amd64 entry to a Docker-v2-only client asking by tag for a Docker manifest list', async () => {
    const repo = repoName('negotiation')
    const { amd64: a, list } = await multiPlatform(repo, MT.dockerList)
    await push(repo, 'multi', list)
    await expectServes(await getManifest(repo, 'multi', only(MT.dockerV2)), a)
    await expectServes(await getManifest(repo, 'multi', { method: 'HEAD', ...only(MT.dockerV2) }), a, 'HEAD')
  })

  it('serves the linux/amd64 entry to an OCI-manifest-only client asking by tag for an OCI index', async () => {
    const repo = repoName('negotiation')
    const { amd64: a, list } = await multiPlatform(repo, MT.ociIndex)
    await push(repo, 'multi', list)
    await expectServes(await getManifest(repo, 'multi', only(MT.ociManifest)), a)
  })

  it('answers 404 MANIFEST_UNKNOWN when nothing acceptable exists', async () => {
    const repo = repoName('negotiation')
    const { list: ociList } = await multiPlatform(repo, MT.ociIndex)
    const { list: dockerList } = await multiPlatform(repo, MT.dockerList)
    const oci = await ociImage(repo)
    const armOnly = await index(MT.dockerList, [{ built: (await dockerManifestPushed(repo)), platform: arm64 }])
    await push(repo, 'oci-multi', ociList)
    await push(repo, 'docker-multi', dockerList)
    await push(repo, 'oci', oci)
    await push(repo, 'arm-only', armOnly)
    // By digest an index is never swapped for a child.
    await expectError(await getManifest(repo, ociList.digest, only(MT.ociManifest)), 404, 'MANIFEST_UNKNOWN')
    await expectError(await getManifest(repo, dockerList.digest, only(MT.dockerV2)), 404, 'MANIFEST_UNKNOWN')
    // The index's linux/amd64 entry is of a type the client does not take either.
    await expectError(await getManifest(repo, 'oci-multi', only(MT.dockerV2)), 404, 'MANIFEST_UNKNOWN')
    // No linux/amd64 entry.
    await expectError(await getManifest(repo, 'arm-only', only(MT.dockerV2)), 404, 'MANIFEST_UNKNOWN')
    // An OCI image manifest to a Docker-only client, and the reverse.
    await expectError(await getManifest(repo, 'oci', only(MT.dockerV2, MT.dockerList)), 404, 'MANIFEST_UNKNOWN')
    await expectError(await getManifest(repo, 'docker-multi', only(MT.ociManifest, MT.ociIndex)), 404, 'MANIFEST_UNKNOWN')
    await expectError(await getManifest(repo, 'oci', only('application/json')), 404, 'MANIFEST_UNKNOWN')
    expect((await getManifest(repo, 'oci', { method: 'HEAD', ...only(MT.dockerV2) })).status).toBe(404)
  })

  async function dockerManifestPushed(repo: string): Promise<Built> {
    const m = await dockerImage(repo, { platform: arm64 })
    await push(repo, m.digest, m)
    return m
  }
})

describe('DELETE', () => {
  /** An image tagged a and b, another tagged c, and a signature (subject: the image) tagged sig and sig2. */
  async function scene() {
    const repo = repoName('delete')
    const image = await ociImage(repo)
    const other = await dockerImage(repo)
    const sig = await ociArtifact(repo, 'application/vnd.example.sig', image.descriptor)
    await Promise.all([push(repo, 'a', image), push(repo, 'c', other)])
    await push(repo, 'b', image)
    await push(repo, 'sig', sig)
    await push(repo, 'sig2', sig)
    return { repo, image, other, sig }
  }
  const referrersOf = async (repo: string, digest: string) =>
    ((await (await api(`/v2/${repo}/referrers/${digest}`)).json()) as { manifests: Descriptor[] }).manifests.map((d) => d.digest)

  it('by tag removes only the tag (202): the manifest stays by digest and under its other tags', async () => {
    const { repo, image } = await scene()
    const res = await del(repo, 'a')
    expect(res.status).toBe(202)
    await expectError(await getManifest(repo, 'a'), 404, 'MANIFEST_UNKNOWN')
    await expectServes(await getManifest(repo, 'b'), image)
    await expectServes(await getManifest(repo, image.digest), image)
    expect(await tagsOf(repo)).toEqual(['b', 'c', 'sig', 'sig2'])
  })

  it('by digest removes the manifest and every tag pointing at it (202), nothing else', async () => {
    const { repo, image, other, sig } = await scene()
    expect((await del(repo, image.digest)).status).toBe(202)
    await expectError(await getManifest(repo, image.digest), 404, 'MANIFEST_UNKNOWN')
    for (const tag of ['a', 'b']) await expectError(await getManifest(repo, tag), 404, 'MANIFEST_UNKNOWN')
    expect(await tagsOf(repo)).toEqual(['c', 'sig', 'sig2'])
    await expectServes(await getManifest(repo, 'c'), other)
    // Referrers of a deleted subject are separate manifests: still there.
    await expectServes(await getManifest(repo, 'sig'), sig)
    expect(await referrersOf(repo, image.digest)).toEqual([sig.digest])
  })

  it("by digest removes a referrer's entry from its subject's referrers list, and its tags", async () => {
    const { repo, image, sig } = await scene()
    expect(await referrersOf(repo, image.digest)).toEqual([sig.digest])
    expect((await del(repo, sig.digest)).status).toBe(202)
    expect(await referrersOf(repo, image.digest)).toEqual([])
    expect(await tagsOf(repo)).toEqual(['a', 'b', 'c'])
    await expectServes(await getManifest(repo, 'a'), image)
  })

  it('leaves every blob in R2 (and linked) after deletes', async () => {
    const { repo, image, sig } = await scene()
    await del(repo, 'a')
    await del(repo, image.digest)
    await del(repo, sig.digest)
    const blobs = [image.doc.config, ...(image.doc.layers as Descriptor[]), sig.doc.config, ...(sig.doc.layers as Descriptor[])] as Descriptor[]
    for (const b of blobs) {
      expect(await bindings.BLOBS.head(keys.blob(b.digest as Digest)), b.digest).not.toBeNull()
      const res = await api(`/v2/${repo}/blobs/${b.digest}`)
      expect(res.status).toBe(200)
      expect(await sha256(await bytesOf(res))).toBe(b.digest)
    }
  })

  it('answers 404 MANIFEST_UNKNOWN for an unknown tag or digest, and for a second delete', async () => {
    const { repo, image } = await scene()
    await expectError(await del(repo, 'nope'), 404, 'MANIFEST_UNKNOWN')
    await expectError(await del(repo, 'sha256:' + '9'.repeat(64)), 404, 'MANIFEST_UNKNOWN')
    expect((await del(repo, 'a')).status).toBe(202)
    await expectError(await del(repo, 'a'), 404, 'MANIFEST_UNKNOWN')
    expect((await del(repo, image.digest)).status).toBe(202)
    await expectError(await del(repo, image.digest), 404, 'MANIFEST_UNKNOWN')
    await expectError(await del(repoName('delete-none'), 'a'), 404, 'MANIFEST_UNKNOWN')
  })

  it('answers 405 UNSUPPORTED when DELETE_ENABLED=false, deleting nothing', async () => {
    const { repo, image, sig } = await scene()
    const off = (ref: string) => callWithEnv({ DELETE_ENABLED: 'false' }, `/v2/${repo}/manifests/${ref}`, { method: 'DELETE' })
    await expectError(await off('a'), 405, 'UNSUPPORTED')
    await expectError(await off(image.digest), 405, 'UNSUPPORTED')
    await expectError(await off(sig.digest), 405, 'UNSUPPORTED')
    await expectServes(await getManifest(repo, 'a'), image)
    await expectServes(await getManifest(repo, image.digest), image)
    expect(await tagsOf(repo)).toEqual(['a', 'b', 'c', 'sig', 'sig2'])
    expect(await referrersOf(repo, image.digest)).toEqual([sig.digest])
  })

  it('lets a deleted manifest be pushed again', async () => {
    const { repo, image } = await scene()
    expect((await del(repo, image.digest)).status).toBe(202)
    await push(repo, 'again', image)
    await expectServes(await getManifest(repo, image.digest), image)
    expect(await tagsOf(repo)).toEqual(['again', 'c', 'sig', 'sig2'])
  })
})

/** A schema 1 manifest of `repo:tag` over `layers` (newest first), history to match. */
function schema1Manifest(repo: string, tag: string, layers: string[]): Record<string, unknown> {
  return {
    schemaVersion: 1,
    name: repo,
    tag,
    architecture: 'amd64',
    fsLayers: layers.map((blobSum) => ({ blobSum })),
    history: layers.map((_, i) => ({ v1Compatibility: JSON.stringify({ id: String(layers.length - i), created: '2016-01-01T00:00:00Z' }) })),
  }
}

describe('schema 1 signed manifests (SCHEMA1_ENABLED)', () => {
  const on = { SCHEMA1_ENABLED: 'true' }
  const put = (repo: string, ref: string, body: Uint8Array, type: string | null = MT.schema1Signed, settings: Partial<Env> = on) =>
    callWithEnv(settings, `/v2/${repo}/manifests/${ref}`, { method: 'PUT', body, headers: type ? { 'Content-Type': type } : {} })

  async function signed(repo: string, tag: string) {
    const layers = [await pushBlob(repo, randomBlob(300)), await pushBlob(repo, randomBlob(200))]
    const manifest = schema1Manifest(repo, tag, [layers[0]!, layers[1]!, layers[0]!])
    const bytes = await signSchema1(manifest)
    return { manifest, bytes, digest: await sha256(prettyPayload(manifest)) }
  }

  it('accepts a signed manifest with the setting on, its layers pushed first, and serves it back byte-for-byte with its type', async () => {
    const repo = repoName('schema1')
    const s = await signed(repo, 'old')
    const res = await put(repo, 'old', s.bytes)
    expect(res.status, await res.clone().text()).toBe(201)
    // The digest is over the signed payload (the manifest without its signatures).
    expect(res.headers.get('docker-content-digest')).toBe(s.digest)
    expect(res.headers.get('location')).toBe(`/v2/${repo}/manifests/${s.digest}`)
    const served: Built = { doc: s.manifest, mediaType: MT.schema1Signed, text: '', bytes: s.bytes, digest: s.digest, size: s.bytes.byteLength, descriptor: { mediaType: MT.schema1Signed, digest: s.digest, size: s.bytes.byteLength } }
    for (const ref of ['old', s.digest]) {
      await expectServes(await getManifest(repo, ref), served)
      await expectServes(await getManifest(repo, ref, { method: 'HEAD' }), served, 'HEAD')
    }
    // Pushed again by its digest: idempotent.
    expect((await put(repo, s.digest, s.bytes)).status).toBe(201)
    expect(await tagsOf(repo)).toEqual(['old'])
  })

  it('refuses it with the setting off (400 MANIFEST_INVALID), storing nothing', async () => {
    const repo = repoName('schema1')
    const s = await signed(repo, 'old')
    await expectError(await put(repo, 'old', s.bytes, MT.schema1Signed, { SCHEMA1_ENABLED: 'false' }), 400, 'MANIFEST_INVALID')
    await expectError(await put(repo, 'old', s.bytes, null, {}), 400, 'MANIFEST_INVALID')
    await expectNotStored(repo, s.digest, { tag: 'old' })
  })

  it('refuses a bad signature (400 MANIFEST_INVALID), storing nothing', async () => {
    const repo = repoName('schema1')
    const layer = await pushBlob(repo, randomBlob(100))
    const manifest = schema1Manifest(repo, 'old', [layer])
    const digest = await sha256(prettyPayload(manifest))
    // Signed by one key, claiming another.
    const wrongKey = await signSchema1(manifest, { headerJwk: (await schema1Key()).jwk })
    await expectError(await put(repo, 'old', wrongKey), 400, 'MANIFEST_INVALID')
    // A valid signature whose payload was altered afterwards.
    const good = new TextDecoder().decode(await signSchema1(manifest))
    const tampered = new TextEncoder().encode(good.replace('"architecture": "amd64"', '"architecture": "arm64"'))
    expect(tampered).not.toEqual(new TextEncoder().encode(good))
    await expectError(await put(repo, 'old', tampered), 400, 'MANIFEST_INVALID')
    // No signature at all, as the signed type.
    await expectError(await put(repo, 'old', prettyPayload(manifest)), 400, 'MANIFEST_INVALID')
    await expectNotStored(repo, digest, { tag: 'old' })
  })

  it('refuses a name or tag that does not match the URL, and layers not pushed', async () => {
    const repo = repoName('schema1')
    const layer = await pushBlob(repo, randomBlob(100))
    await expectError(await put(repo, 'old', await signSchema1(schema1Manifest('some/other', 'old', [layer]))), 400, 'MANIFEST_INVALID')
    await expectError(await put(repo, 'old', await signSchema1(schema1Manifest(repo, 'new', [layer]))), 400, 'MANIFEST_INVALID')
    const ghost = 'sha256:' + 'a'.repeat(64)
    const missing = schema1Manifest(repo, 'old', [ghost])
    await expectError(await put(repo, 'old', await signSchema1(missing)), 400, 'MANIFEST_BLOB_UNKNOWN')
    await expectNotStored(repo, await sha256(prettyPayload(missing)), { tag: 'old' })
  })
})

describe('PUT by digest with ?tag= (distribution-spec main, "Pushing Manifests")', () => {
  const putTagged = (repo: string, m: Built, tags: string[], digest = m.digest) =>
    putManifest(repo, `${digest}?${tags.map((t) => `tag=${encodeURIComponent(t)}`).join('&')}`, m.bytes, m.mediaType)

  it('tags the manifest with each of 10 tags and names each in OCI-Tag', async () => {
    const repo = repoName('push-tags')
    const m = await ociImage(repo)
    const tags = ['1.2.3', '1.2', '1', 'latest', 'stable', '_x', 'A-b.c_d', 'v'.repeat(128), 'rc1', 'prod']
    const res = await putTagged(repo, m, tags)
    expect(res.status, await res.clone().text()).toBe(201)
    expect(res.headers.get('docker-content-digest')).toBe(m.digest)
    // RFC 9110 §5.3: several OCI-Tag field lines read as one comma-separated list.
    expect(res.headers.get('oci-tag')!.split(',').map((t) => t.trim())).toEqual(tags)
    expect(await tagsOf(repo)).toEqual([...tags].sort())
    for (const tag of tags) await expectServes(await getManifest(repo, tag), m)
    // Each tag record carries its push time and size (CONTRACTS.md 1).
    const record = await bindings.LINKS.getWithMetadata<{ digest: string; pushed: number; size: number }>(keys.tag(repo as never, 'prod' as never))
    expect(record.metadata).toMatchObject({ digest: m.digest, mediaType: MT.ociManifest })
    expect(record.metadata!.pushed).toBeGreaterThan(Date.now() - 60_000)
    expect(record.metadata!.size).toBeGreaterThan(m.size)
  })

  it('sets a repeated tag once; without ?tag= sets none and sends no OCI-Tag', async () => {
    const repo = repoName('push-tags')
    const m = await ociImage(repo)
    const res = await putTagged(repo, m, ['a', 'b', 'a'])
    expect(res.headers.get('oci-tag')).toBe('a, b')
    const plain = await push(repo, m.digest, m)
    expect(plain.headers.get('oci-tag')).toBeNull()
    expect(await tagsOf(repo)).toEqual(['a', 'b'])
  })

  it('answers 414 TOO_MANY_TAGS past 20 tags, storing nothing', async () => {
    const repo = repoName('push-tags')
    const m = await ociImage(repo)
    const tags = Array.from({ length: 21 }, (_, i) => `t${i}`)
    await expectError(await putTagged(repo, m, tags), 414, 'TOO_MANY_TAGS')
    await expectNotStored(repo, m.digest, { tag: 't0' })
    expect((await putTagged(repo, m, tags.slice(0, 20))).status).toBe(201)
    expect(await tagsOf(repo)).toHaveLength(20)
  })

  it('refuses the whole PUT (400 TAG_INVALID) when one tag is invalid, storing nothing', async () => {
    const repo = repoName('push-tags')
    const m = await ociImage(repo)
    for (const bad of ['-dash', '.dot', 'a'.repeat(129), 'sp ace', 'colon:x', '']) {
      await expectError(await putTagged(repo, m, ['good', bad, 'fine']), 400, 'TAG_INVALID')
    }
    await expectNotStored(repo, m.digest, { tag: 'good' })
    expect(await tagsOf(repo)).toEqual([])
  })

  it('holds schema 1 manifests to their own tag, for every ?tag=', async () => {
    const repo = repoName('push-tags')
    const layer = await pushBlob(repo, randomBlob(100))
    const manifest = schema1Manifest(repo, 'old', [layer])
    const bytes = await signSchema1(manifest)
    const digest = await sha256(prettyPayload(manifest))
    const put = (query: string) =>
      callWithEnv({ SCHEMA1_ENABLED: 'true' }, `/v2/${repo}/manifests/${digest}?${query}`, { method: 'PUT', body: bytes, headers: { 'Content-Type': MT.schema1Signed } })
    await expectError(await put('tag=old&tag=new'), 400, 'MANIFEST_INVALID')
    await expectError(await put('tag=new'), 400, 'MANIFEST_INVALID')
    const ok = await put('tag=old')
    expect(ok.status, await ok.clone().text()).toBe(201)
    expect(ok.headers.get('oci-tag')).toBe('old')
  })

  it('ignores ?tag= on a PUT by tag (the spec defines it for digests only)', async () => {
    const repo = repoName('push-tags')
    const m = await ociImage(repo)
    const res = await putManifest(repo, 'v1?tag=other', m.bytes, m.mediaType)
    expect(res.status).toBe(201)
    expect(res.headers.get('oci-tag')).toBeNull()
    expect(await tagsOf(repo)).toEqual(['v1'])
  })
})

describe('a manifest pushed by sha512 keeps its digest', () => {
  async function sha512Built(m: Built): Promise<Built> {
    const digest = 'sha512:' + [...new Uint8Array(await crypto.subtle.digest('SHA-512', m.bytes))].map((b) => b.toString(16).padStart(2, '0')).join('')
    return { ...m, digest, descriptor: { ...m.descriptor, digest } }
  }

  it('by tag (set with ?tag=) and by digest, GET and HEAD answer the sha512 digest and the pushed bytes', async () => {
    const repo = repoName('sha512')
    const m = await sha512Built(await ociImage(repo))
    const res = await putManifest(repo, `${m.digest}?tag=v1&tag=latest`, m.bytes, m.mediaType)
    expect(res.status, await res.clone().text()).toBe(201)
    expect(res.headers.get('docker-content-digest')).toBe(m.digest)
    expect(res.headers.get('location')).toBe(`/v2/${repo}/manifests/${m.digest}`)
    for (const ref of ['v1', 'latest', m.digest]) {
      await expectServes(await getManifest(repo, ref), m)
      await expectServes(await getManifest(repo, ref, { method: 'HEAD' }), m, 'HEAD')
    }
    // Not under its sha256: it was never pushed by that name.
    await expectError(await getManifest(repo, await sha256(m.bytes)), 404, 'MANIFEST_UNKNOWN')
  })

  it('pushed by sha512 without ?tag=, then tagged by a tag PUT of the same bytes: the tag is the sha256 push', async () => {
    const repo = repoName('sha512')
    const base = await ociImage(repo)
    const m = await sha512Built(base)
    await push(repo, m.digest, m)
    await expectServes(await getManifest(repo, m.digest), m)
    await push(repo, 'v1', base)
    await expectServes(await getManifest(repo, 'v1'), base)
  })

  it('as a referrer and as a subject: listed under its sha512 digest, and deleted with its tags', async () => {
    const repo = repoName('sha512')
    const subject = await sha512Built(await ociImage(repo))
    await push(repo, subject.digest, subject)
    const sig = await sha512Built(await ociArtifact(repo, 'application/vnd.example.sig', subject.descriptor))
    const res = await putManifest(repo, `${sig.digest}?tag=sig`, sig.bytes, sig.mediaType)
    expect(res.status, await res.clone().text()).toBe(201)
    expect(res.headers.get('oci-subject')).toBe(subject.digest)
    const list = (await (await api(`/v2/${repo}/referrers/${subject.digest}`)).json()) as { manifests: Descriptor[] }
    expect(list.manifests.map((d) => d.digest)).toEqual([sig.digest])
    expect((await del(repo, sig.digest)).status).toBe(202)
    await expectNotStored(repo, sig.digest, { tag: 'sig', subject: subject.digest })
  })
})
