/**
 * What a pull through the pull-through cache costs: the reference image (shared/COST.md: config
 * + layers of 2 MiB, 700 KiB and 7 MiB) pulled in skopeo's order through the real router with
 * metered bindings, from the fake upstream of the proxy tests (which counts what it is asked).
 * Prints one `BENCH_PROXY {json}` line per workload; bench/proxy.mjs prices them.
 */
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { it } from 'vitest'
import type { Env } from '../../src/env'
import { router } from '../../src/router'
import { Meter, meterCaches, meteredKV, meteredR2, randomBytes, type Counts } from '../cost/meter'
import { FakeUpstream, UPSTREAM } from '../../test/proxy/fake-upstream'

const MiB = 1024 * 1024
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json'

let meter = new Meter()
meterCaches(() => meter)

async function send(origin: string, vars: Partial<Env>, path: string, init: RequestInit = {}): Promise<{ status: number; calls: Counts }> {
  const bindings = env as unknown as Env
  const metered: Env = { ...bindings, ...vars, BLOBS: meteredR2(meter, bindings.BLOBS), LINKS: meteredKV(meter, bindings.LINKS) }
  const before = meter.snapshot()
  const exec = createExecutionContext()
  const res = await router.fetch(new Request(new URL(path, origin), init), metered, exec)
  await res.arrayBuffer()
  await waitOnExecutionContext(exec)
  return { status: res.status, calls: meter.since(before) }
}

/** Manifest by tag, then config and layers (what skopeo and docker ask for). */
async function pull(up: FakeUpstream, name: string, origin: string, vars: Partial<Env>, remote: string, digests: string[]) {
  const seenBefore = up.seen.length
  const steps = [await send(origin, vars, `/v2/cache/${remote}/manifests/latest`, { headers: { Accept: ACCEPT } })]
  for (const d of digests) steps.push(await send(origin, vars, `/v2/cache/${remote}/blobs/${d}`))
  const asked = up.seen.slice(seenBefore)
  const upstream = {
    manifestGets: asked.filter((s) => s.method === 'GET' && s.path.includes('/manifests/')).length,
    manifestHeads: asked.filter((s) => s.method === 'HEAD' && s.path.includes('/manifests/')).length,
    blobGets: asked.filter((s) => s.method === 'GET' && s.path.includes('/blobs/')).length,
    requests: asked.length,
  }
  const calls: Counts = {}
  for (const s of steps) for (const [k, v] of Object.entries(s.calls)) calls[k] = (calls[k] ?? 0) + v
  return { workload: name, ok: steps.every((s) => s.status === 200), requests: steps.length, byMethod: calls, upstream }
}

it('pulls of the reference image through the cache', async () => {
  const up = new FakeUpstream().install()
  up.auth = 'token'
  const remote = `bench/proxy-${Date.now().toString(36)}`
  const img = await up.image(remote, 'latest', [2 * MiB, 700 * 1024, 7 * MiB].map(randomBytes))
  const digests = [img.config, ...img.layers]
  const within = { UPSTREAMS: JSON.stringify([{ prefix: 'cache', url: UPSTREAM }]) }
  const expired = { UPSTREAMS: JSON.stringify([{ prefix: 'cache', url: UPSTREAM, tagTtlSeconds: 0 }]) }
  const print = (w: object) => console.log(`BENCH_PROXY ${JSON.stringify(w)}`)

  print(await pull(up, 'proxy-pull-cold', 'http://a.registry.test', within, remote, digests))
  print(await pull(up, 'proxy-pull-warm', 'http://a.registry.test', within, remote, digests))
  print(await pull(up, 'proxy-pull-warm-other-location', 'http://b.registry.test', within, remote, digests))
  print(await pull(up, 'proxy-pull-after-ttl', 'http://a.registry.test', expired, remote, digests))

  // 10 pulls of one tag within the TTL, from a cold cache: the upstream's share.
  const remote10 = `bench/proxy10-${Date.now().toString(36)}`
  const img10 = await up.image(remote10, 'latest', [2 * MiB, 700 * 1024, 7 * MiB].map(randomBytes))
  const seen = up.seen.length
  let ok = true
  for (let i = 0; i < 10; i++) ok = (await pull(up, 'x', 'http://c.registry.test', within, remote10, [img10.config, ...img10.layers])).ok && ok
  const asked = up.seen.slice(seen)
  print({
    workload: 'proxy-10-pulls-within-ttl',
    ok,
    upstream: {
      manifestGets: asked.filter((s) => s.method === 'GET' && s.path.includes('/manifests/')).length,
      manifestHeads: asked.filter((s) => s.method === 'HEAD' && s.path.includes('/manifests/')).length,
      blobGets: asked.filter((s) => s.method === 'GET' && s.path.includes('/blobs/')).length,
      tokenRequests: asked.filter((s) => s.path === '/token').length,
      requests: asked.length,
    },
  })
})
