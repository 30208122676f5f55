/**
 * Processes the bench starts: each in its own session (setsid), remembered by pid,
 * and stopped by those pids only (its group, then any descendant that left it).
 */
import { spawn } from 'node:child_process'
import { openSync, readFileSync, readdirSync } from 'node:fs'

const started = new Set()

/** Spawns `cmd args` in a new session, output to `logFile`. */
export function startDetached(cmd, args, { cwd, env, logFile }) {
  const out = openSync(logFile, 'a')
  const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', out, out] })
  started.add(child)
  child.on('exit', () => {})
  return child
}

/** Parent pid of every process now. */
function parents() {
  const out = new Map()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(Number(name), Number(fields[1]))
    } catch {}
  }
  return out
}

/** All descendants of `pid` (not itself). */
export function descendants(pid) {
  const ppid = parents()
  const out = []
  const walk = (p) => {
    for (const [child, parent] of ppid) if (parent === p) {
      out.push(child)
      walk(child)
    }
  }
  walk(pid)
  return out
}

export function commOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    return null
  }
}

export function cmdlineOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
  } catch {
    return []
  }
}

/** VmHWM and VmRSS of a process, in bytes. */
export function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') }
}

/** User + system CPU seconds a process has used so far. */
export function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}
const CLOCK_TICKS = 100

/** User + system CPU seconds the processes `pids` have used so far together (those gone count 0). */
export function cpuOfAll(pids) {
  let sum = 0
  for (const pid of pids) {
    try {
      sum += cpuOf(pid)
    } catch {}
  }
  return sum
}

const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Stops a started child: SIGTERM to its group, then SIGKILL to whatever of its tree is left. */
export async function stopTree(child, graceMs = 8000) {
  if (!child || !started.has(child)) return
  started.delete(child)
  const tree = [child.pid, ...descendants(child.pid)]
  try {
    process.kill(-child.pid, 'SIGTERM')
  } catch {}
  const deadline = Date.now() + graceMs
  while (tree.some(alive) && Date.now() < deadline) await sleep(100)
  for (const pid of tree) {
    if (!alive(pid)) continue
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
}

/** Stops everything still running that the bench started (on exit or interrupt). */
export async function stopAll() {
  await Promise.all([...started].map((c) => stopTree(c, 3000)))
}
