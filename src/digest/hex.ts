/** Lowercase hex of bytes: how digests (and the random ids made beside them) are written. */
export const toHex = (bytes: Uint8Array): string => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')
