/**
 * The contract every manifest handler keeps, run over each one by its own test file
 * (docker-v2, oci-manifest, docker-list, oci-index): the handler is registered for
 * its media type, a valid example is accepted and served back byte-for-byte, the
 * references it lists are exactly what the example references, and every broken
 * variant (wrong schemaVersion, missing fields, bad descriptors, bad digests) is
 * 400 MANIFEST_INVALID with nothing stored.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { RegistryError } from '../../src/errors'
import { handlerFor } from '../../src/manifests'
import type { ManifestHandler } from '../../src/manifests/handler'
import { repoName } from '../helpers'
import {
  api,
  build,
  expectError,
  expectNotStored,
  expectServes,
  getManifest,
  ociArtifact,
  push,
  putManifest,
  tagsOf,
  type Built,
  type Doc,
} from './fixtures'

export interface Example {
  /** A valid manifest, not pushed; everything it references is in the repository. */
  manifest: Built
  /** Blob digests the handler must list (config and stored layers, once each). */
  blobs: string[]
  /** Child manifest digests the handler must list (an index's entries). */
  manifests: string[]
}

export interface ContractCase {
  handler: ManifestHandler
  mediaType: string
  /** An image manifest (config + layers) or an index (manifests). */
  kind: 'image' | 'index'
  /** Top-level fields whose absence is MANIFEST_INVALID. */
  required: string[]
  /** Whether the type carries a `subject` (the referrers API). */
  subject: boolean
  /** Pushes everything a valid example references into `repo` and returns it. */
  example(repo: string): Promise<Example>
}

type Path = (string | number)[]

interface Broken {
  what: string
  mutate(doc: Doc): void
}

const clone = (doc: Doc): Doc => structuredClone(doc)

function at(doc: Doc, path: Path): Record<string, unknown> {
  let v: unknown = doc
  for (const p of path) v = (v as Record<string | number, unknown>)[p]
  return v as Record<string, unknown>
}

/** Every way to break a valid example of `c`, each a MANIFEST_INVALID. */
function brokenVariants(c: ContractCase): Broken[] {
  const descriptors: Path[] = c.kind === 'image' ? [['config'], ['layers', 0]] : [['manifests', 0]]
  const arrays = c.kind === 'image' ? ['layers'] : ['manifests']
  const out: Broken[] = [
    { what: 'schemaVersion 1', mutate: (d) => void (d.schemaVersion = 1) },
    { what: 'schemaVersion 3', mutate: (d) => void (d.schemaVersion = 3) },
    { what: 'schemaVersion "2" (a string)', mutate: (d) => void (d.schemaVersion = '2') },
    { what: 'schemaVersion missing', mutate: (d) => void delete d.schemaVersion },
    ...c.required.map((f) => ({ what: `${f} missing`, mutate: (d: Doc) => void delete d[f] })),
    ...arrays.map((f) => ({ what: `${f} not an array`, mutate: (d: Doc) => void (d[f] = { 0: at(d, [f, 0]) }) })),
    ...arrays.map((f) => ({ what: `${f} holding a string`, mutate: (d: Doc) => void (d[f] = ['sha256:' + '0'.repeat(64)]) })),
    // The other kind's fields: an image manifest is not an index and vice versa.
    c.kind === 'image'
      ? { what: 'an image manifest with manifests', mutate: (d: Doc) => void (d.manifests = []) }
      : { what: 'an index with a config', mutate: (d: Doc) => void (d.config = d.manifests && (d.manifests as Doc[])[0]) },
  ]
  if (c.kind === 'image') out.push({ what: 'config not an object', mutate: (d) => void (d.config = (d.config as Doc).digest) })
  if (c.kind === 'index') out.push({ what: 'an index with layers', mutate: (d) => void (d.layers = []) })
  for (const p of descriptors) {
    const name = p.join('.')
    const set = (field: string, value: unknown) => (d: Doc) => void (at(d, p)[field] = value)
    const del = (field: string) => (d: Doc) => void delete at(d, p)[field]
    out.push(
      { what: `${name}.digest missing`, mutate: del('digest') },
      { what: `${name}.digest too short`, mutate: set('digest', 'sha256:abc123') },
      { what: `${name}.digest in upper case`, mutate: (d) => void (at(d, p).digest = (at(d, p).digest as string).toUpperCase().replace('SHA256', 'sha256')) },
      { what: `${name}.digest without algorithm`, mutate: (d) => void (at(d, p).digest = (at(d, p).digest as string).slice('sha256:'.length)) },
      { what: `${name}.digest of an unknown algorithm`, mutate: set('digest', 'md5:' + 'a'.repeat(32)) },
      { what: `${name}.digest sha256 with 128 hex`, mutate: set('digest', 'sha256:' + 'a'.repeat(128)) },
      { what: `${name}.digest a number`, mutate: set('digest', 42) },
      { what: `${name}.size missing`, mutate: del('size') },
      { what: `${name}.size negative`, mutate: set('size', -1) },
      { what: `${name}.size fractional`, mutate: set('size', 1.5) },
      { what: `${name}.size a string`, mutate: set('size', '12') },
      { what: `${name}.mediaType missing`, mutate: del('mediaType') },
      { what: `${name}.mediaType empty`, mutate: set('mediaType', '') },
    )
  }
  return out
}

