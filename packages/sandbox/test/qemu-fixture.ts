// Shared by the qemu test files (the slow tier). setup installs qemu (scripts/host-programs.mjs)
// and the suite runs as root, so a machine without either is a broken setup: the files fail with
// the reason, they never skip in silence.
import { execFileSync } from "node:child_process";

export function requireQemu(): void {
  if (process.getuid?.() !== 0) throw new Error("the qemu tests need root (npm test runs as root)");
  try {
    execFileSync("qemu-system-x86_64", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("qemu-system-x86_64 is not installed: setup installs it (Debian: qemu-system-x86); run npm start or .ci/run");
  }
}
