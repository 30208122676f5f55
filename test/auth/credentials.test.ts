/**
 * src/auth/credentials.ts: user names cannot be told apart by timing. An unknown name is checked
 * against a decoy hash with the iteration count real users have (issue 19: with users hashed at
 * 1,000 iterations, an unknown name used to cost 100,000 and answer later). Counted on
 * crypto.subtle.deriveBits, which only a password check calls.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { hashPassword, PBKDF2_MAX_ITERATIONS } from '../../src/auth/passwords'
import { authEnv, basic, send, SERVICE } from './setup'

/** The PBKDF2 iteration counts of the password checks one sign-in ran. */
async function iterationsOf(env: Awaited<ReturnType<typeof authEnv>>, user: string, password: string): Promise<number[]> {
  const spy = vi.spyOn(crypto.subtle, 'deriveBits')
  const res = await send(env, `/token?service=${SERVICE}`, { headers: { Authorization: basic(user, password) } })
  await res.body?.cancel()
  const counts = spy.mock.calls.map(([algorithm]) => (algorithm as { iterations: number }).iterations)
  spy.mockRestore()
  return counts
}

afterEach(() => vi.restoreAllMocks())

describe('an unknown user name', () => {
  it('costs what a real user costs: the users\' iteration count, not the maximum', async () => {
    const e = await authEnv()                                   // rita, paul, alice: 1,000 iterations each
    expect(await iterationsOf(e, 'paul', 'a wrong password')).toEqual([1000])
    expect(await iterationsOf(e, 'nobody-here', 'a wrong password')).toEqual([1000])
  })

  it('follows the count most users have when they differ', async () => {
    const e = await authEnv({
      AUTH_USERS: JSON.stringify({
        a: await hashPassword('x', 2000), b: await hashPassword('x', 2000), c: await hashPassword('x', 1000),
      }),
    })
    expect(await iterationsOf(e, 'nobody-here', 'y')).toEqual([2000])
  })

  it('costs the maximum when there are no users', async () => {
    const e = await authEnv({ AUTH_USERS: '{}' })
    expect(await iterationsOf(e, 'nobody-here', 'y')).toEqual([PBKDF2_MAX_ITERATIONS])
  })
})
