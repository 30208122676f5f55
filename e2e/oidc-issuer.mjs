#!/usr/bin/env node
/**
 * A tiny local OIDC issuer for e2e/oidc.sh: a key pair made at start (jose), the discovery
 * document, the JWKS, and a token endpoint shaped like GitHub Actions' (the job's
 * ACTIONS_ID_TOKEN_REQUEST_URL): `GET /token?audience=<aud>&<claim>=<value>…` answers
 * `{"value": "<JWT>"}`, RS256, valid 5 minutes, with the query's claims (`sub` included;
 * `exp_offset=<seconds>` moves exp, for expired tokens). Only for tests: it mints anything.
 *
 *   OIDC_PORT=8865 node e2e/oidc-issuer.mjs     # prints "issuer ready on http://127.0.0.1:8865"
 *
 * Every request is logged on stdout (`GET /keys`), so the test can count JWKS fetches.
 */
import http from 'node:http'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'

const port = Number(process.env.OIDC_PORT || 8865)
const issuer = `http://127.0.0.1:${port}`
const kid = `e2e-${Date.now().toString(36)}`
const { privateKey, publicKey } = await generateKeyPair('RS256')
const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer)
  console.log(`${req.method} ${url.pathname}`)
  const json = (status, body) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body))
  if (url.pathname === '/.well-known/openid-configuration') {
    return json(200, { issuer, jwks_uri: `${issuer}/keys`, id_token_signing_alg_values_supported: ['RS256'] })
  }
  if (url.pathname === '/keys') return json(200, { keys: [jwk] })
  if (url.pathname === '/token') {
    const claims = Object.fromEntries(url.searchParams)
    const audience = claims.audience
    const expOffset = Number(claims.exp_offset ?? 300)
    delete claims.audience
    delete claims.exp_offset
    if (!audience || !claims.sub) return json(400, { error: 'audience and sub are required' })
    const now = Math.floor(Date.now() / 1000)
    const value = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt(now - 10)
      .setNotBefore(now - 10)
      .setExpirationTime(now + expOffset)
      .sign(privateKey)
    return json(200, { value })
  }
  json(404, { error: 'not found' })
})
server.listen(port, '127.0.0.1', () => console.log(`issuer ready on ${issuer}`))
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(0))
