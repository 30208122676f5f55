/**
 * Counting bindings: R2 and KV wrapped in Proxies that count every call by method
 * (the unit the invoice bills), and the Cache API counted for information.
 * The real binding still does the work, so the real code paths run.
 */

export type Counts = Record<string, number>

/** Every call so far, keyed `r2.put`, `kv.get`, `cache.match`, …, plus byte totals `bytes.*`. */
export class Meter {
  counts: Counts = {}
  add(key: string, n = 1): void {
    this.counts[key] = (this.counts[key] ?? 0) + n
  }
  snapshot(): Counts {
    return { ...this.counts }
  }
  /** What happened since `before`. */
  since(before: Counts): Counts {
    const out: Counts = {}
    for (const [k, v] of Object.entries(this.counts)) {
      const d = v - (before[k] ?? 0)
      if (d) out[k] = d
    }
    return out
  }
}

const byteLength = (body: unknown): number | null =>
  ArrayBuffer.isView(body) ? body.byteLength : body instanceof ArrayBuffer ? body.byteLength : typeof body === 'string' ? new TextEncoder().encode(body).byteLength : null

/** Wraps an R2MultipartUpload: uploadPart and complete are class A, abort is free. */
function meteredUpload(m: Meter, up: R2MultipartUpload): R2MultipartUpload {
  return new Proxy(up, {
    get(target, prop) {
      const value = Reflect.get(target, prop)
      if (typeof value !== 'function') return value
      const name = String(prop)
      return (...args: unknown[]) => {
        m.add(`r2.${name}`)
        if (name === 'uploadPart') {
          const n = byteLength(args[1])
          if (n !== null) m.add('bytes.r2.written', n)
        }
        return value.apply(target, args)
      }
    },
  })
}

/** Wraps an R2 bucket: every method call counted as `r2.<method>`. */
export function meteredR2(m: Meter, bucket: R2Bucket): R2Bucket {
  return new Proxy(bucket, {
    get(target, prop) {
      const value = Reflect.get(target, prop)
      if (typeof value !== 'function') return value
      const name = String(prop)
      return (...args: unknown[]) => {
        m.add(`r2.${name}`)
        const out = value.apply(target, args)
        if (name === 'resumeMultipartUpload') return meteredUpload(m, out as R2MultipartUpload)
        if (name === 'createMultipartUpload') return (out as Promise<R2MultipartUpload>).then((up) => meteredUpload(m, up))
        if (name === 'put') {
          return (out as Promise<R2Object | null>).then((o) => {
            if (o) m.add('bytes.r2.written', o.size)
            return o
          })
        }
        if (name === 'get') {
          const range = (args[1] as R2GetOptions | undefined)?.range as { length?: number } | undefined
          return (out as Promise<R2ObjectBody | R2Object | null>).then((o) => {
            if (o && 'body' in o) m.add('bytes.r2.read', range?.length ?? o.size)
            return o
          })
        }
        return out
      }
    },
  })
}

/** Wraps a KV namespace: a bulk get counts each key. */
export function meteredKV(m: Meter, kv: KVNamespace): KVNamespace {
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop)
      if (typeof value !== 'function') return value
      const name = String(prop)
      return (...args: unknown[]) => {
        m.add(`kv.${name}`, Array.isArray(args[0]) ? args[0].length : 1)
        return value.apply(target, args)
      }
    },
  })
}

/** Counts Cache API calls (free) and hits, for every cache object (patched on the prototype). */
export function meterCaches(m: () => Meter): void {
  const proto = Object.getPrototypeOf(caches.default) as Cache & { __metered?: boolean }
  if (proto.__metered) return
  proto.__metered = true
  const { match, put, delete: del } = proto
  proto.match = async function (this: Cache, ...args: Parameters<Cache['match']>) {
    m().add('cache.match')
    const res = await match.apply(this, args)
    if (res) m().add('cache.hit')
    return res
  }
  proto.put = function (this: Cache, ...args: Parameters<Cache['put']>) {
    m().add('cache.put')
    return put.apply(this, args)
  }
  proto.delete = function (this: Cache, ...args: Parameters<Cache['delete']>) {
    m().add('cache.delete')
    return del.apply(this, args)
  }
}

/** Pseudo-random bytes, unique per call (a random 64 KiB block repeated, each 64 KiB stamped). */
export function randomBytes(size: number): Uint8Array {
  const out = new Uint8Array(size)
  const block = crypto.getRandomValues(new Uint8Array(65536))
  for (let i = 0; i < size; i += block.length) {
    out.set(block.subarray(0, Math.min(block.length, size - i)), i)
    out.set(crypto.getRandomValues(new Uint8Array(Math.min(16, size - i))), i)
  }
  return out
}

/**
 * A queue producer binding that keeps what is sent (the bench consumes it itself) and counts
 * `queue.write`: one per message per 64 KB, as Queues bill.
 */
export class MeteredQueue<T> {
  readonly sent: T[] = []
  constructor(private readonly m: () => Meter) {}
  async send(body: T): Promise<void> {
    return this.sendBatch([{ body }])
  }
  async sendBatch(messages: Iterable<MessageSendRequest<T>>): Promise<void> {
    for (const msg of messages) {
      this.m().add('queue.write', Math.max(1, Math.ceil(JSON.stringify(msg.body).length / 64_000)))
      this.sent.push(structuredClone(msg.body))
    }
  }
  get binding(): Queue<T> {
    return this as unknown as Queue<T>
  }
}
