/** RETENTION (applied by the collector), IMMUTABLE_TAGS (on push and delete), READ_ONLY. */
import { describe, expect, it } from 'vitest'
import { bindings, errorCode, repoName } from '../helpers'
import { parseRetention, retentionRules, tagsToDrop } from '../../src/gc/retention'
import { parseImmutable } from '../../src/gc/immutable'
import { keys } from '../../src/storage/keys'
import type { Repo, Tag } from '../../src/names'
import { gc, gcEnv, MANIFEST, pushImage, pushManifest, via } from './setup'

const DAY = 86_400_000
const now = Date.now()

/** Backdates a tag's push time (as if pushed `days` ago). */
async function age(repo: string, tag: string, days: number) {
  const key = keys.tag(repo as Repo, tag as Tag)
  const { value, metadata } = await bindings.LINKS.getWithMetadata<Record<string, unknown>>(key, 'arrayBuffer')
  await bindings.LINKS.put(key, value!, { metadata: { ...metadata, pushed: now - days * DAY } })
}

describe('RETENTION rules', () => {
  it('keepLast keeps the newest N by push time; keep patterns and unknown push times are never dropped', () => {
    const rule = parseRetention('[{"repos": "*", "keepLast": 2, "keep": "v*"}]')[0]!
    const tags = [{ tag: 'a', pushed: 1 }, { tag: 'b', pushed: 5 }, { tag: 'c', pushed: 3 }, { tag: 'v1', pushed: 0 }, { tag: 'old' }]
    expect(tagsToDrop(rule, tags, now, () => false)).toEqual([{ tag: 'a', rule: 'RETENTION[0].keepLast=2' }])
  })

  it('olderThanDays drops tags pushed more than D days ago, never an immutable one', () => {
    const rule = parseRetention('[{"repos": "ci/*", "olderThanDays": 30}]')[0]!
    const tags = [{ tag: 'old', pushed: now - 31 * DAY }, { tag: 'new', pushed: now - DAY }, { tag: 'v1', pushed: now - 90 * DAY }]
    expect(tagsToDrop(rule, tags, now, (t) => t === 'v1')).toEqual([{ tag: 'old', rule: 'RETENTION[0].olderThanDays=30' }])
  })

  it.each([
    ['not json', /RETENTION: not valid JSON/],
    ['{}', /RETENTION: must be a JSON array/],
    ['[{"repos": "a"}]', /RETENTION\[0\]: removes nothing/],
    ['[{"repos": "A B", "keepLast": 1}]', /RETENTION\[0\]\.repos/],
    ['[{"repos": "a", "keepLast": -1}]', /RETENTION\[0\]\.keepLast/],
    ['[{"repos": "a", "keepLast": 1, "color": 1}]', /RETENTION\[0\]\.color: unknown field/],
  ])('rejects %s, naming the setting', (json, message) => {
    expect(() => parseRetention(json)).toThrow(message)
  })

  it('the collector drops what the rules say (dry run: each tag and its rule), then untagged manifests past untaggedDays', async () => {
    const repo = repoName('ret')
    const imgs = []
    for (const tag of ['t1', 't2', 't3', 'v1']) imgs.push(await pushImage(repo, tag))
    await age(repo, 't1', 40)
    await age(repo, 't2', 20)
    await age(repo, 't3', 10)
    await age(repo, 'v1', 50)
    const env = gcEnv({ RETENTION: JSON.stringify([{ repos: 'ret/*', keepLast: 1, keep: 'v*', olderThanDays: 30, untaggedDays: 0 }]) })
    const dry = await gc(env, { dryRun: true, repo: repo })
    expect(dry.repositories[repo]!.tags).toEqual([
      { tag: 't1', rule: 'RETENTION[0].olderThanDays=30' },
      { tag: 't2', rule: 'RETENTION[0].keepLast=1' },
    ])
    expect(dry.repositories[repo]!.manifests.count).toBe(2)
    const real = await gc(env, { repo: repo })
    expect(real.repositories[repo]).toEqual(dry.repositories[repo])
    expect((await via(`/v2/${repo}/tags/list`).then((r) => r.json()) as { tags: string[] }).tags.sort()).toEqual(['t3', 'v1'])
    expect((await via(`/v2/${repo}/manifests/${imgs[0]!.digest}`, { headers: { Accept: MANIFEST } })).status).toBe(404)
  })
})

