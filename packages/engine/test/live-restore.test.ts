/**
 * Live restore (ours; a dockerd cannot be restarted on its own state by this harness): with
 * `liveRestore`, containers keep running while the engine is away and are found running when it
 * starts again on the same root: exec, stats and stop work on them; one that exited meanwhile is
 * found exited with its code. Without it, containers die with the engine (restart.test.ts).
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { startEngine, type Engine } from "../src/engine";
import { docker, sleep, tmpDir, unmountUnder } from "./harness";

const root = tmpDir("berth-live-");
const socket = path.join(root, "docker.sock");
const host = `unix://${socket}`;
let engine: Engine | undefined;
const start = () => startEngine({ root: path.join(root, "state"), socket, network: { enabled: false }, liveRestore: true });

afterAll(async () => {
  if (engine) {
    await docker(host, ["rm", "-f", "lr-long", "lr-short"]);
    await engine.close();
  }
  unmountUnder(root);
  fs.rmSync(root, { recursive: true, force: true });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it("keeps containers running across an engine restart and finds them again", async () => {
  engine = await start();
  expect((await docker(host, ["run", "-d", "--name", "lr-long", "busybox", "sh", "-c", "echo before; while true; do sleep 0.2; done"])).code).toBe(0);
  expect((await docker(host, ["run", "-d", "--name", "lr-short", "busybox", "sh", "-c", "sleep 2; exit 7"])).code).toBe(0);
  const pid = Number((await docker(host, ["inspect", "-f", "{{.State.Pid}}", "lr-long"])).stdout.trim());
  await engine.close();
  engine = undefined;
  await sleep(300);
  expect(alive(pid)).toBe(true); // the engine is gone, the container is not

  engine = await start();
  expect((await docker(host, ["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "lr-long"])).stdout.trim()).toBe(`running ${pid}`);
  expect((await docker(host, ["exec", "lr-long", "echo", "inside"])).stdout).toBe("inside\n");
  expect((await docker(host, ["logs", "lr-long"])).stdout).toContain("before");
  const stats = await docker(host, ["stats", "--no-stream", "--format", "{{.PIDs}}", "lr-long"]);
  expect(Number(stats.stdout.trim())).toBeGreaterThanOrEqual(1);
  // The short one ended while nobody watched: its exit code is kept.
  for (let i = 0; i < 50 && (await docker(host, ["inspect", "-f", "{{.State.Running}}", "lr-short"])).stdout.trim() !== "false"; i++) await sleep(100);
  expect((await docker(host, ["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "lr-short"])).stdout.trim()).toBe("exited 7");
  // Stop and wait still see it end.
  expect((await docker(host, ["stop", "-t", "1", "lr-long"])).code).toBe(0);
  expect((await docker(host, ["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "lr-long"])).stdout.trim()).toBe("exited 137");
  expect(alive(pid)).toBe(false);
});
