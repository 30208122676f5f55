/**
 * The runtime's own SHA-256/SHA-512 (crypto.DigestStream): several times faster than
 * any WebAssembly hash here, but its state cannot be saved between requests. An upload
 * hashes natively what its first request receives; a session that spans requests keeps a
 * resumable hash (hasher.ts) instead (upload/session.ts).
 */
import { toHex } from './hex'

/** The digest algorithms the registry verifies. */
export type Algorithm = 'sha256' | 'sha512'

const NAMES: Record<Algorithm, string> = { sha256: 'SHA-256', sha512: 'SHA-512' }

/** A digest fed chunk by chunk. */
export class NativeHash {
  private readonly stream: DigestStream
  private readonly writer: WritableStreamDefaultWriter<ArrayBuffer | ArrayBufferView>

  constructor(readonly algorithm: Algorithm) {
    this.stream = new crypto.DigestStream(NAMES[algorithm])
    this.writer = this.stream.getWriter()
  }

  update(chunk: Uint8Array): Promise<void> {
    return this.writer.write(chunk)
  }

  /** Hex digest of everything fed; the hash takes no more input. */
  async hex(): Promise<string> {
    await this.writer.close()
    return toHex(new Uint8Array(await this.stream.digest))
  }
}

/** Hex digest of a whole stream. */
export async function hashStream(stream: ReadableStream<Uint8Array>, algorithm: Algorithm): Promise<string> {
  const digest = new crypto.DigestStream(NAMES[algorithm])
  await stream.pipeTo(digest)
  return toHex(new Uint8Array(await digest.digest))
}
