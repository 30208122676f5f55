/**
 * src/log.ts: one structured line per request, written by the router's outer layer, with what
 * the layers learned (identity, OCI code, sign-in attempt); other events carry the request's id;
 * the reply carries X-Request-Id; and no password, token, upload state or secret is ever logged.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import type { RequestLine } from '../src/log'
import type { Env } from '../src/env'
import { authEnv, basic, bearer, fresh, open, PASSWORDS, ROBOT_TOKEN, SECRET, send, SERVICE } from './auth/setup'
import { interceptIssuers, TestIssuer } from './auth/oidc/issuer'
import { digestOf } from './auth/setup'
import { randomBlob } from './helpers'

/** Everything written to the console during a test: the first argument of each call. */
let written: { level: string; entry: unknown }[] = []
beforeEach(() => {
  written = []
  for (const level of ['log', 'warn', 'error'] as const) {
    vi.spyOn(console, level).mockImplementation((entry: unknown) => void written.push({ level, entry }))
  }
})
afterEach(() => vi.restoreAllMocks())

const lines = (): RequestLine[] =>
  written.map((w) => w.entry as RequestLine).filter((e) => typeof e === 'object' && e !== null && e.event === 'request')
const lineOf = (res: Response): RequestLine => {
  const id = res.headers.get('x-request-id')
  const found = lines().filter((l) => l.requestId === id)
  expect(found, `one line for request ${id}`).toHaveLength(1)
  return found[0]!
}

/** Pushes one layer (POST, a chunked PATCH, PUT) and an image manifest by tag, with `authorization`: every reply. */
async function pushImage(e: Env, repo: string, authorization: string, layer = randomBlob(3000)) {
  const headers = { Authorization: authorization }
  const config = new TextEncoder().encode('{"architecture":"amd64","os":"linux"}')
  const configDigest = await digestOf(config)
  const monolithic = await send(e, `/v2/${repo}/blobs/uploads/?digest=${configDigest}`, {
    method: 'POST', body: config, headers: { ...headers, 'Content-Length': String(config.length) },
  })
  const post = await send(e, `/v2/${repo}/blobs/uploads/`, { method: 'POST', headers })
  // No Content-Length: the bytes are counted as they are read.
  const stream = new ReadableStream<Uint8Array>({ start(c) { c.enqueue(layer.slice(0, 1000)); c.enqueue(layer.slice(1000)); c.close() } })
  const patch = await send(e, post.headers.get('location')!, { method: 'PATCH', body: stream, headers })
  const layerDigest = await digestOf(layer)
  const put = await send(e, `${patch.headers.get('location')}&digest=${layerDigest}`, { method: 'PUT', headers })
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
  })
  const tagged = await send(e, `/v2/${repo}/manifests/v1`, {
    method: 'PUT', body: manifest, headers: { ...headers, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
  })
  return { monolithic, post, patch, put, tagged, manifest, layer, layerDigest }
}

const tokenOf = async (res: Response): Promise<string> => ((await res.json()) as { token: string }).token

