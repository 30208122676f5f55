import { describe, expect, it } from 'vitest'
import { hashPassword, parsePasswordHash, PBKDF2_MAX_ITERATIONS, verifyPassword } from '../../src/auth/passwords'
import { parseRobotRecord, robotName } from '../../src/auth/robots'
import { keys } from '../../src/storage/keys'
import type { RobotName } from '../../src/auth/robots'

/** `printf %s hunter2 | npm run -s hash-password -- --iterations 1000` */
const FROM_SCRIPT = 'pbkdf2-sha256$1000$YrdDkB7N78Elf4v5c/R7Kg==$rGpedZpeKYimNhAFXx0PsMkHTAcXjCMEjpNCLw3UT00='

describe('password hashes', () => {
  it('verifies what scripts/hash-password.mjs prints', async () => {
    const stored = parsePasswordHash(FROM_SCRIPT)!
    expect(stored.iterations).toBe(1000)
    expect(await verifyPassword('hunter2', stored)).toBe(true)
    expect(await verifyPassword('hunter3', stored)).toBe(false)
  })

  it('hashes at the Workers maximum by default, within a login-sized CPU budget', async () => {
    const started = performance.now()
    const stored = parsePasswordHash(await hashPassword('correct horse'))!
    expect(stored.iterations).toBe(PBKDF2_MAX_ITERATIONS)
    expect(await verifyPassword('correct horse', stored)).toBe(true)
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it.each([
    'pbkdf2-sha256$100001$YrdDkB7N78Elf4v5c/R7Kg==$rGpedZpeKYimNhAFXx0PsMkHTAcXjCMEjpNCLw3UT00=',
    'pbkdf2-sha256$0$YrdDkB7N78Elf4v5c/R7Kg==$rGpedZpeKYimNhAFXx0PsMkHTAcXjCMEjpNCLw3UT00=',
    'pbkdf2-sha512$1000$YrdDkB7N78Elf4v5c/R7Kg==$rGpedZpeKYimNhAFXx0PsMkHTAcXjCMEjpNCLw3UT00=',
    'pbkdf2-sha256$1000$YQ==$rGpedZpeKYimNhAFXx0PsMkHTAcXjCMEjpNCLw3UT00=',
    'pbkdf2-sha256$1000$YrdDkB7N78Elf4v5c/R7Kg==$YQ==',
    'pbkdf2-sha256$1000$!!!$rGpedZpeKYimNhAFXx0PsMkHTAcXjCMEjpNCLw3UT00=',
    'hunter2',
  ])('refuses %s', (s) => {
    expect(parsePasswordHash(s)).toBeNull()
  })
})

describe('robots', () => {
  it('are users named robot:<name>', () => {
    expect(robotName('robot:ci')).toBe('ci')
    expect(robotName('robot:team-a.deploy_1')).toBe('team-a.deploy_1')
    expect(robotName('ci')).toBeNull()
    expect(robotName('robot:')).toBeNull()
    expect(robotName('robot:CI')).toBeNull()
    expect(robotName('robot:a/b')).toBeNull()
  })

  it('live in KV at auth/robots/<name> (scripts/robot.mjs spells the same key: changing it is a migration)', () => {
    expect(keys.robot('ci' as RobotName)).toBe('auth/robots/ci')
  })

  it('keep only a token hash', () => {
    expect(parseRobotRecord({ sha256: 'a'.repeat(64), created: '2026-01-01T00:00:00Z' })).toEqual({ sha256: 'a'.repeat(64), created: '2026-01-01T00:00:00Z' })
    expect(parseRobotRecord({ sha256: 'short' })).toBeNull()
    expect(parseRobotRecord('x')).toBeNull()
  })
})
