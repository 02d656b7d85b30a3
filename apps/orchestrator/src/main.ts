// `npm start` ends here: one process serving the web app, the API and the terminals on PORT (3000).
import { startOrchestrator } from "./server.js";

if (process.getuid?.() !== 0) {
  console.error(
    "Berth needs root to make sandboxes (namespaces, cgroups and overlay mounts).\n" +
      "Run it as root, e.g. `sudo npm start`, or in a VM/container with full privileges.",
  );
  process.exit(1);
}

const orchestrator = await startOrchestrator();
console.log(`\n  Berth is running at ${orchestrator.url}\n`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    // Learners' sandboxes keep running; the next start finds them again.
    orchestrator.close().then(() => process.exit(0), () => process.exit(1));
  });
}