describe('IMMUTABLE_TAGS', () => {
  const env = { IMMUTABLE_TAGS: '["v*", {"repos": "prod/*", "tags": "stable"}]' }
  const put = (repo: string, ref: string, body: string) => via(`/v2/${repo}/manifests/${ref}`, { method: 'PUT', body, headers: { 'Content-Type': MANIFEST } }, env)

  it('moving an immutable tag answers 403 DENIED naming the rule; the same manifest again is 201', async () => {
    const repo = repoName('imm')
    const a = await pushImage(repo, null)
    const b = await pushImage(repo, null)
    expect((await put(repo, 'v1', a.bytes)).status).toBe(201)
    expect((await put(repo, 'v1', a.bytes)).status).toBe(201)
    const moved = await put(repo, 'v1', b.bytes)
    expect(moved.status).toBe(403)
    const body = (await moved.json()) as { errors: { code: string; message: string }[] }
    expect(body.errors[0]!.code).toBe('DENIED')
    expect(body.errors[0]!.message).toContain('IMMUTABLE_TAGS[0] "v*"')
    expect((await put(repo, 'latest', b.bytes)).status).toBe(201)
    expect((await put(repo, 'latest', a.bytes)).status).toBe(201)
  })

  it('deleting an immutable tag, or the manifest it names, answers 403 DENIED', async () => {
    const repo = repoName('prod')
    const a = await pushImage(repo, null)
    await put(repo, 'stable', a.bytes)
    const byTag = await via(`/v2/${repo}/manifests/stable`, { method: 'DELETE' }, env)
    expect(byTag.status).toBe(403)
    expect(((await byTag.json()) as { errors: { message: string }[] }).errors[0]!.message).toContain('IMMUTABLE_TAGS[1] "stable"')
    expect((await via(`/v2/${repo}/manifests/${a.digest}`, { method: 'DELETE' }, env)).status).toBe(403)
    expect((await via(`/v2/${repo}/manifests/stable`, { headers: { Accept: MANIFEST } }, env)).status).toBe(200)
  })

  it('guards every ?tag= of a PUT by digest: one would move an immutable tag → 403, and none of its tags is set', async () => {
    const repo = repoName('imm')
    const a = await pushImage(repo, null)
    const b = await pushImage(repo, null)
    expect((await put(repo, `${a.digest}?tag=v1&tag=latest`, a.bytes)).status).toBe(201)
    const moved = await put(repo, `${b.digest}?tag=latest&tag=v1&tag=edge`, b.bytes)
    expect(moved.status).toBe(403)
    expect(((await moved.json()) as { errors: { message: string }[] }).errors[0]!.message).toContain(`${repo}:v1 is immutable`)
    const tags = (await (await via(`/v2/${repo}/tags/list`)).json()) as { tags: string[] }
    expect(tags.tags).toEqual(['latest', 'v1'])
    const latest = await via(`/v2/${repo}/manifests/latest`, { method: 'HEAD', headers: { Accept: MANIFEST } })
    expect(latest.headers.get('docker-content-digest')).toBe(a.digest)
    // The same manifest again under its immutable tag is fine.
    expect((await put(repo, `${a.digest}?tag=v1`, a.bytes)).status).toBe(201)
  })

  it('rejects malformed settings, naming them', () => {
    expect(() => parseImmutable('[v*]')).toThrow(/IMMUTABLE_TAGS: not valid JSON/)
    expect(parseImmutable('v*, stable').map((r) => r.tags)).toEqual([['v*'], ['stable']])
    expect(() => parseImmutable('[{"tags": "v*"}]')).toThrow(/IMMUTABLE_TAGS\[0\]\.repos/)
    expect(() => parseImmutable('["v 1"]')).toThrow(/IMMUTABLE_TAGS\[0\]/)
  })
})

describe('READ_ONLY', () => {
  const ro = { READ_ONLY: 'true' }
  it('answers every write 405 UNSUPPORTED with a clear message; pulls still work', async () => {
    const repo = repoName('ro')
    const img = await pushImage(repo, 'v1')
    for (const [path, method] of [
      [`/v2/${repo}/blobs/uploads/`, 'POST'],
      [`/v2/${repo}/blobs/uploads/x?_state=y`, 'PATCH'],
      [`/v2/${repo}/blobs/uploads/x?_state=y`, 'PUT'],
      [`/v2/${repo}/manifests/v2`, 'PUT'],
      [`/v2/${repo}/manifests/v1`, 'DELETE'],
      [`/v2/${repo}/blobs/${img.layer}`, 'DELETE'],
    ] as const) {
      const res = await via(path, { method, body: method === 'PUT' ? img.bytes : undefined }, ro)
      expect(res.status, `${method} ${path}`).toBe(405)
      const body = (await res.json()) as { errors: { code: string; message: string }[] }
      expect(body.errors[0]!.code).toBe('UNSUPPORTED')
      expect(body.errors[0]!.message).toMatch(/read-only/)
    }
    expect((await via(`/v2/${repo}/manifests/v1`, { headers: { Accept: MANIFEST } }, ro)).status).toBe(200)
    expect((await via(`/v2/${repo}/blobs/${img.layer}`, {}, ro)).status).toBe(200)
  })
})

void errorCode
void pushManifest

describe('pull-through cache collection (UPSTREAMS cacheDays)', () => {
  it('drops cached tags the upstream has not confirmed for cacheDays; their manifests wait until cacheDays old too', async () => {
    const repo = repoName('pcache')
    const stale = await pushImage(repo, 'stale')
    const fresh = await pushImage(repo, 'fresh')
    await age(repo, 'stale', 10)
    await age(repo, 'fresh', 2)
    const env = gcEnv({ UPSTREAMS: JSON.stringify([{ prefix: 'pcache', url: 'https://upstream.test', cacheDays: 7 }]) })
    const report = await gc(env, { repo })
    expect(report.repositories[repo]!.tags).toEqual([{ tag: 'stale', rule: expect.stringMatching(/^UPSTREAMS cacheDays \(pcache\/\*\)/) }])
    // The untagged manifest was stored moments ago: younger than cacheDays, it is kept for now.
    expect(report.repositories[repo]!.manifests.count).toBe(0)
    const manifest = (img: { digest: string }) => bindings.BLOBS.head(keys.manifest(repo as Repo, img.digest as never))
    expect(await manifest(stale)).not.toBeNull()
    expect(await manifest(fresh)).not.toBeNull()
    const tags = await (await via(`/v2/${repo}/tags/list`)).json()
    expect(tags).toEqual({ name: repo, tags: ['fresh'] })
  })

  it('an explicit RETENTION rule for the namespace wins over cacheDays', () => {
    const env = gcEnv({
      UPSTREAMS: JSON.stringify([{ prefix: 'pcache', url: 'https://upstream.test', cacheDays: 7 }]),
      RETENTION: JSON.stringify([{ repos: 'pcache/*', keepLast: 3 }]),
    })
    const rules = retentionRules(env)
    expect(rules.map((r) => r.name)).toEqual(['RETENTION[0]', 'UPSTREAMS cacheDays (pcache/*)'])
  })
})
