/** Docker manifest list (multi-platform). */
import { imageIndex } from './image-index'

export const dockerManifestList = imageIndex('application/vnd.docker.distribution.manifest.list.v2+json', { subject: false })
