/**
 * Image manifests (config + layers): Docker schema 2 and OCI image manifest share
 * one shape, so both handlers are made here from their differences.
 */
import type { Digest } from '../names'
import { annotationsOf, artifactTypeOf, descriptor, descriptors, invalid, schemaVersion, type ManifestHandler, type Parsed } from './handler'

export function imageManifest(mediaType: string, opts: { subject: boolean }): ManifestHandler {
  return {
    mediaTypes: [mediaType],
    parse(doc): Parsed {
      schemaVersion(doc, 2)
      if (doc.mediaType !== undefined && doc.mediaType !== mediaType) throw invalid('mediaType does not match')
      if (doc.manifests !== undefined) throw invalid('an image manifest has no manifests')
      const config = descriptor(doc.config, 'config')
      const layers = descriptors(doc, 'layers')
      // Foreign layers (with urls) live elsewhere; only what this registry stores is checked.
      const blobs: Digest[] = [config.digest, ...layers.filter((l) => !l.urls?.length).map((l) => l.digest)]
      const parsed: Parsed = { blobs: [...new Set(blobs)], manifests: [] }
      if (opts.subject && doc.subject !== undefined) parsed.subject = descriptor(doc.subject, 'subject')
      const artifactType = artifactTypeOf(doc)
      if (artifactType) parsed.artifactType = artifactType
      else if (opts.subject) parsed.artifactType = config.mediaType
      const annotations = annotationsOf(doc.annotations, 'annotations')
      if (annotations) parsed.annotations = annotations
      return parsed
    },
  }
}
