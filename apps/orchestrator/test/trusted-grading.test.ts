// Grading through the real orchestrator cannot be faked with a learner's own tools: a learner who
// puts a `bash` of their own first in PATH (which passed an untouched lab's check when checks ran as
// `bash -s` through the agent) still fails the check, and still passes it by doing the task. Real
// orchestrator, database and sandbox; the fixture lab of lab-api.test.ts.
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { io as connectSocket, type Socket } from "socket.io-client";
import { createNamespacesDriver } from "@berth/sandbox";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const LAB = "v2-fixture";
const instance = `trgrade${process.pid}`;
let berth: Orchestrator;
let socket: Socket | undefined;

beforeAll(async () => {
  const dataDir = await freshDataDir("berth-trusted-grading-");
  process.env.BERTH_DATA_DIR = dataDir;
  berth = await startOrchestrator({
    port: 0,
    host: "127.0.0.1",
    serveWeb: false,
    warmPoolSize: 0,
    instance,
    labsDir: path.join(import.meta.dirname, "fixtures", "labs"),
    labSecretFile: path.join(dataDir, "lab-variables.key"),
    registry: { enabled: false, root: dataDir, port: 0 },
  });
});

afterAll(async () => {
  socket?.close();
  await berth?.close();
  const driver = createNamespacesDriver();
  for (const s of await driver.list()) if (s.id.startsWith(`${instance}-`)) await driver.destroy(s.id);
});

async function check(cookie: string): Promise<{ passed: boolean; message: string }> {
  const res = await fetch(`${berth.url}/api/labs/${LAB}/checks/made`, { method: "POST", headers: { cookie } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { result: { passed: boolean; message: string } }).result;
}

describe("grading with a learner's own tools in the sandbox", () => {
  it("a fake bash first in PATH fakes nothing; doing the task passes", async () => {
    const me = await signUp(berth.url, "trusted");
    socket = connectSocket(berth.url, { transports: ["websocket"], extraHeaders: { cookie: me.cookie }, reconnection: false });
    await new Promise<void>((resolve, reject) => {
      socket!.on("connect_error", reject);
      socket!.emit("term:attach", { labId: LAB, term: "1", cols: 80, rows: 24 }, (r: { ok: boolean; error?: string }) => (r.ok ? resolve() : reject(new Error(r.error))));
    });
    const sb = berth.sandboxes.find(me.id, LAB)!;
    expect(sb).toBeDefined();
    const learner = async (script: string) => (await berth.sandboxes.exec(sb, script, 20_000)).stdout.toString("utf8");

    await learner("printf '#!/bin/sh\\necho \"Well done!\"\\n' > /usr/local/bin/bash; chmod +x /usr/local/bin/bash");
    // What grading did before: `bash -s` through the agent, bash found on PATH, and the fake answers.
    expect(await learner("exit 1")).toBe("Well done!\n");

    const faked = await check(me.cookie);
    expect(faked.passed).toBe(false);
    const file = /There is no (\/root\/\S+\.txt) yet/.exec(faked.message)?.[1];
    expect(file).toBeTruthy();

    // (with /usr/bin/bash by its path: `bash` on PATH is the fake now)
    const touched = await sb.agent.request({ op: "exec", cmd: ["/usr/bin/bash", "-c", `touch '${file}'`], timeoutMs: 20_000 });
    expect(touched.exitCode).toBe(0);
    expect((await check(me.cookie)).passed).toBe(true);
  });
});
