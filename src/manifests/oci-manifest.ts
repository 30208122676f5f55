/** OCI image manifest, artifacts included (`artifactType`, empty config, any layer types, `subject`). */
import { imageManifest } from './image'

export const ociManifest = imageManifest('application/vnd.oci.image.manifest.v1+json', { subject: true })
