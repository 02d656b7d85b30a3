// Caps on live learner sandboxes: the queue's rules on their own (fast, no root), then through a
// real orchestrator with real sandboxes and socket.io clients, where the messages reach the learner
// as `sandbox:status` phases.
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { io as connectSocket, type Socket } from "socket.io-client";
import { createNamespacesDriver } from "@berth/sandbox";
import { TERMINAL_KEYS, type SandboxPhase } from "@berth/protocol";
import { SandboxCapError, SandboxCaps } from "../src/sandboxes/sandbox-caps.js";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const statuses = () => {
  const seen: { phase: SandboxPhase; message: string }[] = [];
  return { seen, report: (phase: SandboxPhase, message: string) => void seen.push({ phase, message }) };
};

describe("SandboxCaps", () => {
  it("refuses a learner's lab past the per-account cap, naming the labs they have", async () => {
    const caps = new SandboxCaps({ perAccount: 2, total: 10, queueTimeoutMs: 60_000 }, 30);
    (await caps.admit("ann", "a", () => {})).held("sb-a");
    const b = await caps.admit("ann", "b", () => {}); // still starting: it counts
    await expect(caps.admit("ann", "c", () => {})).rejects.toThrow(/You already have 2 labs running \(a, b\).*ends 30 minutes later/);
    // The same lab again is not another one, and other learners are not affected.
    await expect(caps.admit("ann", "a", () => {})).resolves.toBeTruthy();
    await expect(caps.admit("bob", "c", () => {})).resolves.toBeTruthy();
    b.done(); // b failed to start: its place is free
    await expect(caps.admit("ann", "c", () => {})).resolves.toBeTruthy();
  });

  it("queues past the total, first come first served, telling each learner their place", async () => {
    const caps = new SandboxCaps({ perAccount: 0, total: 1, queueTimeoutMs: 60_000 }, 30);
    (await caps.admit("ann", "x", () => {})).held("sb-1");
    const bob = statuses();
    const cat = statuses();
    const order: string[] = [];
    const bobTicket = caps.admit("bob", "x", bob.report).then((t) => (order.push("bob"), t));
    const catTicket = caps.admit("cat", "x", cat.report).then((t) => (order.push("cat"), t));
    expect(bob.seen).toEqual([{ phase: "queued", message: expect.stringMatching(/all 1 sandboxes are in use\. You are number 1 in the queue/) }]);
    expect(cat.seen[0]!.message).toMatch(/number 2 in the queue/);
    expect(caps.queueLength).toBe(2);

    caps.release("sb-1");
    (await bobTicket).held("sb-2");
    expect(order).toEqual(["bob"]);
    expect(cat.seen.at(-1)!.message).toMatch(/number 1 in the queue/);
    caps.release("sb-2");
    await catTicket;
    expect(order).toEqual(["bob", "cat"]);
    expect(caps.liveCount).toBe(1);
  });

  it("a learner whose browser goes away leaves the queue; the one behind moves up", async () => {
    const caps = new SandboxCaps({ perAccount: 0, total: 1, queueTimeoutMs: 60_000 }, 30);
    (await caps.admit("ann", "x", () => {})).held("sb-1");
    const gone = new AbortController();
    const bob = caps.admit("bob", "x", () => {}, gone.signal).catch((e: unknown) => e);
    const cat = statuses();
    const catTicket = caps.admit("cat", "x", cat.report);
    expect(cat.seen.at(-1)!.message).toMatch(/number 2 in the queue/);
    gone.abort();
    expect(String(await bob)).toMatch(/Left the queue/);
    expect(cat.seen.at(-1)!.message).toMatch(/number 1 in the queue/);
    caps.release("sb-1");
    await catTicket; // cat, not the departed bob, gets the free slot
    expect(caps.queueLength).toBe(0);
    expect(caps.liveCount).toBe(1);
  });

  it("a learner who waits too long is told to try later, and leaves the queue", async () => {
    const caps = new SandboxCaps({ perAccount: 0, total: 1, queueTimeoutMs: 50 }, 30);
    (await caps.admit("ann", "x", () => {})).held("sb-1");
    const err = await caps.admit("bob", "x", () => {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxCapError);
    expect((err as Error).message).toMatch(/No sandbox became free within .* try again later/);
    expect(caps.queueLength).toBe(0);
  });
});

describe("caps through the orchestrator, with real sandboxes", () => {
  const instance = `caps${process.pid}`;
  const driver = createNamespacesDriver();
  let berth: Orchestrator | undefined;
  const sockets: Socket[] = [];
  afterAll(async () => {
    for (const s of sockets) s.close();
    await berth?.close();
    for (const s of await driver.list()) if (s.id.startsWith(`${instance}-`)) await driver.destroy(s.id);
  }, 120_000);

  /** Attaches a lab's first terminal; resolves with the ack and every status the learner saw. */
  function attach(cookie: string, labId: string) {
    const socket = connectSocket(berth!.url, { transports: ["websocket"], extraHeaders: { cookie }, reconnection: false });
    sockets.push(socket);
    const seen: { phase: SandboxPhase; message: string }[] = [];
    socket.on("sandbox:status", (m: { phase: SandboxPhase; message: string }) => void seen.push(m));
    const done = new Promise<{ ok: boolean; error?: string }>((resolve) =>
      socket.emit("term:attach", { labId, term: TERMINAL_KEYS[0], cols: 80, rows: 24 }, resolve),
    );
    return { seen, done };
  }

  it("one lab per account and one sandbox in all: the second lab is refused, another learner queues until one ends", async () => {
    process.env.BERTH_DATA_DIR = await freshDataDir("berth-caps-");
    berth = await startOrchestrator({
      port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, registry: { enabled: false, root: "", port: 0 }, instance,
      sandboxCaps: { perAccount: 1, total: 1, queueTimeoutMs: 120_000 },
    });
    const ann = await signUp(berth.url, "ann");
    const bob = await signUp(berth.url, "bob");

    expect(await attach(ann.cookie, "namespaces-by-hand").done).toEqual({ ok: true });

    const second = attach(ann.cookie, "cgroups-by-hand");
    const refused = await second.done;
    expect(refused.ok).toBe(false);
    expect(refused.error).toMatch(/You already have a lab running \(namespaces-by-hand\), the most one account may have at once/);
    expect(second.seen.at(-1)).toMatchObject({ phase: "error", message: refused.error });

    const waiting = attach(bob.cookie, "namespaces-by-hand");
    await expect.poll(() => waiting.seen.map((s) => s.phase), { timeout: 30_000 }).toContain("queued");
    expect(waiting.seen.find((s) => s.phase === "queued")!.message).toMatch(/all 1 sandboxes are in use\. You are number 1 in the queue/);

    // Ann's sandbox ends (as the reaper would end it): Bob's lab starts.
    const annRow = await berth.db.sandbox.findFirstOrThrow({ where: { userId: ann.id, state: "running" } });
    await berth.sandboxes.end(annRow.id, "idle");
    expect(await waiting.done).toEqual({ ok: true });
    expect(waiting.seen.map((s) => s.phase)).toEqual(expect.arrayContaining(["queued", "allocating", "ready"]));
    expect(await berth.db.sandbox.count({ where: { state: "running", id: { startsWith: `${instance}-` } } })).toBe(1);
  });
});
