/** Manifest handlers by media type: adding a type is adding its file and one entry here. */
import { RegistryError } from '../errors'
import { dockerManifestList } from './docker-list'
import { dockerManifest } from './docker-v2'
import type { ManifestHandler } from './handler'
import { ociIndex } from './oci-index'
import { ociManifest } from './oci-manifest'
import { schema1 } from './schema1'

const all: ManifestHandler[] = [dockerManifest, dockerManifestList, ociManifest, ociIndex, schema1]

const byMediaType = new Map<string, ManifestHandler>()
for (const handler of all) {
  for (const type of handler.mediaTypes) {
    if (byMediaType.has(type)) throw new Error(`two manifest handlers for ${type}`)
    byMediaType.set(type, handler)
  }
}

export const handlerFor = (mediaType: string): ManifestHandler | undefined => byMediaType.get(mediaType)

/** Types a client asking only for these can take in place of an index (platform resolution). */
export const SINGLE_MANIFEST_TYPES = [dockerManifest.mediaTypes[0]!, ociManifest.mediaTypes[0]!]
export const INDEX_TYPES = [dockerManifestList.mediaTypes[0]!, ociIndex.mediaTypes[0]!]

/** Bodies that are not JSON objects, or whose type no handler knows. */
export function unknownType(mediaType: string): RegistryError {
  return new RegistryError('MANIFEST_INVALID', { reason: `unsupported manifest media type ${mediaType.slice(0, 200)}` })
}
