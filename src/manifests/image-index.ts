/** Manifest lists: the Docker manifest list and the OCI image index share one shape. */
import { descriptor, descriptors, invalid, isObject, schemaVersion, type ManifestHandler, type Parsed } from './handler'

export function imageIndex(mediaType: string, opts: { subject: boolean }): ManifestHandler {
  return {
    mediaTypes: [mediaType],
    parse(doc): Parsed {
      schemaVersion(doc, 2)
      if (doc.mediaType !== undefined && doc.mediaType !== mediaType) throw invalid('mediaType does not match')
      if (doc.config !== undefined || doc.layers !== undefined) throw invalid('an index has no config or layers')
      const parsed: Parsed = { blobs: [], manifests: descriptors(doc, 'manifests') }
      if (opts.subject && doc.subject !== undefined) parsed.subject = descriptor(doc.subject, 'subject')
      if (typeof doc.artifactType === 'string') parsed.artifactType = doc.artifactType
      if (isObject(doc.annotations)) parsed.annotations = doc.annotations as Record<string, string>
      return parsed
    },
  }
}
