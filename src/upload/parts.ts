/**
 * Bytes into an R2 multipart upload, PART_SIZE at a time (R2 wants equal parts of at
 * least 5 MiB, but the last). One part uploads while the next one fills, so a request
 * holds at most two parts in memory.
 */
import type { Env } from '../env'
import { RegistryError } from '../errors'
import { putPart, startParts } from '../storage/uploads'
import type { UploadState } from './state'

/** Size of every multipart part; with two in memory, the memory bound of a request. */
export const PART_SIZE = 10 * 1024 * 1024
/**
 * Parts a session may fill: R2 takes 10,000 in one upload, and the close may add two of its
 * own (the bytes still pending). So a blob is at most ~97.6 GiB here.
 */
export const MAX_PARTS = 10_000 - 2

/** 413 DENIED (final for docker and podman, as `chunkTooLarge`): the blob passes what R2 can assemble. */
const blobTooLarge = () => new RegistryError(
  'DENIED',
  { limit: MAX_PARTS * PART_SIZE },
  {},
  { message: `the blob passes the largest this registry can store (${MAX_PARTS} parts of ${PART_SIZE} bytes)`, status: 413 },
)

export class PartWriter {
  /** Etags of the parts so far, in part order. */
  readonly etags: string[]
  /** The multipart upload id, once there is one. */
  mp: string
  private current: Uint8Array<ArrayBuffer> = new Uint8Array(PART_SIZE)
  private spare: Uint8Array<ArrayBuffer> | null = null
  private filled = 0
  private inFlight: Promise<void> = Promise.resolve()

  /**
   * `deadline` (ms): no part upload starts after it. A request that claimed its offset
   * (storage/uploads.ts `putClaim`) stops before its lease ends, so that a request taking the
   * offset over later never has a part replaced under it.
   */
  constructor(
    private readonly env: Env,
    private readonly state: UploadState,
    etags: string[],
    private readonly deadline = Infinity,
  ) {
    this.etags = [...etags]
    this.mp = state.mp
  }

  /** Whether this writer started the multipart upload (and must abort it if the request fails). */
  get started(): boolean {
    return this.mp !== '' && this.mp !== this.state.mp
  }

  async push(chunk: Uint8Array): Promise<void> {
    for (let at = 0; at < chunk.byteLength; ) {
      const take = Math.min(PART_SIZE - this.filled, chunk.byteLength - at)
      this.current.set(chunk.subarray(at, at + take), this.filled)
      this.filled += take
      at += take
      if (this.filled === PART_SIZE) await this.flush()
    }
  }

  /** Waits for the part still uploading. */
  async settle(): Promise<void> {
    await this.inFlight
  }

  /** The bytes that fill no part (they go into the tail). */
  remainder(): Uint8Array {
    return this.current.subarray(0, this.filled)
  }

  private async flush(): Promise<void> {
    await this.inFlight
    if (Date.now() > this.deadline) {
      throw new RegistryError('BLOB_UPLOAD_INVALID', 'the chunk arrived too slowly (its claim on the offset ran out): send it again, or in smaller chunks')
    }
    if (this.etags.length >= MAX_PARTS) throw blobTooLarge()
    if (!this.mp) this.mp = await startParts(this.env, this.state)
    const slot = this.etags.push('') - 1
    const bytes = this.current
    const upload = putPart(this.env, { ...this.state, mp: this.mp }, slot + 1, bytes).then((etag) => {
      this.etags[slot] = etag
    })
    upload.catch(() => {}) // awaited by the next flush or settle()
    this.inFlight = upload
    this.current = this.spare ?? new Uint8Array(PART_SIZE)
    this.spare = bytes
    this.filled = 0
  }
}