export function manifestHandlerContract(c: ContractCase): void {
  describe(`${c.mediaType} handler contract`, () => {
    let repo: string
    let ex: Example

    beforeAll(async () => {
      repo = repoName('contract')
      ex = await c.example(repo)
    })

    it('is the handler registered for its media type', () => {
      expect(c.handler.mediaTypes).toContain(c.mediaType)
      expect(handlerFor(c.mediaType)).toBe(c.handler)
    })

    it('parses a valid example and lists exactly what it references', async () => {
      const parsed = await c.handler.parse(clone(ex.manifest.doc), ex.manifest.bytes, { repo, tag: 'v1' })
      expect([...parsed.blobs].sort()).toEqual([...ex.blobs].sort())
      expect(parsed.manifests.map((m) => m.digest).sort()).toEqual([...ex.manifests].sort())
      expect(parsed.subject).toBeUndefined()
    })

    it('accepts a valid example (201, Location, Docker-Content-Digest) and serves it back byte-for-byte by tag and by digest', async () => {
      const m = ex.manifest
      const put = await push(repo, 'valid', m)
      expect(put.headers.get('location')).toBe(`/v2/${repo}/manifests/${m.digest}`)
      for (const ref of ['valid', m.digest]) {
        await expectServes(await getManifest(repo, ref), m)
        await expectServes(await getManifest(repo, ref, { method: 'HEAD' }), m, 'HEAD')
      }
    })

    it('accepts a valid example pushed by its digest', async () => {
      const m = await build({ ...clone(ex.manifest.doc), annotations: { 'org.example.by': 'digest' } }, c.mediaType)
      await push(repo, m.digest, m)
      await expectServes(await getManifest(repo, m.digest), m)
    })

    it("takes the media type from the manifest's mediaType field when Content-Type is absent or generic", async () => {
      for (const contentType of [null, 'application/json', 'application/octet-stream']) {
        const m = await build({ ...clone(ex.manifest.doc), annotations: { 'org.example.ct': String(contentType) } }, c.mediaType)
        const res = await putManifest(repo, m.digest, m.bytes, contentType)
        expect(res.status, await res.text()).toBe(201)
        await expectServes(await getManifest(repo, m.digest), m)
      }
    })

    it('refuses a mediaType field other than its own (MANIFEST_INVALID), at the handler and over the API', async () => {
      const other = c.mediaType.includes('docker') ? 'application/vnd.oci.image.manifest.v1+json' : 'application/vnd.docker.distribution.manifest.v2+json'
      const doc = { ...clone(ex.manifest.doc), mediaType: other }
      const thrown = await Promise.resolve()
        .then(() => c.handler.parse(doc, new Uint8Array(), { repo, tag: null }))
        .catch((e: unknown) => e)
      expect(thrown).toBeInstanceOf(RegistryError)
      expect((thrown as RegistryError).code).toBe('MANIFEST_INVALID')
      const m = await build(doc, c.mediaType)
      await expectError(await putManifest(repo, 'conflict', m.bytes, c.mediaType), 400, 'MANIFEST_INVALID')
      await expectNotStored(repo, m.digest, { tag: 'conflict' })
    })

    it('refuses every broken variant at the handler with MANIFEST_INVALID', async () => {
      for (const b of brokenVariants(c)) {
        const doc = clone(ex.manifest.doc)
        b.mutate(doc)
        const thrown = await Promise.resolve()
          .then(() => c.handler.parse(doc, new Uint8Array(), { repo, tag: null }))
          .catch((e: unknown) => e)
        expect(thrown, b.what).toBeInstanceOf(RegistryError)
        expect((thrown as RegistryError).code, b.what).toBe('MANIFEST_INVALID')
      }
    })

    it.each(brokenVariants(c).map((b, i) => ({ ...b, i })))(
      'refuses $what over the API with 400 MANIFEST_INVALID and stores nothing',
      async ({ mutate, i }) => {
        const doc = clone(ex.manifest.doc)
        mutate(doc)
        const m = await build(doc, c.mediaType)
        const tag = `broken-${i}`
        await expectError(await putManifest(repo, tag, m.bytes, c.mediaType), 400, 'MANIFEST_INVALID')
        await expectNotStored(repo, m.digest, { tag })
      },
    )

    it('refuses the example in a repository where what it references is not linked (400 MANIFEST_BLOB_UNKNOWN), storing nothing', async () => {
      // Everything it references exists, but in another repository.
      const elsewhere = repoName('contract-elsewhere')
      await push(elsewhere, 'other', await ociArtifact(elsewhere, 'application/x.placeholder'))
      await expectError(await putManifest(elsewhere, 'v1', ex.manifest.bytes, c.mediaType), 400, 'MANIFEST_BLOB_UNKNOWN')
      await expectNotStored(elsewhere, ex.manifest.digest, { tag: 'v1' })
      expect(await tagsOf(elsewhere)).toEqual(['other'])
    })

    if (c.subject) {
      it('reports a subject (which need not exist), replies OCI-Subject and lists the referrer', async () => {
        const subject = { mediaType: c.mediaType, digest: 'sha256:' + 'c'.repeat(64), size: 123 }
        const m = await build({ ...clone(ex.manifest.doc), subject }, c.mediaType)
        const parsed = await c.handler.parse(clone(m.doc), m.bytes, { repo, tag: null })
        expect(parsed.subject?.digest).toBe(subject.digest)
        const res = await push(repo, m.digest, m)
        expect(res.headers.get('oci-subject')).toBe(subject.digest)
        const refs = (await (await api(`/v2/${repo}/referrers/${subject.digest}`)).json()) as { manifests: { digest: string }[] }
        expect(refs.manifests.map((d) => d.digest)).toEqual([m.digest])
      })
    } else {
      it('has no subject: a subject field is neither replied as OCI-Subject nor listed as a referrer', async () => {
        const subject = { mediaType: c.mediaType, digest: 'sha256:' + 'd'.repeat(64), size: 123 }
        const m = await build({ ...clone(ex.manifest.doc), subject }, c.mediaType)
        const parsed = await c.handler.parse(clone(m.doc), m.bytes, { repo, tag: null })
        expect(parsed.subject).toBeUndefined()
        const res = await push(repo, m.digest, m)
        expect(res.headers.get('oci-subject')).toBeNull()
        const refs = (await (await api(`/v2/${repo}/referrers/${subject.digest}`)).json()) as { manifests: unknown[] }
        expect(refs.manifests).toEqual([])
      })
    }
  })
}
