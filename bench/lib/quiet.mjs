/**
 * Measurement discipline on a shared machine: before each timed run, wait until the 1-minute
 * load average is under `maxLoad` (re-checked every 30 s, at most `maxWaitMs`), and record the
 * load the run started at. `--max-load 0` turns the wait off.
 */
import os from 'node:os'

const settings = { maxLoad: 1.5, maxWaitMs: 10 * 60_000 }

export function setQuiet({ maxLoad, maxWaitMs }) {
  if (maxLoad !== undefined) settings.maxLoad = maxLoad
  if (maxWaitMs !== undefined) settings.maxWaitMs = maxWaitMs
}

/** Waits for a quiet machine; resolves the 1-minute load it starts at. */
export async function quiet(log) {
  const deadline = Date.now() + settings.maxWaitMs
  for (;;) {
    const load = os.loadavg()[0]
    if (!settings.maxLoad || load < settings.maxLoad) return load
    if (Date.now() > deadline) {
      log?.(`load ${load.toFixed(2)} still ≥ ${settings.maxLoad} after ${settings.maxWaitMs / 1000} s: timing anyway (the load is recorded)`)
      return load
    }
    log?.(`load ${load.toFixed(2)} ≥ ${settings.maxLoad}: waiting 30 s`)
    await new Promise((r) => setTimeout(r, 30_000))
  }
}
