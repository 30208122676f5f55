#!/usr/bin/env node
/**
 * Issue 20's hostile cases against `npm start` (fresh state): per case the status, the reply's
 * size, the time, and the workerd process's RSS before and at its peak (sampled every 50 ms).
 * Storage calls are counted inside workerd by the tests (test/routes/limits.test.ts); this
 * measures what only a real server shows. Writes bench/hostile-results.json (or --out FILE).
 *
 *   node bench/hostile.mjs [--port 9300] [--only referrers,deep,…] [--out FILE]
 *
 * Cases: referrers, deep, halfwrite, refusal, tagfanout, tagrecord, immutable.
 */
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir, loadavg } from 'node:os'
import { join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { request, resolve } from './lib/http.mjs'
import { memoryOf, stopAll } from './lib/proc.mjs'
import { startOurs } from './lib/servers.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : fallback
}
const port = Number(opt('port', '9300'))
const only = opt('only', null)?.split(',') ?? null
const out = opt('out', join(root, 'bench', 'hostile-results.json'))
const MiB = 1024 * 1024

const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const INDEX = 'application/vnd.oci.image.index.v1+json'
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

let base = ''
let server = null

/** The workerd process running the worker now (the largest under npm start; wrangler may restart it). */
function workerdPid() {
  const pids = server.workerd().map((p) => p.pid).filter((pid) => Number.isFinite(memoryOf(pid).rss))
  return pids.sort((a, b) => memoryOf(b).rss - memoryOf(a).rss)[0] ?? 0
}

/** Runs `work` while sampling workerd's RSS: { ...result, seconds, rssBefore, rssPeak } (MiB). */
async function measured(work) {
  const pid = workerdPid()
  const rss = () => {
    try {
      const v = memoryOf(pid).rss
      return Number.isFinite(v) ? v : 0
    } catch {
      return 0
    }
  }
  const before = rss()
  let peak = before
  const timer = setInterval(() => (peak = Math.max(peak, rss())), 50)
  const start = process.hrtime.bigint()
  try {
    const result = await work()
    return { ...result, seconds: +(Number(process.hrtime.bigint() - start) / 1e9).toFixed(3), rssBeforeMiB: +(before / MiB).toFixed(1), rssPeakMiB: +(Math.max(peak, rss()) / MiB).toFixed(1) }
  } finally {
    clearInterval(timer)
  }
}

const call = (method, path, init = {}) => request(method, path.startsWith('http') ? path : base + path, init)

async function pushBlob(repo, bytes) {
  const digest = sha(bytes)
  const post = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { body: bytes, headers: { 'Content-Length': String(bytes.length), 'Content-Type': 'application/octet-stream' } })
  if (post.status !== 201) throw new Error(`blob push ${post.status} ${post.body}`)
  return { digest, size: bytes.length }
}

async function putManifest(repo, ref, doc, type = MANIFEST) {
  const body = Buffer.isBuffer(doc) ? doc : Buffer.from(JSON.stringify(doc))
  return call('PUT', `/v2/${repo}/manifests/${ref}`, { body, headers: { 'Content-Type': type, 'Content-Length': String(body.length) } })
}

async function image(repo, extra = {}) {
  const config = await pushBlob(repo, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: randomBytes(8).toString('hex') })))
  const layer = await pushBlob(repo, randomBytes(1024))
  const doc = { schemaVersion: 2, mediaType: MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }], ...extra }
  const bytes = Buffer.from(JSON.stringify(doc))
  return { doc, bytes, digest: sha(bytes), size: bytes.length, config, layer }
}

const summary = (r) => ({ status: r.status, bytes: r.body.length })

