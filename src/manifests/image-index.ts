/** Manifest lists: the Docker manifest list and the OCI image index share one shape. */
import { annotationsOf, artifactTypeOf, descriptor, descriptors, invalid, schemaVersion, type ManifestHandler, type Parsed } from './handler'

export function imageIndex(mediaType: string, opts: { subject: boolean }): ManifestHandler {
  return {
    mediaTypes: [mediaType],
    parse(doc): Parsed {
      schemaVersion(doc, 2)
      if (doc.mediaType !== undefined && doc.mediaType !== mediaType) throw invalid('mediaType does not match')
      if (doc.config !== undefined || doc.layers !== undefined) throw invalid('an index has no config or layers')
      const parsed: Parsed = { blobs: [], manifests: descriptors(doc, 'manifests') }
      if (opts.subject && doc.subject !== undefined) parsed.subject = descriptor(doc.subject, 'subject')
      const artifactType = artifactTypeOf(doc)
      if (artifactType) parsed.artifactType = artifactType
      const annotations = annotationsOf(doc.annotations, 'annotations')
      if (annotations) parsed.annotations = annotations
      return parsed
    },
  }
}
