// The web UI in Debian's chromium, driven by playwright-core (run by e2e/ui.sh, which pushes the
// images and passes their digests). Each check prints `ok <what>`; the first failure throws.
import { mkdirSync, rmSync } from 'node:fs'
import { chromium } from 'playwright-core'

const { BASE, SHOTS, ADMIN, ADMIN_PASSWORD, APP_DIGEST, ARM64_DIGEST, SIG_DIGEST, USER_DATA_DIR } = process.env
const host = new URL(BASE).host
mkdirSync(SHOTS, { recursive: true })
rmSync(USER_DATA_DIR, { recursive: true, force: true })

const context = await chromium.launchPersistentContext(USER_DATA_DIR, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1100, height: 800 },
  permissions: ['clipboard-read', 'clipboard-write'],
})
const page = context.pages()[0] ?? (await context.newPage())
const problems = []
// 404s and the 401 of a wrong password are asked for below; anything else (a CSP refusal) is a problem.
page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`) })
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
page.on('dialog', (d) => { problems.push(`unexpected dialog: ${d.message()}`); d.dismiss() })

const ok = (what) => console.log(`ok ${what}`)
function check(cond, what) {
  if (!cond) throw new Error(`FAILED: ${what}`)
  ok(what)
}
const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true })
const text = () => page.locator('main').innerText()
async function visit(path) {
  const res = await page.goto(BASE + path)
  return res.status()
}

try {
  // ---- anonymous: sees what anonymous may pull
  check(await visit('/') === 200, 'repositories page loads')
  let main = await text()
  check(main.includes('ui/pub/app') && main.includes('ui/pub/multi'), 'anonymous sees the public repositories')
  check(!main.includes('ui/secret'), 'anonymous does not see the private repository')
  const csp = (await page.request.get(BASE + '/')).headers()['content-security-policy']
  check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), 'strict Content-Security-Policy')
  await shot('repositories')

  // filter: live (script) and submitted (server)
  await page.getByLabel('Filter by name').fill('multi')
  check(await page.locator('tr[data-name="ui/pub/app"]').isHidden(), 'live filter hides rows that do not match')
  await page.getByLabel('Filter by name').press('Enter')
  await page.waitForURL(/q=multi/)
  main = await text()
  check(main.includes('ui/pub/multi') && !main.includes('ui/pub/app'), 'submitted filter lists matching repositories only')

  // keyboard: the first Tab offers to skip to the content, Enter follows it
  await page.keyboard.press('Tab')
  check(await page.evaluate(() => document.activeElement?.textContent) === 'Skip to content', 'keyboard: first Tab reaches "Skip to content"')
  await page.keyboard.press('Enter')
  await page.waitForURL(/#main$/)

  check(await visit('/r/ui/secret/app') === 404, 'a private repository is "not found" to anonymous')
  check(await visit('/nope/x') === 404 && (await page.locator('body').innerText()).includes('NOT_FOUND'), 'unknown paths still answer OCI NOT_FOUND')

  // ---- repository page
  await visit('/')
  await page.getByRole('link', { name: 'ui/pub/app', exact: true }).click()
  await page.waitForURL(/\/r\/ui\/pub\/app$/)
  main = await text()
  check(main.includes('v1') && main.includes('v2') && main.includes(APP_DIGEST.slice(7, 19)), 'repository page lists tags with short digests')
  check(main.includes('OCI image') && /\d+(\.\d)? (KB|MB)/.test(main), 'tags show media type and size')
  check(!main.includes('Delete'), 'no delete for anonymous')
  await page.getByRole('button', { name: /Copy the docker command \(by tag\)/ }).click()
  const clip = await page.evaluate(() => navigator.clipboard.readText())
  check(/^docker pull localhost:\d+\/ui\/pub\/app:v[12]$/.test(clip), `copy button copies "${clip}"`)
  check((await page.locator('input[value^="crane pull"]').count()) === 2 && (await page.locator('input[value^="oras pull"]').count()) === 2, 'crane and oras commands by tag and digest')
  await page.getByRole('link', { name: /Size/ }).click()
  await page.waitForURL(/sort=size/)
  check(await page.locator('th[aria-sort]').count() === 1, 'tags sort by size')
  await shot('repository')

  // ---- manifest page of an image: config, labels as text, layers, history
  await page.getByRole('link', { name: 'v1', exact: true }).click()
  await page.waitForURL(/manifest\/v1$/)
  main = await text()
  check(main.includes('linux/amd64') && main.includes('2026-11-30T12:00:00Z'), 'config summary: platform and created')
  check(main.includes('["/bin/app"]') && main.includes('["--serve"]') && main.includes('8080/tcp'), 'entrypoint, cmd, exposed ports')
  check(main.includes('<script>window.__pwned = 1</script><b>bold</b>'), 'a label holding <script> shows as text')
  check(await page.evaluate(() => window.__pwned === undefined) && (await page.locator('main b').count()) === 0, 'and is never markup')
  check(main.includes('COPY lib.dat /lib') && (await page.locator('svg.bar rect').count()) === 2, 'layers bar and build history')
  check(main.includes(APP_DIGEST), 'raw JSON view with the digest')
  await shot('manifest-image')

  // ---- referrers, grouped by artifactType, and the signature's own page
  await page.getByRole('link', { name: /Signatures, SBOMs/ }).click()
  await page.waitForURL(/referrers/)
  main = await text()
  check(main.includes('application/vnd.dev.cosign.simplesigning.v1+json') && main.includes('<img src=x onerror=alert(1)>ci'), 'referrers grouped by artifactType, annotations as text')
  await shot('referrers')
  await page.getByRole('link', { name: SIG_DIGEST.slice(7, 19) }).click()
  main = await text()
  check(main.includes('Artifact type') && main.includes('application/vnd.dev.cosign.simplesigning.v1+json') && main.includes(APP_DIGEST), 'artifact page: artifactType, blobs, subject')
  await shot('manifest-artifact')

  // ---- an index: platforms link to their manifests
  await visit('/r/ui/pub/multi')
  main = await text()
  check(main.includes('linux/amd64, linux/arm64'), 'index tag lists its platforms')
  await page.getByRole('link', { name: 'latest', exact: true }).click()
  await page.waitForURL(/manifest\/latest$/)
  await shot('manifest-index')
  await page.getByRole('row', { name: /linux\/arm64/ }).getByRole('link').click()
  await page.waitForURL(new RegExp(ARM64_DIGEST))
  check((await text()).includes('linux/arm64'), 'index platform links to the child manifest')

  // ---- narrow and dark
  await page.setViewportSize({ width: 320, height: 700 })
  await page.emulateMedia({ colorScheme: 'dark' })
  await visit('/r/ui/pub/app')
  const width = await page.evaluate(() => document.documentElement.scrollWidth)
  check(width <= 330, `readable at 320 px (page width ${width})`)
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor)
  check(bg === 'rgb(13, 17, 23)', 'dark mode follows prefers-color-scheme')
  await shot('repository-320-dark')
  await page.setViewportSize({ width: 1100, height: 800 })
  await page.emulateMedia({ colorScheme: 'light' })

  // ---- sign in (auth on): more repositories, delete allowed
  await visit('/')
  await page.getByRole('link', { name: 'Sign in' }).click()
  await page.getByLabel('User name').fill(ADMIN)
  await page.getByLabel('Password or robot token').fill('wrong')
  await page.getByRole('button', { name: 'Sign in' }).click()
  check((await text()).includes('Wrong user name or password'), 'wrong password is refused')
  await shot('sign-in')
  await page.getByLabel('User name').fill(ADMIN)
  await page.getByLabel('Password or robot token').fill(ADMIN_PASSWORD)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(BASE + '/')
  main = await page.locator('body').innerText()
  check(main.includes(`Signed in as ${ADMIN}`) && main.includes('ui/secret/app'), 'signed in: the private repository is listed')
  const cookie = (await context.cookies()).find((c) => c.name.startsWith('__Host-'))
  check(cookie && cookie.httpOnly && cookie.secure && cookie.sameSite === 'Strict', 'session cookie is HttpOnly, Secure, SameSite=Strict')
  check(await visit('/storage') === 200, 'storage page for a catalog user')
  check(await page.locator('svg.chart circle').count() === 4 && (await text()).includes('5.2 GB'), 'storage chart of the collector\'s 4 reports')
  await shot('storage')

  // ---- delete a tag (confirming)
  await visit('/r/ui/pub/app')
  await page.getByRole('link', { name: 'Delete tag v2' }).click()
  await page.waitForURL(/delete\?reference=v2/)
  await shot('delete-confirm')
  await page.getByRole('button', { name: 'Delete tag v2' }).click()
  await page.waitForURL(/\/r\/ui\/pub\/app$/)
  check(!(await page.locator('table').innerText()).includes('v2'), 'tag v2 deleted')
  const tags = await page.request.get(`${BASE}/v2/ui/pub/app/tags/list`, { headers: { Authorization: `Basic ${btoa(`${ADMIN}:${ADMIN_PASSWORD}`)}` } })
  check(JSON.stringify((await tags.json()).tags) === '["v1"]', 'the API agrees: only v1 is left')
  // A cross-site form post is refused even with the session cookie (here: no Origin match).
  const forged = await page.request.post(`${BASE}/r/ui/pub/app/-/delete`, { form: { reference: 'v1' }, headers: { Origin: 'https://evil.example' } })
  check(forged.status() === 403, 'a delete from another origin is refused')

  // ---- sign out
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.waitForURL(BASE + '/')
  main = await page.locator('body').innerText()
  check(!main.includes('ui/secret/app') && main.includes('Sign in'), 'signed out: back to what anonymous may pull')

  check(problems.length === 0, `no console errors or CSP violations${problems.length ? `: ${problems.join('; ')}` : ''}`)
} finally {
  await context.close()
}