const cases = {
  /** 30 artifacts, each with a 4 MiB annotation, on one subject: the API's listing and the UI's page. */
  async referrers() {
    const repo = 'hostile/referrers'
    const subject = await image(repo)
    await putManifest(repo, 'v1', subject.bytes)
    const empty = await pushBlob(repo, Buffer.from('{}'))
    const pushes = []
    for (let i = 0; i < 30; i++) {
      const doc = {
        schemaVersion: 2, mediaType: MANIFEST, artifactType: 'application/vnd.example.big',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty }, layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', ...empty }],
        subject: { mediaType: MANIFEST, digest: subject.digest, size: subject.size },
        annotations: { big: 'x'.repeat(4 * MiB - 1024) + i },
      }
      const bytes = Buffer.from(JSON.stringify(doc))
      pushes.push((await putManifest(repo, sha(bytes), bytes)).status)
    }
    const api = await measured(async () => summary(await call('GET', `/v2/${repo}/referrers/${subject.digest}`)))
    const ui = await measured(async () => summary(await call('GET', `/r/${repo}/-/referrers/${subject.digest}`)))
    return { pushes: [...new Set(pushes)], api, ui }
  },

  /** A 4 MiB body of nested arrays, alone and 8 at once. */
  async deep() {
    const half = 2 * MiB
    const body = Buffer.from('['.repeat(half) + ']'.repeat(half))
    const one = await measured(async () => summary(await putManifest('hostile/deep', 'v1', body)))
    const eight = await measured(async () => {
      const all = await Promise.all(Array.from({ length: 8 }, () => putManifest('hostile/deep', 'v1', body)))
      return { statuses: [...new Set(all.map((r) => r.status))] }
    })
    return { one, eight }
  },

  /** The two 500s that left half a write, then what is visible afterwards. */
  async halfwrite() {
    const repo = 'hostile/halfwrite'
    const subject = await image(repo)
    await putManifest(repo, 'base', subject.bytes)
    let nested = '"x"'
    for (let i = 0; i < 10_000; i++) nested = `{"a":${nested}}`
    const a = await image(repo)
    const deepText = JSON.stringify({ ...a.doc, subject: { mediaType: MANIFEST, digest: subject.digest, size: subject.size }, annotations: { k: '__N__' } }).replace('"__N__"', nested)
    const deepBytes = Buffer.from(deepText)
    const deep = await measured(async () => summary(await putManifest(repo, 'deep', deepBytes)))
    const deepAfter = {
      byDigest: (await call('GET', `/v2/${repo}/manifests/${sha(deepBytes)}`, { headers: { Accept: MANIFEST } })).status,
      tag: (await call('GET', `/v2/${repo}/manifests/deep`, { headers: { Accept: MANIFEST } })).status,
    }
    const child = await image(repo)
    await putManifest(repo, child.digest, child.bytes)
    const os = '\u0001'.repeat(250)
    const index = { schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: MANIFEST, digest: child.digest, size: child.size, platform: { os, architecture: 'amd64' } }] }
    const indexBytes = Buffer.from(JSON.stringify(index))
    const platforms = await measured(async () => summary(await putManifest(repo, 'platforms', indexBytes, INDEX)))
    const platformsAfter = {
      byDigest: (await call('GET', `/v2/${repo}/manifests/${sha(indexBytes)}`, { headers: { Accept: INDEX } })).status,
      tag: (await call('GET', `/v2/${repo}/manifests/platforms`, { headers: { Accept: INDEX } })).status,
    }
    return { deep: { ...deep, after: deepAfter }, platforms: { ...platforms, after: platformsAfter } }
  },

  /** An image whose config and 499 layers are missing (repeated 20 times), and an index with 500 missing children. */
  async refusal() {
    const repo = 'hostile/refusal'
    const missing = () => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(randomBytes(16)), size: 1 })
    const img = { schemaVersion: 2, mediaType: MANIFEST, config: { ...missing(), mediaType: 'application/vnd.oci.image.config.v1+json' }, layers: Array.from({ length: 499 }, missing) }
    const twenty = await measured(async () => {
      const statuses = []
      for (let i = 0; i < 20; i++) statuses.push((await putManifest(repo, 'v1', img)).status)
      return { statuses: [...new Set(statuses)] }
    })
    const index = { schemaVersion: 2, mediaType: INDEX, manifests: Array.from({ length: 500 }, () => ({ ...missing(), mediaType: MANIFEST })) }
    const children = await measured(async () => summary(await putManifest(repo, 'idx', index, INDEX)))
    return { image20: twenty, index: children }
  },

  /** DELETE of a manifest with 20,000 tags; the tag list's last page; the UI's tag page; a session's status after 2,000 chunks. */
  async tagfanout() {
    const repo = 'hostile/tags'
    const img = await image(repo)
    const tagged = await measured(async () => {
      const statuses = new Set()
      for (let i = 0; i < 1000; i++) {
        const q = Array.from({ length: 20 }, (_, j) => `tag=t${String(i * 20 + j).padStart(5, '0')}`).join('&')
        statuses.add((await putManifest(repo, `${img.digest}?${q}`, img.bytes)).status)
      }
      return { statuses: [...statuses] }
    })
    const lastPage = await measured(async () => {
      const r = await call('GET', `/v2/${repo}/tags/list?n=10&last=t19980`)
      return { ...summary(r), link: r.headers.link ?? null }
    })
    // Following Links from the first page to the end (each page 1,000 tags).
    const allPages = await measured(async () => {
      let next = `/v2/${repo}/tags/list`
      let pages = 0
      let tags = 0
      while (next && pages < 50) {
        const r = await call('GET', next)
        pages++
        tags += JSON.parse(r.body).tags.length
        next = /^<([^>]+)>/.exec(r.headers.link ?? '')?.[1] ?? null
      }
      return { pages, tags }
    })
    const uiPage = await measured(async () => summary(await call('GET', `/r/${repo}`)))
    const home = await measured(async () => summary(await call('GET', `/`)))
    const del = await measured(async () => summary(await call('DELETE', `/v2/${repo}/manifests/${img.digest}`)))
    // Wait for work handed off (if any), then count what is left.
    let left = null
    const untagStart = Date.now()
    for (let i = 0; i < 600; i++) {
      const r = await call('GET', `/v2/${repo}/tags/list?n=1000`)
      left = r.status === 200 ? JSON.parse(r.body).tags.length : r.status
      // Empty with a Link: the first pages are cleared, later ones may not be.
      if (left === 404 || (left === 0 && !r.headers.link)) break
      await new Promise((res) => setTimeout(res, 1000))
    }
    const untagSeconds = (Date.now() - untagStart) / 1000
    const manifestAfter = (await call('GET', `/v2/${repo}/manifests/${img.digest}`, { headers: { Accept: MANIFEST } })).status
    const session = await sessionStatus()
    return { tag20000: tagged, tagsListLastPage: lastPage, tagsListAllPages: allPages, uiTagPage: uiPage, uiHome: home, deleteByDigest: del, tagsLeft: left, untagSeconds, manifestAfter, session }
  },

  /** A 4 MiB manifest put with 20 ?tag=: KV bytes written (the local KV's blob files). */
  async tagrecord() {
    const repo = 'hostile/tagrecord'
    const img = await image(repo, { annotations: { pad: 'p'.repeat(4 * MiB - 4096) } })
    const kvDir = join(stateDir, 'v3', 'kv')
    const before = dirSize(kvDir)
    const q = Array.from({ length: 20 }, (_, i) => `tag=r${i}`).join('&')
    const put = await measured(async () => summary(await putManifest(repo, `${img.digest}?${q}`, img.bytes)))
    await new Promise((r) => setTimeout(r, 3000))
    return { put, kvBytesWritten: dirSize(kvDir) - before }
  },

  /** IMMUTABLE_TAGS '["v*"]' on: deletes of what the immutable tag v1 (an index) reaches. */
  async immutable() {
    const repo = 'hostile/immutable'
    const child = await image(repo)
    await putManifest(repo, child.digest, child.bytes)
    const index = { schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: MANIFEST, digest: child.digest, size: child.size, platform: { os: 'linux', architecture: 'amd64' } }] }
    const put = await putManifest(repo, 'v1', index, INDEX)
    const indexDigest = put.headers['docker-content-digest']
    return {
      put: put.status,
      deleteIndex: (await call('DELETE', `/v2/${repo}/manifests/${indexDigest}`)).status,
      deleteChild: (await call('DELETE', `/v2/${repo}/manifests/${child.digest}`)).status,
      deleteLayer: (await call('DELETE', `/v2/${repo}/blobs/${child.layer.digest}`)).status,
      deleteConfig: (await call('DELETE', `/v2/${repo}/blobs/${child.config.digest}`)).status,
    }
  },
}

