/**
 * The runtime's own SHA-256/SHA-512 (BoringSSL, through node:crypto and crypto.DigestStream):
 * about six times faster here than a WebAssembly hash. Its state cannot be saved, so a
 * session that spans requests keeps its hash in the isolate's memory between them
 * (upload/kept.ts), and reads its bytes back once at the close when it was not kept.
 */
import { createHash, type Hash } from 'node:crypto'
import { toHex } from './hex'

/** The digest algorithms the registry verifies. */
export type Algorithm = 'sha256' | 'sha512'

const NAMES: Record<Algorithm, string> = { sha256: 'SHA-256', sha512: 'SHA-512' }

/** A digest fed chunk by chunk, which can go on after its digest is read. */
export class NativeHash {
  private readonly hash: Hash

  constructor(readonly algorithm: Algorithm) {
    this.hash = createHash(algorithm)
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk)
  }

  /** Hex digest of everything fed so far; the hash goes on. */
  hex(): string {
    return this.hash.copy().digest('hex')
  }
}

/** Hex digest of a whole stream. */
export async function hashStream(stream: ReadableStream<Uint8Array>, algorithm: Algorithm): Promise<string> {
  const digest = new crypto.DigestStream(NAMES[algorithm])
  await stream.pipeTo(digest)
  return toHex(new Uint8Array(await digest.digest))
}
