// Shared by the qemu test files (the slow tier): why they cannot run here, if they cannot.
import { execFileSync } from "node:child_process";

/** Undefined where qemu guests can run (root, qemu-system-x86_64 installed); else the reason. */
export function qemuUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root";
  try {
    execFileSync("qemu-system-x86_64", ["--version"], { stdio: "ignore" });
  } catch {
    return "qemu-system-x86_64 is not installed (Debian: qemu-system-x86)";
  }
  return undefined;
}
