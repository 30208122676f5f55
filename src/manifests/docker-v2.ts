/** Docker image manifest v2, schema 2. */
import { imageManifest } from './image'

export const dockerManifest = imageManifest('application/vnd.docker.distribution.manifest.v2+json', { subject: false })
