/** OCI image index, with `artifactType` and `subject`. */
import { imageIndex } from './image-index'

export const ociIndex = imageIndex('application/vnd.oci.image.index.v1+json', { subject: true })
