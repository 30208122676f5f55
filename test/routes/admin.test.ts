/**
 * /admin/gc: who may start and read collections (auth matrix), and a run end to end through
 * the real Workflow binding (its sleeps disabled by the pool's Workflow introspection).
 */
import { env } from 'cloudflare:workers'
import { introspectWorkflow } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { authEnv, basic, bearer, codeOf, open, PASSWORDS, RULES, send, tokenFor } from '../auth/setup'
import type { Env } from '../../src/env'
import type { GcReport } from '../../src/storage/gc-reports'

const ADMIN_RULES = JSON.stringify([...RULES, { admin: ['alice'] }])
/** What wrangler dev (and npm start's front) say of a request from this machine. */
const LOCAL_CLIENT = { 'CF-Connecting-IP': '127.0.0.1' }
const start = (bindings: Env, authorization?: string, origin = 'http://registry.test', headers: Record<string, string> = LOCAL_CLIENT) =>
  send(bindings, `${origin}/admin/gc?dry-run=true`, { method: 'POST', headers: { ...headers, ...(authorization ? { Authorization: authorization } : {}) } })

describe('admin endpoint access', () => {
  it('open registry: served to a loopback client asking for localhost', async () => {
    expect((await start(open, undefined, 'http://localhost:8830')).status).toBe(202)
    expect((await start(open, undefined, 'http://127.0.0.1:8830')).status).toBe(202)
    expect((await start(open, undefined, 'http://[::1]:8830', { 'CF-Connecting-IP': '::1' })).status).toBe(202)
    expect((await start(open, undefined, 'http://localhost:8830', { 'CF-Connecting-IP': '::ffff:127.0.0.1' })).status).toBe(202)
    const remote = await start(open)
    expect(remote.status).toBe(403)
    expect(await codeOf(remote)).toBe('DENIED')
  })

  it('open registry: a Host header of localhost proves nothing (another client address, none, or a relay)', async () => {
    // npm start -- --ip 0.0.0.0: a LAN client sending Host: localhost (its address reaches the worker as CF-Connecting-IP).
    expect((await start(open, undefined, 'http://localhost:8830', { 'CF-Connecting-IP': '192.0.2.2' })).status).toBe(403)
    expect((await start(open, undefined, 'http://localhost:8830', { 'CF-Connecting-IP': '::ffff:192.0.2.2' })).status).toBe(403)
    // Nobody vouched for the client's address.
    expect((await start(open, undefined, 'http://localhost:8830', {})).status).toBe(403)
    // A tunnel or reverse proxy on this machine reaches it from loopback on anyone's behalf.
    expect((await start(open, undefined, 'http://localhost:8830', { ...LOCAL_CLIENT, 'X-Forwarded-For': '198.51.100.7' })).status).toBe(403)
    expect((await start(open, undefined, 'http://localhost:8830', { ...LOCAL_CLIENT, Forwarded: 'for=198.51.100.7' })).status).toBe(403)
    // A loopback client on another name (a rebinding DNS name a web page points at 127.0.0.1).
    expect((await start(open, undefined, 'http://rebound.example:8830')).status).toBe(403)
    expect((await send(open, 'http://localhost:8830/admin/gc', { headers: { 'CF-Connecting-IP': '192.0.2.2' } })).status).toBe(403)
  })

  it('open registry: a request a web page sent from the operator\'s browser is refused (cross-site request forgery), the operator\'s own is not', async () => {
    // Any page the operator has open can POST to http://localhost:<port>/admin/gc: the browser
    // connects from loopback and names localhost, and says so only in Origin and Sec-Fetch-Site.
    const page = { ...LOCAL_CLIENT, Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' }
    const forged = await start(open, undefined, 'http://localhost:8830', page)
    expect(forged.status).toBe(403)
    expect(await codeOf(forged)).toBe('DENIED')
    expect((await start(open, undefined, 'http://localhost:8830', { ...LOCAL_CLIENT, Origin: 'https://evil.example' })).status).toBe(403)
    expect((await start(open, undefined, 'http://localhost:8830', { ...LOCAL_CLIENT, Origin: 'null' })).status).toBe(403)
    expect((await start(open, undefined, 'http://localhost:8830', { ...LOCAL_CLIENT, 'Sec-Fetch-Site': 'cross-site' })).status).toBe(403)
    expect((await start(open, undefined, 'http://localhost:8830', { ...LOCAL_CLIENT, 'Sec-Fetch-Site': 'same-site' })).status).toBe(403)
    expect((await send(open, 'http://localhost:8830/admin/gc?untagged=true', { method: 'POST', headers: page })).status).toBe(403)
    // The address bar (Sec-Fetch-Site: none), the registry's own origin, curl and `npm run gc` (neither header).
    expect((await start(open, undefined, 'http://localhost:8830', { ...LOCAL_CLIENT, 'Sec-Fetch-Site': 'none' })).status).toBe(202)
    expect((await start(open, undefined, 'http://localhost:8830', { ...LOCAL_CLIENT, Origin: 'http://localhost:8830', 'Sec-Fetch-Site': 'same-origin' })).status).toBe(202)
    expect((await start(open, undefined, 'http://localhost:8830', { ...LOCAL_CLIENT, 'Sec-Fetch-Mode': 'cors' })).status).toBe(202)
  })

  it('token auth: only holders of the admin right', async () => {
    const bindings = await authEnv({ AUTH_RULES: ADMIN_RULES })
    const anonymous = await start(bindings)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toContain('scope="registry:admin:*"')
    expect((await start(bindings, basic('alice', PASSWORDS.alice))).status).toBe(202)
    expect((await start(bindings, basic('rita', PASSWORDS.rita))).status).toBe(403)
    expect((await start(bindings, basic('alice', 'wrong'))).status).toBe(401)
    const adminToken = await tokenFor(bindings, basic('alice', PASSWORDS.alice), 'registry:admin:*')
    expect((await start(bindings, bearer(adminToken))).status).toBe(202)
    const pullToken = await tokenFor(bindings, basic('alice', PASSWORDS.alice), 'repository:team-a/x:pull')
    expect((await start(bindings, bearer(pullToken))).status).toBe(401)
    const ritaToken = await tokenFor(bindings, basic('rita', PASSWORDS.rita), 'registry:admin:*')
    expect((await start(bindings, bearer(ritaToken))).status).toBe(403)
    expect((await send(bindings, '/admin/gc', { headers: { Authorization: basic('rita', PASSWORDS.rita) } })).status).toBe(403)
  })

  it('rejects an admin rule with other fields', async () => {
    const bindings = await authEnv({ AUTH_RULES: JSON.stringify([{ admin: ['alice'], repos: '*' }]) })
    expect((await start(bindings, basic('alice', PASSWORDS.alice))).status).toBe(500)
  })

  it('READ_ONLY allows dry runs only', async () => {
    const ro = { ...open, READ_ONLY: 'true' }
    expect((await send(ro, 'http://localhost/admin/gc', { method: 'POST', headers: LOCAL_CLIENT })).status).toBe(405)
    expect((await send(ro, 'http://localhost/admin/gc?dry-run=true', { method: 'POST', headers: LOCAL_CLIENT })).status).toBe(202)
  })
})

describe('a run through the Workflow', () => {
  it('starts, runs its shards as child instances, completes, reports; a real run stores its report under _registry/gc/', async () => {
    const workflows = await introspectWorkflow((env as unknown as Env).GC_WORKFLOW!)
    await workflows.modifyAll(async (m) => {
      await m.disableSleeps()
    })
    try {
      for (const dry of [true, false]) {
        const before = workflows.get().length
        const res = await send(open, `http://localhost/admin/gc?dry-run=${dry}&untagged=true`, { method: 'POST', headers: LOCAL_CLIENT })
        expect(res.status).toBe(202)
        const { id } = (await res.json()) as { id: string }
        const instance = workflows.get()[before]!
        await instance.waitForStatus('complete')
        // The parent and its shards (repositories, blobs, uploads; a real run's two sweeps), each an instance.
        expect(workflows.get().length - before).toBeGreaterThanOrEqual(dry ? 4 : 6)
        const status = (await (await send(open, `http://localhost/admin/gc/${id}`, { headers: LOCAL_CLIENT })).json()) as { status: string; report: GcReport }
        expect(status.status).toBe('complete')
        expect(status.report).toMatchObject({ id, dryRun: dry, untagged: true, repo: null })
        expect(status.report.totals).toEqual(expect.objectContaining({ manifests: expect.any(Number), bytes: expect.any(Number) }))
        const stored = await open.BLOBS.get(`_registry/gc/${id}.json`)
        expect(stored !== null).toBe(!dry)
      }
    } finally {
      await workflows.dispose()
    }
    const list = (await (await send(open, 'http://localhost/admin/gc', { headers: LOCAL_CLIENT })).json()) as { reports: GcReport[] }
    expect(list.reports.length).toBeGreaterThanOrEqual(1)
    expect(list.reports[0]!.dryRun).toBe(false)
  })
})
