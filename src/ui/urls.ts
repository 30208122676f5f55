/**
 * The UI's URLs. A repository path component never is `-` (spec name grammar), so
 * `/r/<name>/-/…` cannot be mistaken for a deeper repository name (GitLab's trick).
 */
export const repoUrl = (repo: string): string => `/r/${repo}`
export const manifestUrl = (repo: string, reference: string): string => `/r/${repo}/-/manifest/${reference}`
export const referrersUrl = (repo: string, digest: string): string => `/r/${repo}/-/referrers/${digest}`
export const deleteUrl = (repo: string, reference: string): string =>
  `/r/${repo}/-/delete?reference=${encodeURIComponent(reference)}`
