// A sandbox outlives the process that created it: a new driver instance (as after an orchestrator
// restart) lists it, and a new client re-attaches to the same shell and gets its screen back.
import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AgentClient } from "../src/index.js";
import { terminal, testDriver, testId } from "./sandbox-fixture.js";

const id = testId("rst");
const fixture = join(fileURLToPath(new URL(".", import.meta.url)), "fixtures", "create-and-leave.ts");

afterAll(async () => {
  await testDriver().destroy(id);
});

describe("orchestrator restart", () => {
  it("finds the running sandbox again and re-attaches to the same shell with its screen", async () => {
    // Another process creates the sandbox and exits without cleaning up.
    const out = execFileSync(process.execPath, ["--import", "tsx", fixture, id], { encoding: "utf8", timeout: 60_000 });
    const { pid } = JSON.parse(out.trim().split("\n").pop()!) as { pid: number };

    const driver = testDriver();
    const listed = (await driver.list()).find((s) => s.id === id);
    expect(listed).toMatchObject({ id, hostname: "survivor", state: "running" });

    const client = await AgentClient.connect(await driver.connect(id));
    try {
      const collected: Buffer[] = [];
      client.onOutput((_h, bytes) => collected.push(bytes));
      const pty = await client.request({ op: "pty.start", key: "main", cols: 80, rows: 24 });
      expect(pty.reattached).toBe(true);
      expect(pty.pid).toBe(pid);
      const screen = terminal(client, pty.handle);
      // The replay arrives right after the reply: reset, then what the shell printed before.
      for (let i = 0; i < 100 && !Buffer.concat(collected).includes("before-restart-2"); i++) await new Promise((r) => setTimeout(r, 20));
      const replay = Buffer.concat(collected);
      expect(replay.subarray(0, 2).toString("latin1")).toBe("\x1bc");
      expect(replay.toString("utf8")).toContain("before-restart-2");
      // Same shell: its variable is still set.
      client.sendInput(pty.handle, Buffer.from("echo after-$REMEMBER\n"));
      await screen.waitFor("after-kept-42");
    } finally {
      client.close();
    }
  });
});
