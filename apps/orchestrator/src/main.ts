// `npm start` ends here: one process serving the web app, the API and the terminals on PORT (3000).
import { startOrchestrator } from "./server.js";
// @ts-expect-error: plain JavaScript shared with setup (which runs before npm ci), typed by its JSDoc
import { requireHostPrograms } from "../../../scripts/host-programs.mjs";

if (process.getuid?.() !== 0) {
  console.error(
    "Berth needs root to make sandboxes (namespaces, cgroups and overlay mounts).\n" +
      "Run it as root, e.g. `sudo npm start`, or in a VM/container with full privileges.",
  );
  process.exit(1);
}
// Started without `npm start` (systemd, by hand): the host programs are checked here too, so a
// missing one stops Berth at once with its package named, not a sandbox later with a puzzle.
try {
  (requireHostPrograms as (need: string) => void)("runtime");
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}

const orchestrator = await startOrchestrator();
console.log(`\n  Berth is running at ${orchestrator.url}\n`);
if (orchestrator.setupUrl) {
  // Nobody administers this installation yet: whoever opens this link first (once, within the hour)
  // chooses the administrator's email and password. Only the console sees it.
  console.log(`  No administrator yet. Create one with this one-time link:\n  ${orchestrator.setupUrl}\n`);
}

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    // Learners' sandboxes keep running; the next start finds them again.
    orchestrator.close().then(() => process.exit(0), () => process.exit(1));
  });
}
