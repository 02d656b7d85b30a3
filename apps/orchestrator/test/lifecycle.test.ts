// Sandbox lifecycle through the orchestrator with the real namespaces driver: handed over from the
// warm pool, kept across an orchestrator restart, reaped when idle, and nothing left behind.
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespacesDriver } from "@berth/sandbox";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { attachTerminal, signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const instance = `life${process.pid}`;
const dataDir = await freshDataDir("berth-life-");
const driver = createNamespacesDriver();
const mine = async () => (await driver.list()).filter((s) => s.id.startsWith(`${instance}-`));
let berth: Orchestrator | undefined;

const start = () => {
  process.env.BERTH_DATA_DIR = dataDir;
  return startOrchestrator({ port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 1, instance, idleTimeoutMs: 60_000, reapIntervalMs: 3_600_000 });
};

// The first start may prepare the driver (bundles, base images): hook time, not test time.
beforeAll(async () => {
  berth = await start();
});

afterAll(async () => {
  await berth?.close();
  for (const s of await mine()) await driver.destroy(s.id);
});

describe("sandbox lifecycle", () => {
  let cookie = "";
  let sandboxId = "";

  it("hands a warm sandbox to the first learner and refills the pool", async () => {
    await expect.poll(() => berth!.sandboxes.pool.readyCount, { timeout: 30_000 }).toBe(1);
    const [pooled] = await mine();
    cookie = (await signUp(berth!.url, "life")).cookie;
    const term = await attachTerminal(berth!.url, cookie, "namespaces-by-hand");
    term.close();
    const row = await berth!.db.sandbox.findFirstOrThrow({ where: { state: "running" } });
    expect(row.id).toBe(pooled!.id);
    sandboxId = row.id;
    await expect.poll(() => berth!.sandboxes.pool.readyCount, { timeout: 30_000 }).toBe(1);
  });

  it("keeps the learner's sandbox across a restart and destroys the old pool", async () => {
    await berth!.close();
    const afterClose = (await mine()).map((s) => s.id);
    expect(afterClose).toEqual([sandboxId]); // the pool sandbox went with the orchestrator
    berth = await start();
    const term = await attachTerminal(berth.url, cookie, "namespaces-by-hand");
    term.close();
    const rows = await berth.db.sandbox.findMany({ where: { state: "running" } });
    expect(rows.map((r) => r.id)).toEqual([sandboxId]);
  });

  it("reaps an idle sandbox, says why, and leaves nothing behind", async () => {
    // The browser has gone (its socket closed above); once the server has seen it leave, the
    // sandbox counts as unwatched and, ten minutes on, as idle.
    await expect
      .poll(async () => {
        await berth!.sandboxes.reap(Date.now() + 10 * 60_000);
        return (await berth!.db.sandbox.findUniqueOrThrow({ where: { id: sandboxId } })).state;
      }, { timeout: 10_000 })
      .toBe("ended");
    const row = await berth!.db.sandbox.findUniqueOrThrow({ where: { id: sandboxId } });
    expect(row).toMatchObject({ state: "ended", endReason: "idle" });
    expect((await mine()).map((s) => s.id)).not.toContain(sandboxId);
  });
});
