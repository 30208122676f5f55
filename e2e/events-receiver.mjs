#!/usr/bin/env node
/**
 * A webhook receiver for e2e/events.sh, and the shape of one for docs/events.md: it verifies
 * each delivery's Standard Webhooks signature with the `standardwebhooks` package and keeps it.
 *
 *   node e2e/events-receiver.mjs PORT LOG-FILE     (the key in WEBHOOK_SECRET: whsec_…)
 *
 * Paths (each endpoint of NOTIFICATIONS points at one):
 *   /ok       answers 204
 *   /flaky    answers 503 to the first two attempts of each webhook-id, then 204
 *   /down     always answers 503
 * Every request is appended to LOG-FILE as one JSON line: {path, id, verified, answered,
 * contentType, body}; GET /log answers them as a JSON list. A bad signature answers 401.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { Webhook } from 'standardwebhooks'

const [port, logFile] = process.argv.slice(2)
const webhook = new Webhook(process.env.WEBHOOK_SECRET)
const tries = new Map()
writeFileSync(logFile, '')

http.createServer(async (req, res) => {
  if (req.method === 'GET' && req.url === '/log') {
    const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean)
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(`[${lines.join(',')}]`)
    return
  }
  const chunks = []
  for await (const c of req) chunks.push(c)
  const body = Buffer.concat(chunks).toString('utf8')
  const id = req.headers['webhook-id'] ?? null
  let verified = false
  try {
    webhook.verify(body, req.headers)
    verified = true
  } catch {
    verified = false
  }
  const path = new URL(req.url, 'http://x').pathname
  const n = (tries.get(`${path} ${id}`) ?? 0) + 1
  tries.set(`${path} ${id}`, n)
  const answered = !verified ? 401 : path === '/down' ? 503 : path === '/flaky' && n <= 2 ? 503 : 204
  let parsed = null
  try {
    parsed = JSON.parse(body)
  } catch {}
  appendFileSync(logFile, JSON.stringify({ path, id, verified, answered, attempt: n, contentType: req.headers['content-type'], body: parsed }) + '\n')
  res.writeHead(answered).end()
}).listen(Number(port), '127.0.0.1', () => console.log(`receiver on ${port}`))
