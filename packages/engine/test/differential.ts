/**
 * Differential scripts for the feature suites (stats, update, restart policies, health, events):
 * a bash script of docker commands run against a daemon, its output with ids and times masked.
 */
import { execFile } from "node:child_process";
import { afterAll, beforeAll, expect } from "vitest";
import { CLI_28, normalize, startBerth, startDockerd, type Daemon } from "./harness";

export function sh(d: Daemon, script: string, timeout = 90_000): Promise<{ out: string; code: number }> {
  const prelude = `docker() { "${CLI_28}" "$@"; }\nset -o pipefail 2>/dev/null\n`;
  return new Promise((resolve) => {
    execFile("bash", ["-c", prelude + script], { env: { ...process.env, DOCKER_HOST: d.host, DOCKER_CLI_HINTS: "false" }, timeout, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 255) : 0;
      resolve({ out: normalize(`${stdout}${stderr ? `\n--stderr--\n${stderr}` : ""}`), code });
    });
  });
}

/** The same script on both engines, one after the other (the machine is small); outputs must match. */
export async function same(ours: Daemon, theirs: Daemon, script: string): Promise<string> {
  const [a, b] = [await sh(ours, script), await sh(theirs, script)];
  expect(a.out, `berth vs dockerd for:\n${script}`).toBe(b.out);
  expect(a.code).toBe(b.code);
  return a.out;
}

/** Each line echoes its exit code, so a difference in any step shows. */
export const steps = (...lines: string[]) => lines.map((l) => `${l}; echo "[$?]"`).join("\n");

/**
 * Our engine (in this process) and a reference dockerd for the whole file: started together before
 * the first test, stopped after the last. Read `pair.berth` and `pair.dockerd` inside tests only.
 */
export function berthAndDockerd(): { readonly berth: Awaited<ReturnType<typeof startBerth>>; readonly dockerd: Daemon } {
  const pair = {} as { berth: Awaited<ReturnType<typeof startBerth>>; dockerd: Daemon };
  beforeAll(async () => {
    [pair.berth, pair.dockerd] = await Promise.all([startBerth(), startDockerd()]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([pair.berth?.stop(), pair.dockerd?.stop()]);
  }, 60_000);
  return pair;
}
