/**
 * Resumable SHA-256 / SHA-512: hash-wasm's WebAssembly cores, driven directly.
 *
 * A chunked upload spans requests, and its close must not re-read the blob to verify
 * it, so the hash state is saved with the session between requests (`save`, and a
 * state given to the constructor). Slower than the runtime's own hash (native.ts), so
 * an upload uses it only once it spans requests (upload/session.ts). Workers cannot
 * compile WebAssembly from bytes at run time, so the binaries ship as modules
 * (src/vendor/, written by scripts/vendor-hash-wasm.mjs).
 */
import sha256Module from '../vendor/sha256.wasm'
import sha512Module from '../vendor/sha512.wasm'
import type { Algorithm } from './native'

interface HashExports {
  memory: WebAssembly.Memory
  Hash_GetBuffer(): number
  Hash_Init(bits: number): void
  Hash_Update(length: number): void
  Hash_Final(padding: number): void
  Hash_GetState(): number
  STATE_SIZE: WebAssembly.Global
}

/** Bytes hash-wasm's buffer takes per Hash_Update call. */
const MAX_HEAP = 16 * 1024
const CORES = {
  sha256: { module: sha256Module, bits: 256, bytes: 32 },
  sha512: { module: sha512Module, bits: 512, bytes: 64 },
} as const

/** One incremental hash whose state can be saved between requests. */
export class ResumableHash {
  private readonly x: HashExports
  private readonly buffer: Uint8Array

  constructor(readonly algorithm: Algorithm, state?: Uint8Array) {
    const core = CORES[algorithm]
    this.x = new WebAssembly.Instance(core.module, {}).exports as unknown as HashExports
    this.buffer = new Uint8Array(this.x.memory.buffer, this.x.Hash_GetBuffer(), MAX_HEAP)
    this.x.Hash_Init(core.bits)
    if (state) this.load(state)
  }

  update(data: Uint8Array): void {
    for (let at = 0; at < data.length; at += MAX_HEAP) {
      const chunk = data.subarray(at, at + MAX_HEAP)
      this.buffer.set(chunk)
      this.x.Hash_Update(chunk.length)
    }
  }

  /** Hex digest of what was hashed; the state is left untouched. */
  hex(): string {
    const saved = this.save()
    this.x.Hash_Final(0)
    const out = this.buffer.slice(0, CORES[this.algorithm].bytes)
    this.load(saved)
    return [...out].map((b) => b.toString(16).padStart(2, '0')).join('')
  }

  save(): Uint8Array {
    return new Uint8Array(this.x.memory.buffer, this.x.Hash_GetState(), this.stateSize()).slice()
  }

  private load(state: Uint8Array): void {
    if (state.length !== this.stateSize()) throw new Error('hash state of the wrong size')
    new Uint8Array(this.x.memory.buffer, this.x.Hash_GetState(), state.length).set(state)
  }

  private stateSize(): number {
    const at = this.x.STATE_SIZE.value as number
    return new DataView(this.x.memory.buffer).getUint32(at, true)
  }
}