describe('the request log line', () => {
  let e: Env
  beforeAll(async () => {
    e = await authEnv()
  })

  it('says who pushed what, and how it went, for each request of a push', async () => {
    const repo = fresh('team-a')
    const tokenRes = await send(e, `/token?service=${SERVICE}&scope=repository:${repo}:pull,push`, { headers: { Authorization: basic('paul', PASSWORDS.paul) } })
    expect(lineOf(tokenRes)).toMatchObject({ route: '/token', status: 200, identity: 'paul', signIn: { user: 'paul', outcome: 'ok' } })
    const push = await pushImage(e, repo, bearer(await tokenOf(tokenRes)))
    expect(lineOf(push.post)).toMatchObject({
      event: 'request', method: 'POST', route: '/v2/:name+/blobs/uploads', repository: repo, status: 202, code: null, identity: 'paul',
    })
    const patch = lineOf(push.patch)
    expect(patch).toMatchObject({ method: 'PATCH', route: '/v2/:name+/blobs/uploads/:uuid', status: 202, bytesIn: push.layer.length, identity: 'paul' })
    expect(patch.upload).toMatch(/^[\w-]+$/)
    expect(lineOf(push.put)).toMatchObject({ method: 'PUT', status: 201, bytesIn: 0, identity: 'paul' })
    expect(lineOf(push.tagged)).toMatchObject({
      method: 'PUT', route: '/v2/:name+/manifests/:reference', repository: repo, reference: 'v1', digest: null,
      status: 201, code: null, bytesIn: push.manifest.length, identity: 'paul',
    })
    const line = lineOf(push.tagged)
    expect(line.requestId).toMatch(/^[0-9a-f]{16}-LOCAL$/)
    expect(line.durationMs).toBeGreaterThanOrEqual(0)
  })

  it('says who pulled what, with the bytes sent', async () => {
    const repo = fresh('public')
    const pusher = await send(e, `/token?service=${SERVICE}&scope=repository:${repo}:pull,push`, { headers: { Authorization: basic('paul', PASSWORDS.paul) } })
    const push = await pushImage(e, repo, bearer(await tokenOf(pusher)))
    const manifest = await send(e, `/v2/${repo}/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(manifest.status).toBe(200)
    expect(lineOf(manifest)).toMatchObject({
      method: 'GET', route: '/v2/:name+/manifests/:reference', repository: repo, reference: 'v1',
      status: 200, bytesIn: 0, bytesOut: push.manifest.length, identity: 'anonymous',
    })
    const blob = await send(e, `/v2/${repo}/blobs/${push.layerDigest}`, { headers: { 'CF-Connecting-IP': '203.0.113.5', 'User-Agent': 'containerd/1.7' } })
    expect((await blob.arrayBuffer()).byteLength).toBe(push.layer.length)
    expect(lineOf(blob)).toMatchObject({
      route: '/v2/:name+/blobs/:digest', repository: repo, digest: push.layerDigest, status: 200,
      bytesOut: push.layer.length, identity: 'anonymous', address: '203.0.113.5', userAgent: 'containerd/1.7',
    })
    const head = await send(e, `/v2/${repo}/blobs/${push.layerDigest}`, { method: 'HEAD' })
    expect(lineOf(head)).toMatchObject({ method: 'HEAD', status: 200, bytesOut: 0 })
  })

  it('records a refused sign-in with the name tried, its OCI code, and no password', async () => {
    const res = await send(e, `/token?service=${SERVICE}`, { headers: { Authorization: basic('paul', 'hunter2-wrong'), 'CF-Connecting-IP': '192.0.2.44' } })
    expect(res.status).toBe(401)
    expect(lineOf(res)).toMatchObject({
      route: '/token', status: 401, code: 'UNAUTHORIZED', identity: 'anonymous', address: '192.0.2.44',
      signIn: { user: 'paul', outcome: 'refused' },
    })
    // A name that is no user may be a password typed in the wrong field: it is not logged.
    const unknown = await send(e, '/v2/', { headers: { Authorization: basic('paul-pushes', 'x') } })
    expect(lineOf(unknown)).toMatchObject({ route: '/v2', status: 401, code: 'UNAUTHORIZED', signIn: { user: '(unknown)', outcome: 'refused' } })
    expect(JSON.stringify(written)).not.toContain('hunter2-wrong')
    expect(JSON.stringify(written)).not.toContain('paul-pushes')
  })

  it('names an OIDC pusher oidc:<issuer>:<sub>, and joins the OIDC event to its request', async () => {
    interceptIssuers()
    const gh = await TestIssuer.create()
    const oe = await authEnv({
      AUTH_OIDC: JSON.stringify([gh.entry('github')]),
      AUTH_RULES: JSON.stringify([{ repos: 'acme/*', oidc: { issuer: 'github', claims: { repository_owner: 'acme' } }, actions: ['pull', 'push'] }]),
    })
    const idToken = await gh.token({ repository_owner: 'acme' })
    const repo = fresh('acme')
    const tokenRes = await send(oe, `/token?service=${SERVICE}&scope=repository:${repo}:pull,push`, { headers: { Authorization: basic('oidc', idToken) } })
    expect(tokenRes.status).toBe(200)
    const identity = 'oidc:github:repo:acme/app:ref:refs/heads/main'
    const tokenLine = lineOf(tokenRes)
    expect(tokenLine).toMatchObject({ identity, signIn: { user: 'oidc', outcome: 'ok' } })
    expect(written.map((w) => w.entry)).toContainEqual({ event: 'oidc.signed-in', identity, requestId: tokenLine.requestId })
    const accessToken = await tokenOf(tokenRes)
    const push = await pushImage(oe, repo, bearer(accessToken))
    expect(lineOf(push.tagged)).toMatchObject({ status: 201, repository: repo, reference: 'v1', identity })
    // Basic with the identity token straight on /v2/ too.
    const direct = await send(oe, `/v2/${repo}/tags/list`, { headers: { Authorization: basic('oidc', idToken) } })
    expect(lineOf(direct)).toMatchObject({ status: 200, identity })
    const text = JSON.stringify(written)
    expect(text).not.toContain(idToken)
    expect(text).not.toContain(idToken.split('.')[2]!)
    expect(text).not.toContain(accessToken.split('.')[2]!)
  })

  it('never holds a password, a token, an upload state or a secret', async () => {
    const repo = fresh('team-a')
    const tokenRes = await send(e, `/token?service=${SERVICE}&scope=repository:${repo}:pull,push&offline_token=true`, {
      headers: { Authorization: basic('paul', PASSWORDS.paul) },
    })
    const { token, refresh_token: refresh } = (await tokenRes.json()) as { token: string; refresh_token: string }
    const push = await pushImage(e, repo, bearer(token))
    const robot = await pushImage(e, fresh('team-a'), basic('robot:ci', ROBOT_TOKEN))
    expect(robot.tagged.status).toBe(201)
    expect(lineOf(robot.tagged).identity).toBe('robot:ci')
    const state = new URL(push.patch.headers.get('location')!, 'http://x').searchParams.get('_state')!
    expect(state.length).toBeGreaterThan(20)
    const text = JSON.stringify(written)
    for (const secret of [PASSWORDS.paul, token, token.split('.')[2]!, refresh, refresh.split('.')[2]!, ROBOT_TOKEN, state, SECRET, '_state']) {
      expect(text).not.toContain(secret)
    }
    expect(lines()).toHaveLength(11)
  })
})

describe('X-Request-Id', () => {
  it('is the cf-ray when Cloudflare sent one, and the line says the same', async () => {
    const res = await send(open, '/v2/', { headers: { 'cf-ray': '8f1b2c3d4e5f6a7b-LHR' } })
    expect(res.headers.get('x-request-id')).toBe('8f1b2c3d4e5f6a7b-LHR')
    expect(lineOf(res).requestId).toBe('8f1b2c3d4e5f6a7b-LHR')
  })

  it('is made up when the cf-ray is missing or not one (no header value passes through unchecked)', async () => {
    const res = await send(open, '/no/such/route', { headers: { 'cf-ray': 'x"}, {"event":"forged' } })
    expect(res.status).toBe(404)
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}-LOCAL$/)
    expect(lineOf(res)).toMatchObject({ route: '*', status: 404, code: 'NOT_FOUND' })
  })

  it('is on every reply: errors, the web UI, health', async () => {
    for (const path of ['/v2/', '/v2/a/manifests/nope', '/', '/ui/app.css', '/_health', '/favicon.ico']) {
      const res = await send(open, path)
      expect(res.headers.get('x-request-id'), path).toMatch(/^[0-9a-f]{16}-LOCAL$/)
      await res.body?.cancel()
    }
  })
})

describe('other events', () => {
  it('carry the id of the request they happened in', async () => {
    // A broken setting: the route fails with 500, and the error event is joined to its line.
    const res = await send({ ...open, MAX_CHUNK_BYTES: 'lots' }, '/v2/x/blobs/uploads/', { method: 'POST' })
    expect(res.status).toBe(500)
    const line = lineOf(res)
    expect(line).toMatchObject({ status: 500, code: 'UNKNOWN' })
    const error = written.find((w) => (w.entry as { event?: string }).event === 'misconfigured')
    expect(error).toMatchObject({ level: 'error', entry: { event: 'misconfigured', settings: ['MAX_CHUNK_BYTES'], requestId: line.requestId } })
    expect((error!.entry as { problems: string[] }).problems[0]).toMatch(/^MAX_CHUNK_BYTES/)
  })
})
