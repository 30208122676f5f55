/** GET /v2/: the API version check (spec end-1). No storage call. */
export function check(): Response {
  return new Response('{}', { headers: { 'Content-Type': 'application/json' } })
}
