// A warm sandbox is handed to a learner in two writes made while its shell is already on their
// screen: the lab registry's owner (driver.assignOwner) and the sandbox's row in the database.
// If either fails, nothing may be left half-given: the sandbox is ended and destroyed, the learner
// hears the error, and their next try gets a working sandbox. Real orchestrator and namespaces
// sandboxes; the driver's assignOwner is made to fail once, and the row write fails on a row that
// already holds the sandbox's id.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespacesDriver, type SandboxDriver } from "@berth/sandbox";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const instance = `hand${process.pid}`;
const LAB = "handover";
const labs = mkdtempSync(path.join(os.tmpdir(), "berth-handover-labs-"));
mkdirSync(path.join(labs, LAB));
writeFileSync(
  path.join(labs, LAB, "lab.md"),
  `---
id: ${LAB}
title: A lab to be handed over
summary: For the hand-over failure test.
duration: 5m
difficulty: beginner
---

## Look around {#look}

Type something.
`,
);

const real = createNamespacesDriver();
let failOwner = false;
// The real driver, except that assignOwner fails while failOwner is set.
const driver = new Proxy(real, {
  get(target, prop) {
    if (prop === "assignOwner") {
      return async (id: string, owner: string) => {
        if (failOwner) throw new Error("the owner could not be written (made to fail by the test)");
        return target.assignOwner?.(id, owner);
      };
    }
    const value = Reflect.get(target, prop, target) as unknown;
    return typeof value === "function" ? value.bind(target) : value;
  },
}) as SandboxDriver;
const mine = async () => (await real.list()).filter((s) => s.id.startsWith(`${instance}-`)).map((s) => s.id);
let berth: Orchestrator;

beforeAll(async () => {
  process.env.BERTH_DATA_DIR = await freshDataDir("berth-handover-");
  berth = await startOrchestrator({ port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 1, instance, labsDir: labs }, { driver });
});

afterAll(async () => {
  await berth?.close();
  for (const id of await mine()) await real.destroy(id);
});

/** The sandbox waiting in the pool, once there is one: this instance's only sandbox without a row (a learner's has one). */
async function pooled(): Promise<string> {
  await expect.poll(() => berth.sandboxes.pool.readyCount, { timeout: 60_000 }).toBe(1);
  const rows = new Set((await berth.db.sandbox.findMany({ select: { id: true } })).map((r) => r.id));
  const waiting = (await mine()).filter((id) => !rows.has(id));
  expect(waiting).toHaveLength(1);
  return waiting[0]!;
}

describe("a hand-over whose writes fail", () => {
  it("ends the sandbox when its owner cannot be written, and the next try works", async () => {
    const sandbox = await pooled();
    const { id: userId } = await signUp(berth.url, "owner-fails");
    failOwner = true;
    try {
      await expect(berth.sandboxes.acquire(userId, LAB)).rejects.toThrow(/owner could not be written/);
    } finally {
      failOwner = false;
    }
    expect(berth.sandboxes.find(userId, LAB)).toBeUndefined();
    const row = await berth.db.sandbox.findUniqueOrThrow({ where: { id: sandbox } });
    expect({ state: row.state, endReason: row.endReason }).toEqual({ state: "ended", endReason: "setup-failed" });
    expect(await mine()).not.toContain(sandbox);

    const again = await berth.sandboxes.acquire(userId, LAB);
    expect(again.ready).toBe(true);
    expect(again.id).not.toBe(sandbox);
    expect((await berth.db.sandbox.findUniqueOrThrow({ where: { id: again.id } })).state).toBe("running");
  });

  it("ends the sandbox when its row cannot be written", async () => {
    const sandbox = await pooled();
    const { id: userId } = await signUp(berth.url, "row-fails");
    // A row that already holds the pooled sandbox's id: the hand-over's insert fails on its key.
    await berth.db.sandbox.create({
      data: { id: sandbox, userId, labId: "elsewhere", driver: "namespaces", hostname: "taken", state: "ended", expiresAt: new Date(), endedAt: new Date(), endReason: "test" },
    });
    await expect(berth.sandboxes.acquire(userId, LAB)).rejects.toThrow();
    expect(berth.sandboxes.find(userId, LAB)).toBeUndefined();
    await expect.poll(mine, { timeout: 10_000 }).not.toContain(sandbox);
    // The row that was in the way is left as it was.
    expect((await berth.db.sandbox.findUniqueOrThrow({ where: { id: sandbox } })).endReason).toBe("test");
  });
});
