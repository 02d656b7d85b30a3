/**
 * Where the time of a `docker run` goes: once switched on (main.ts does with BERTH_PROFILE=1 in
 * the engine's environment), each API request and each step of a container start prints its time
 * to stderr (ms since the engine started, and since the previous mark). Off, a mark costs one
 * boolean test.
 */
import { performance } from "node:perf_hooks";

let on = false;
let last = 0;

export function startProfiling(): void {
  on = true;
}

/** Whether marks are printed (to skip building a mark's text when they are not). */
export function profiling(): boolean {
  return on;
}

export function mark(what: string): void {
  if (!on) return;
  const now = performance.now();
  process.stderr.write(`profile ${now.toFixed(1)} +${(now - last).toFixed(1)} ${what}\n`);
  last = now;
}
