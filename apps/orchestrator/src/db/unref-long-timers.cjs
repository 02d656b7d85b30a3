// Preloaded (node --require) into the Prisma CLI for PostgreSQL commands only; see prisma-cli.ts.
// The WebAssembly schema engine arms a 10 s timer per PostgreSQL session (an advisory-lock
// timeout) and never clears it, so `migrate deploy` finished its work and then idled for 10 s.
// Unref'd, such a timer still fires if the process is alive for another reason (a lock wait
// keeps its socket open), but no longer keeps a finished process running.
"use strict";
const setTimeoutOriginal = globalThis.setTimeout;
globalThis.setTimeout = function setTimeoutUnrefLong(callback, ms, ...args) {
  const timer = setTimeoutOriginal(callback, ms, ...args);
  if (typeof ms === "number" && ms >= 5000 && typeof timer?.unref === "function") timer.unref();
  return timer;
};
