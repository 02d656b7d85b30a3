// `npm start`: set up what is missing, then run Berth on the embedded default (SQLite, the namespaces
// sandbox driver, one process) at http://localhost:3000 (PORT overrides).
import { spawn } from "node:child_process";
import path from "node:path";
import { ROOT, RUNTIME_PACKAGES, requireRoot, say, setup } from "./setup.mjs";

requireRoot("make learners' sandboxes");
try {
  setup({ packages: RUNTIME_PACKAGES });
} catch (err) {
  console.error(`\nSetup failed: ${err.message}`);
  process.exit(1);
}
say(`Starting Berth on http://localhost:${process.env.PORT ?? 3000}`);
const child = spawn(path.join(ROOT, "node_modules/.bin/tsx"), ["apps/orchestrator/src/main.ts"], { cwd: ROOT, stdio: "inherit" });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
