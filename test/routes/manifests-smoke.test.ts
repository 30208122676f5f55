import { describe, expect, it } from 'vitest'
import { call, pushBlob, randomBlob, repoName, sha256 } from '../helpers'

describe('manifest smoke', () => {
  it('pushes and pulls an OCI image by tag and digest, with referrers', async () => {
    const repo = repoName()
    const config = await pushBlob(repo, new TextEncoder().encode('{}'))
    const layer = await pushBlob(repo, randomBlob(1000))
    const m = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: 1000 }] })
    let r = await call(`/v2/${repo}/manifests/v1`, { method: 'PUT', body: m, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } })
    expect(r.status, await r.clone().text()).toBe(201)
    const d = await sha256(m)
    expect(r.headers.get('docker-content-digest')).toBe(d)
    r = await call(`/v2/${repo}/manifests/v1`)
    expect(await r.text()).toBe(m)
    r = await call(`/v2/${repo}/manifests/${d}`, { method: 'HEAD' })
    expect(r.status).toBe(200)
    expect(r.headers.get('content-length')).toBe(String(m.length))
    const a = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/x-sig', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: config, size: 2 }, layers: [], subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d, size: m.length } })
    r = await call(`/v2/${repo}/manifests/${await sha256(a)}`, { method: 'PUT', body: a, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } })
    expect(r.status, await r.clone().text()).toBe(201)
    expect(r.headers.get('oci-subject')).toBe(d)
    r = await call(`/v2/${repo}/referrers/${d}`)
    expect(r.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json')
    const idx = (await r.json()) as { manifests: { artifactType: string }[] }
    expect(idx.manifests.map((x) => x.artifactType)).toEqual(['application/x-sig'])
    r = await call(`/v2/${repo}/tags/list`)
    expect(await r.json()).toEqual({ name: repo, tags: ['v1'] })
    r = await call(`/v2/_catalog`)
    expect(((await r.json()) as { repositories: string[] }).repositories).toContain(repo)
  })
})