/** POST, 2,000 one-byte PATCHes, then GET with the first chunk's Location and with the last. */
async function sessionStatus() {
  const repo = 'hostile/session'
  const post = await call('POST', `/v2/${repo}/blobs/uploads/`)
  let location = resolve(post.headers.location, base)
  let first = null
  for (let i = 0; i < 2000; i++) {
    const r = await call('PATCH', location, { body: Buffer.from([i & 255]), headers: { 'Content-Length': '1', 'Content-Range': `${i}-${i}` } })
    if (r.status !== 202) return { stoppedAt: i, status: r.status, body: r.body.toString().slice(0, 300) }
    location = resolve(r.headers.location, base)
    first ??= location
  }
  const old = await measured(async () => summary(await call('GET', first)))
  const latest = await measured(async () => summary(await call('GET', location)))
  return { chunks: 2000, statusWithFirstLocation: old, statusWithLatestLocation: latest }
}

function dirSize(dir) {
  let total = 0
  const walk = (d) => {
    let entries = []
    try {
      entries = readdirSync(d, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else total += statSync(p).size
    }
  }
  walk(dir)
  return total
}

const dir = mkdtempSync(join(tmpdir(), 'hostile-'))
const stateDir = join(dir, 'state')
const results = { started: new Date().toISOString(), loadavg: loadavg(), cases: {} }
server = await startOurs({ root, port, dir, args: ['--var', 'IMMUTABLE_TAGS:["v*"]', '--inspector-port', String(port + 10000)] })
try {
  base = `http://127.0.0.1:${server.port}`
  for (const [name, run] of Object.entries(cases)) {
    if (only && !only.includes(name)) continue
    process.stderr.write(`${name}…\n`)
    try {
      results.cases[name] = await run()
    } catch (err) {
      results.cases[name] = { error: String(err?.stack ?? err) }
    }
    process.stderr.write(`${JSON.stringify(results.cases[name])}\n`)
  }
} finally {
  results.loadavgAfter = loadavg()
  await server.stop()
  await stopAll()
}
writeFileSync(out, JSON.stringify(results, null, 2) + '\n')
console.log(JSON.stringify(results, null, 2))
