/**
 * The storage layout, pinned as exact strings.
 *
 * Every key here names data already written by deployed registries: a changed
 * key is a data migration (existing blobs, links, tags and uploads would vanish
 * from view), not a refactor. Change a row only together with a migration.
 */
import { describe, expect, it } from 'vitest'
import type { RobotName } from '../../src/auth/robots'
import type { Digest, Repo, Tag } from '../../src/names'
import { isBlobKey, isUploadKey, keys, offsetOfUploadKey, REPO_DELIMITER, REPOS_PREFIX, repoOfPrefix, reposAfter, tagOfKey } from '../../src/storage/keys'

const repo = 'library/ubuntu' as Repo
const tag = 'v1.0_rc-2' as Tag
const hex256 = 'a'.repeat(63) + 'f'
const hex512 = 'b'.repeat(127) + '0'
const d256 = `sha256:${hex256}` as Digest
const d512 = `sha512:${hex512}` as Digest
const subject = `sha256:${'c'.repeat(64)}` as Digest
const origin = 'https://registry.example.com'

describe('storage keys', () => {
  it.each([
    ['generated upload-state secret', keys.uploadSecret(), '_registry/upload-secret'],
    ['garbage collector report', keys.gcReport('20261201T120000Z-ab12'), '_registry/gc/20261201T120000Z-ab12.json'],
    ['garbage collector reports (prefix)', keys.gcReports(), '_registry/gc/'],
    ['blob (sha256)', keys.blob(d256), `blobs/sha256/${hex256}`],
    ['blob (sha512)', keys.blob(d512), `blobs/sha512/${hex512}`],
    ['objects of an upload session (prefix)', keys.upload('0123abcd'), 'data/0123abcd/'],
    ['upload write at an offset (16 digits: listed in offset order)', keys.uploadWrite('0123abcd', 10485760), 'data/0123abcd/0000000010485760'],
    ['upload multipart target', keys.uploadParts('0123abcd'), 'data/0123abcd/parts'],
    ['manifests of a repository (prefix)', keys.manifests(repo), 'repos/library/ubuntu+manifests/'],
    ['manifest', keys.manifest(repo, d256), `repos/library/ubuntu+manifests/sha256:${hex256}`],
    ['referrers of a subject (prefix)', keys.referrers(repo, subject), `repos/library/ubuntu+referrers/${subject}/`],
    ['referrer', keys.referrer(repo, subject, d256), `repos/library/ubuntu+referrers/${subject}/${d256}`],
    ['pins of a digest (prefix)', keys.pins(repo, d256), `repos/library/ubuntu+pins/sha256:${hex256}/`],
    ['pin of a digest by an immutable tag\'s manifest', keys.pin(repo, d256, subject), `repos/library/ubuntu+pins/sha256:${hex256}/${subject}`],
    ['blob link (KV)', keys.blobLink(repo, d256), `repos/library/ubuntu+blobs/sha256:${hex256}`],
    ['tags of a repository (KV prefix)', keys.tags(repo), 'repos/library/ubuntu+tags/'],
    ['tag (KV)', keys.tag(repo, tag), 'repos/library/ubuntu+tags/v1.0_rc-2'],
    ['cached blob bytes', keys.cachedBlob(origin, d256), `https://registry.example.com/_cache/blobs/sha256:${hex256}`],
    ['cached blob link', keys.cachedLink(origin, repo, d256), `https://registry.example.com/_cache/links/library/ubuntu/sha256:${hex256}`],
    ['cached OIDC key set, by discovery', keys.cachedJwks(origin, 'https://token.actions.githubusercontent.com', null),
      'https://registry.example.com/_cache/oidc/jwks?iss=https%3A%2F%2Ftoken.actions.githubusercontent.com'],
    ['cached OIDC key set, from jwks_uri', keys.cachedJwks(origin, 'https://gitlab.com', 'https://gitlab.com/oauth/discovery/keys'),
      'https://registry.example.com/_cache/oidc/jwks?iss=https%3A%2F%2Fgitlab.com&jwks=https%3A%2F%2Fgitlab.com%2Foauth%2Fdiscovery%2Fkeys'],
    ['robot token hash (KV; scripts/robot.mjs spells it too)', keys.robot('ci' as RobotName), 'auth/robots/ci'],
    ['gc reports (prefix)', keys.gcReports(), '_registry/gc/'],
    ['gc report', keys.gcReport('run1'), '_registry/gc/run1.json'],
    ['gc marks (prefix)', keys.gcMarks(), '_registry/gc-marks/'],
    ['every blob (prefix)', keys.blobs(), 'blobs/'],
    ['every upload (prefix)', keys.uploads(), 'data/'],
    ['gc mark on a link', keys.gcLinkMark(repo, d256), `_registry/gc-marks/links/library/ubuntu+sha256:${hex256}`],
    ['gc mark on a blob', keys.gcBlobMark(d256), `_registry/gc-marks/blobs/sha256/${hex256}`],
    ['proxied tag list (edge cache)', keys.cachedUpstreamListing(origin, '0123456789abcdef', '/v2/hub/nginx/tags/list', 'ns=docker.io&n=10'), 'https://registry.example.com/_cache/upstream/0123456789abcdef/v2/hub/nginx/tags/list?ns=docker.io&n=10'],
    ['proxied referrers (edge cache)', keys.cachedUpstreamListing(origin, '0123456789abcdef', `/v2/hub/nginx/referrers/${subject}`, ''), `https://registry.example.com/_cache/upstream/0123456789abcdef/v2/hub/nginx/referrers/${subject}?`],
    ['health probe (R2 head and KV get; never written)', keys.healthProbe(), '_registry/health'],
    ['health probe result (edge cache)', keys.cachedHealth(origin), 'https://registry.example.com/_cache/health'],
    ['sign-in throttle mark (edge cache)', keys.throttleMark(origin, 'address', 'ab12'), 'https://registry.example.com/_cache/throttle/address/ab12'],
    ['pull statistics of a repository (PULL_STATS)', keys.pullStats(repo), '_registry/pulls/library/ubuntu.json'],
    ['pull statistics: ".json" always ends the name, so no repository\'s key is another\'s', keys.pullStats('library/ubuntu.json' as Repo), '_registry/pulls/library/ubuntu.json.json'],
    ['delivery log of a NOTIFICATIONS endpoint', keys.deliveryLog('ci-hooks'), '_registry/events/ci-hooks.json'],
    ['gc marks on links (prefix)', keys.gcLinkMarks(), '_registry/gc-marks/links/'],
    ['gc marks on blobs (prefix)', keys.gcBlobMarks(), '_registry/gc-marks/blobs/'],
    ['every gc run\'s shard plans (prefix)', keys.gcRuns(), '_registry/gc-runs/'],
    ['a gc run\'s shard plans (prefix)', keys.gcRun('gc-1'), '_registry/gc-runs/gc-1/'],
    ['a gc run\'s shard plan', keys.gcRunShard('gc-1', 'repos-'), '_registry/gc-runs/gc-1/repos-.json'],
    ['a repository\'s KV keys (prefix)', keys.repoKeys(repo), 'repos/library/ubuntu+'],
  ])('%s', (_name, actual, expected) => {
    expect(actual).toBe(expected)
  })

  it('covers every key builder (add a row above for a new one)', () => {
    expect(Object.keys(keys).sort()).toEqual([
      'blob', 'blobLink', 'blobs', 'cachedBlob', 'cachedHealth', 'cachedJwks', 'cachedLink', 'cachedUpstreamListing', 'deliveryLog', 'gcBlobMark', 'gcBlobMarks',
      'gcLinkMark', 'gcLinkMarks', 'gcMarks', 'gcReport', 'gcReports', 'gcRun', 'gcRunShard', 'gcRuns', 'healthProbe', 'manifest', 'manifests', 'pin', 'pins',
      'pullStats', 'referrer', 'referrers', 'repoKeys', 'robot', 'tag', 'tags', 'throttleMark', 'upload', 'uploadParts', 'uploadSecret', 'uploadWrite', 'uploads',
    ])
  })

  it('reads the offset back from an upload write key, and from no other key', () => {
    const id = 'ab'.repeat(16)
    expect(offsetOfUploadKey(keys.uploadWrite(id, 0))).toBe(0)
    expect(offsetOfUploadKey(keys.uploadWrite(id, 2 ** 40 + 7))).toBe(2 ** 40 + 7)
    expect(offsetOfUploadKey(keys.uploadParts(id))).toBeNull()
    expect(offsetOfUploadKey(keys.blob(d256))).toBeNull()
  })

  it('pins the repository prefix and delimiter', () => {
    expect(REPOS_PREFIX).toBe('repos/')
    expect(REPO_DELIMITER).toBe('+')
  })

  it('tells upload objects from registry blobs', () => {
    expect(isUploadKey(keys.uploadWrite('id', 5))).toBe(true)
    expect(isUploadKey(keys.uploadParts('id'))).toBe(true)
    expect(isUploadKey(keys.blob(d256))).toBe(false)
    expect(isUploadKey(keys.manifest(repo, d256))).toBe(false)
    expect(isUploadKey('')).toBe(false)
    // of one session only, when asked
    expect(isUploadKey(keys.uploadWrite('id', 5), 'id')).toBe(true)
    expect(isUploadKey(keys.uploadParts('id'), 'id')).toBe(true)
    expect(isUploadKey(keys.uploadWrite('id2', 5), 'id')).toBe(false)
    expect(isUploadKey(keys.uploadWrite('idx', 5), 'id')).toBe(false)
  })

  it('recognises exactly the keys of registry blobs', () => {
    expect(isBlobKey(keys.blob(d256))).toBe(true)
    expect(isBlobKey(keys.blob(d512))).toBe(true)
    expect(isBlobKey(`blobs/sha256/${hex512}`)).toBe(false)
    expect(isBlobKey(`blobs/sha512/${hex256}`)).toBe(false)
    expect(isBlobKey(`blobs/sha256/${hex256}/x`)).toBe(false)
    expect(isBlobKey(`blobs/sha256/${hex256.toUpperCase()}`)).toBe(false)
    expect(isBlobKey(keys.uploadParts('id'))).toBe(false)
    expect(isBlobKey(keys.uploadSecret())).toBe(false)
  })

  it('reads the repository back from a delimited listing prefix', () => {
    // list({ prefix: 'repos/', delimiter: '+' }) yields 'repos/<name>+'
    expect(repoOfPrefix('repos/library/ubuntu+')).toBe('library/ubuntu')
    expect(repoOfPrefix('repos/a+')).toBe('a')
  })

  it('orders keys under repos/ as the names sort lexically', () => {
    const names = ['a', 'a-b', 'a.b', 'a/b', 'a0', 'a_b', 'ab']
    const keyed = names.map((n) => keys.manifest(n as Repo, d256)).sort()
    expect(keyed.map((k) => repoOfPrefix(k.slice(0, k.indexOf('+') + 1)))).toEqual([...names].sort())
  })

  it('lists repositories after a name, skipping all of its keys', () => {
    expect(reposAfter('library/ubuntu')).toBe('repos/library/ubuntu+~')
    // '~' sorts after every key character a repository's own keys use after '+'
    expect(reposAfter('a') > keys.tag('a' as Repo, 'zzz' as Tag)).toBe(true)
    expect(reposAfter('a') > keys.blobLink('a' as Repo, d512)).toBe(true)
    expect(reposAfter('a') < `${REPOS_PREFIX}a0+blobs/x`).toBe(true)
    expect(reposAfter('a') < `${REPOS_PREFIX}a-b+manifests/x`).toBe(true)
  })

  it('reads a tag back from its KV key', () => {
    expect(tagOfKey(repo, keys.tag(repo, tag))).toBe(tag)
  })
})
