/**
 * src/settings/auth.ts: a broken auth setting fails closed with an error that says what is
 * wrong with the value's shape (how it was written), never a character of its content.
 */
import { describe, expect, it } from 'vitest'
import { authConfig } from '../../src/auth/config'
import { hashPassword } from '../../src/auth/passwords'
import { authEnv, send } from './setup'

const HASH = await hashPassword('secret-password', 1000)
const [, iterations, salt, hash] = HASH.split('$')

/** The error authConfig throws for these settings (null: none). */
async function errorFor(overrides: Record<string, string>): Promise<string | null> {
  try {
    authConfig(await authEnv(overrides))
    return null
  } catch (err) {
    return (err as Error).message
  }
}

describe('auth settings that do not parse', () => {
  it.each([
    // The README's old .dev.vars form: single quotes keep every backslash (dotenv, no expansion).
    ['each $ written as \\$', `{"alice":"pbkdf2-sha256\\$${iterations}\\$${salt}\\$${hash}"}`, /AUTH_USERS: not valid JSON: it contains \\\$ \(a backslash before a \$\)/],
    ['the quotes kept in the value', `'{"alice":"${HASH}"}'`, /AUTH_USERS: not valid JSON: it is wrapped in quotes/],
    ['not an object', `alice=${HASH}`, /AUTH_USERS: not valid JSON: it does not start with \{/],
    ['cut short', `{"alice":"${HASH}"`, /AUTH_USERS: not valid JSON: parsing stops at character \d+ of \d+/],
  ])('AUTH_USERS with %s: names the shape, not the content', async (_, value, message) => {
    const error = await errorFor({ AUTH_USERS: value })
    expect(error).toMatch(message)
    for (const secret of [salt!, hash!, 'alice']) expect(error).not.toContain(secret)
  })

  it('a hash whose $-fields were expanded away (an .env file, a double-quoted shell string): says how many are left', async () => {
    // `$salt` and `$hash` expand to nothing when they start with a letter; the digits stay.
    const error = await errorFor({ AUTH_USERS: JSON.stringify({ alice: `pbkdf2-sha256${iterations}` }) })
    expect(error).toMatch(/AUTH_USERS\.alice: not a password hash: it has 1 \$-separated field, not 4/)
    expect(await errorFor({ AUTH_USERS: JSON.stringify({ alice: 'plaintext' }) })).not.toContain('plaintext')
  })

  it('AUTH_RULES likewise', async () => {
    expect(await errorFor({ AUTH_RULES: `'[{"catalog":["alice"]}]'` })).toMatch(/AUTH_RULES: not valid JSON: it is wrapped in quotes/)
    expect(await errorFor({ AUTH_RULES: '[{"catalog":["alice"]}' })).toMatch(/AUTH_RULES: not valid JSON: parsing stops at character/)
  })

  it('the form the README documents parses: plain $ in the value', async () => {
    expect(await errorFor({ AUTH_USERS: `{"alice":"${HASH}"}` })).toBeNull()
  })

  it('every request then answers 500 UNKNOWN, the reply naming nothing', async () => {
    const res = await send(await authEnv({ AUTH_USERS: `{"alice":"${HASH.replaceAll('$', '\\$')}"}` }), '/v2/')
    expect(res.status).toBe(500)
    const body = await res.text()
    expect(body).not.toContain(salt!)
    expect(body).not.toContain('\\$')
  })
})
