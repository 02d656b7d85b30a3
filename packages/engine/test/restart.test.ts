/**
 * State lives on disk: an engine started again on the same root lists its containers, keeps their
 * logs, and marks the ones that were running as exited with a reason.
 */
import path from "node:path";
import fs from "node:fs";
import { afterAll, expect, it } from "vitest";
import { startEngine, type Engine } from "../src/engine";
import { docker, tmpDir, unmountUnder } from "./harness";

const root = tmpDir("berth-restart-");
const socket = path.join(root, "docker.sock");
let engine: Engine | undefined;

afterAll(async () => {
  await engine?.close();
  unmountUnder(root);
  fs.rmSync(root, { recursive: true, force: true });
});

it("finds its containers again after a restart", async () => {
  // In this process, so in the host's network namespace: no bridge (berth0 may be another engine's).
  engine = await startEngine({ root: path.join(root, "state"), socket, network: { enabled: false } });
  const host = `unix://${socket}`;
  expect((await docker(host, ["run", "--name", "done", "--label", "k=v", "busybox", "echo", "kept log"])).code).toBe(0);
  expect((await docker(host, ["run", "-d", "--name", "busy", "busybox", "sleep", "300"])).code).toBe(0);
  await engine.close();

  engine = await startEngine({ root: path.join(root, "state"), socket, network: { enabled: false } });
  const ps = await docker(host, ["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Labels}}"]);
  expect(ps.stdout.split("\n").filter(Boolean).sort()).toEqual(["busy exited ", "done exited k=v"]);
  expect((await docker(host, ["logs", "done"])).stdout).toBe("kept log\n");
  // The one that was running can start again.
  expect((await docker(host, ["start", "busy"])).code).toBe(0);
  expect((await docker(host, ["ps", "--format", "{{.Names}}"])).stdout.trim()).toBe("busy");
  expect((await docker(host, ["rm", "-f", "busy", "done"])).code).toBe(0);
});
