// When a limit acts, the learner's terminal says so (sandboxes/limit-notices.ts): through the real
// orchestrator, socket.io and a real sandbox with small limits, a memory hog typed in the terminal
// is OOM-killed, a fork bomb hits the pids limit (and stays contained), the disk fills up, and the
// sandbox is reaped; after each, the terminal shows a Berth notice naming the limit and its value.
import os from "node:os";
import path from "node:path";
import { io as connectSocket, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespacesDriver } from "@berth/sandbox";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const MiB = 1024 * 1024;
const LIMITS = { memoryBytes: 160 * MiB, cpus: 1, pids: 96, diskBytes: 256 * MiB };
const LAB = "namespaces-by-hand";
const TERM = "1"; // the lab's first terminal
const instance = `note${process.pid}`;
const dataDir = await freshDataDir("berth-notice-");
const driver = createNamespacesDriver();
let berth: Orchestrator | undefined;
let term: LiveTerminal | undefined;

/** A browser's terminal, kept open: everything shown so far, input, and acks (so the pty never pauses). */
interface LiveTerminal {
  text(): string;
  type(line: string): void;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  close(): void;
}

async function openTerminal(url: string, cookie: string): Promise<LiveTerminal> {
  const socket: Socket = connectSocket(url, { transports: ["websocket"], extraHeaders: { cookie }, reconnection: false });
  const parts: Buffer[] = [];
  socket.on("term:data", (m: { term: string; data: ArrayBuffer; reset?: boolean }) => {
    const bytes = Buffer.from(m.data);
    if (m.reset) parts.length = 0;
    parts.push(bytes);
    socket.emit("term:ack", { term: TERM, bytes: bytes.length });
  });
  const text = () => Buffer.concat(parts).toString("utf8");
  const waitFor = async (pattern: RegExp, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(text())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; the terminal shows ${JSON.stringify(text().slice(-600))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return text();
  };
  await new Promise<void>((resolve, reject) => {
    socket.on("connect_error", reject);
    socket.emit("term:attach", { labId: LAB, term: TERM, cols: 120, rows: 30 }, (r: { ok: boolean; error?: string }) => (r.ok ? resolve() : reject(new Error(r.error))));
  });
  await waitFor(/[#$] $/, 60_000);
  return { text, type: (line) => socket.emit("term:input", { term: TERM, data: `${line}\r` }), waitFor, close: () => socket.close() };
}

beforeAll(async () => {
  process.env.BERTH_DATA_DIR = dataDir;
  berth = await startOrchestrator({ port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, instance, sandboxLimits: LIMITS, reapIntervalMs: 3_600_000 });
  const { cookie } = await signUp(berth.url, "notice");
  term = await openTerminal(berth.url, cookie);
  // The engine starts a moment after the agent; let its threads settle before counting on pids.
  term.type("until docker info >/dev/null 2>&1; do sleep 0.2; done; echo engine-up");
  await term.waitFor(/^engine-up\r?$/m, 30_000);
}, 180_000);

afterAll(async () => {
  term?.close();
  await berth?.close();
  for (const s of await driver.list()) if (s.id.startsWith(`${instance}-`)) await driver.destroy(s.id);
});

describe("limit notices in the learner's terminal", () => {
  it("says so when a process is OOM-killed at the sandbox's memory limit", async () => {
    term!.type("tail /dev/zero; echo hog-ended");
    await term!.waitFor(/hog-ended/, 60_000);
    const shown = await term!.waitFor(/\[Berth\] A process was killed: your sandbox reached its memory limit of 160 MiB\./, 10_000);
    expect(shown).toMatch(/Killed/); // bash's own word for it came first
    // The kill was the sandbox's own limit; the notice is Berth's, not the pty's: the shell never read it.
    term!.type("echo $((1+1))");
    await term!.waitFor(/^2\r?$/m);
  }, 90_000);

  it("says so when the pids limit refuses a fork bomb, which stays contained", async () => {
    const id = (await berth!.db.sandbox.findFirstOrThrow({ where: { state: "running" } })).id;
    // A real fork bomb that stops forking after 3 s (it meets the limit within milliseconds), so
    // the sandbox gets its processes back; the poll below waits for them to end.
    // (`timeout -s KILL` on its process group left survivors here: forks in flight.)
    term!.type("bash -c 'bomb() { [ $SECONDS -lt 3 ] && { bomb | bomb & }; }; bomb' 2>/dev/null; sleep 3; echo bomb-over");
    let peak = 0;
    const deadline = Date.now() + 10_000;
    while (!/\[Berth\] New processes were refused: your sandbox reached its limit of 96 processes/.test(term!.text())) {
      peak = Math.max(peak, (await driver.stats(id)).pids);
      if (Date.now() > deadline) throw new Error(`no pids notice; the terminal shows ${JSON.stringify(term!.text().slice(-600))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(peak).toBeLessThanOrEqual(LIMITS.pids);
    expect(peak).toBeGreaterThan(LIMITS.pids / 2); // it really did bomb
    // (the output line, not the echo of the typed command, which also holds the word)
    await term!.waitFor(/^bomb-over\r?$/m, 60_000);
    // Contained, and over: the processes go back to what they were.
    await expect.poll(async () => (await driver.stats(id)).pids, { timeout: 60_000, interval: 500 }).toBeLessThan(LIMITS.pids / 2);
    term!.type("echo still-here");
    await term!.waitFor(/^still-here\r?$/m, 30_000);
  }, 120_000);

  it("says so when the disk quota is full", async () => {
    term!.type("dd if=/dev/zero of=/root/fill bs=1M count=1024 2>&1 | grep -o 'No space left on device'; echo dd-over");
    const shown = await term!.waitFor(/\[Berth\] Your sandbox's disk is full: it reached its limit of 256 MiB\./, 60_000);
    expect(shown).toMatch(/No space left on device/);
    term!.type("rm -f /root/fill");
  }, 90_000);

  it("says why before a reaped sandbox goes", async () => {
    const row = await berth!.db.sandbox.findFirstOrThrow({ where: { state: "running" } });
    await berth!.sandboxes.reap(row.expiresAt.getTime() + 1000);
    const minutes = Math.round((row.expiresAt.getTime() - row.createdAt.getTime()) / 60_000);
    await term!.waitFor(new RegExp(`\\[Berth\\] This sandbox is shutting down: it reached its maximum lifetime of ${minutes} minutes\\.`), 10_000);
    expect((await berth!.db.sandbox.findUniqueOrThrow({ where: { id: row.id } })).endReason).toBe("expired");
  });
});
