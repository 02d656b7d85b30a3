// Open lab → first prompt: a learner's terminal 1 comes warm from the pool, so its screen is shown
// while the lab's setup still runs (`preparing` output, before the attach's answer). Nothing typed
// in that window may reach the shell: the setup must finish before the learner's first command.
// Real orchestrator, real namespaces sandboxes, a lab whose setup takes a second and a half.
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { io as connectSocket, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespacesDriver } from "@berth/sandbox";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { signUp, typeLine } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const instance = `early${process.pid}`;
const LAB = "slow-setup";
const labs = mkdtempSync(path.join(os.tmpdir(), "berth-early-labs-"));
mkdirSync(path.join(labs, LAB));
writeFileSync(
  path.join(labs, LAB, "lab.md"),
  `---
id: ${LAB}
title: A lab whose setup takes a while
summary: For the early-screen test.
duration: 5m
difficulty: beginner
---

\`\`\`setup
sleep 1.5
touch /tmp/setup-done
\`\`\`

## Look around {#look}

Type something.
`,
);

const driver = createNamespacesDriver();
const sockets: Socket[] = [];
let berth: Orchestrator;

beforeAll(async () => {
  process.env.BERTH_DATA_DIR = await freshDataDir("berth-early-");
  berth = await startOrchestrator({ port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 1, instance, labsDir: labs });
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await berth?.close();
  for (const s of await driver.list()) if (s.id.startsWith(`${instance}-`)) await driver.destroy(s.id);
});

/** A new learner's socket, connected, once the warm pool holds a sandbox for them. */
async function learnerAtWarmPool(who: string): Promise<{ socket: Socket; id: string }> {
  await expect.poll(() => berth.sandboxes.pool.readyCount, { timeout: 60_000 }).toBe(1);
  const { cookie, id } = await signUp(berth.url, who);
  const socket = connectSocket(berth.url, { transports: ["websocket"], extraHeaders: { cookie }, reconnection: false });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => (socket.on("connect", resolve), socket.on("connect_error", reject)));
  return { socket, id };
}

const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");

describe("terminal 1 while the lab's setup runs", () => {
  it("shows the warm shell's prompt before the setup ends, and runs nothing typed before it", async () => {
    const { socket, id } = await learnerAtWarmPool("early");

    // The catalog's click: the hand-over starts; the page's terminal attaches while the setup runs.
    socket.emit("sandbox:prepare", { labId: LAB });
    await expect.poll(() => berth.sandboxes.find(id, LAB) !== undefined, { timeout: 10_000, interval: 20 }).toBe(true);
    expect(berth.sandboxes.find(id, LAB)!.ready).toBe(false);

    const events: Array<{ kind: "data"; preparing: boolean; reset: boolean; text: string } | { kind: "ack"; ok: boolean }> = [];
    socket.on("term:data", (m: { data: ArrayBuffer; preparing?: boolean; reset?: boolean }) =>
      events.push({ kind: "data", preparing: m.preparing === true, reset: m.reset === true, text: Buffer.from(m.data).toString("utf8") }),
    );
    const acked = new Promise<void>((resolve) =>
      socket.emit("term:attach", { labId: LAB, term: "1", cols: 100, rows: 30 }, (r: { ok: boolean }) => {
        events.push({ kind: "ack", ok: r.ok });
        resolve();
      }),
    );

    // The prompt arrives first, marked: the setup is still sleeping.
    await expect.poll(() => plain(events.filter((e) => e.kind === "data").map((e) => (e as { text: string }).text).join("")), { timeout: 5_000, interval: 20 }).toMatch(/[#$] $/);
    expect(events[0]).toMatchObject({ kind: "data", preparing: true, reset: true });
    expect(events.some((e) => e.kind === "ack")).toBe(false);
    expect(berth.sandboxes.find(id, LAB)!.ready).toBe(false);

    // Typed now: the server routes nothing to the shell before the attach's answer.
    typeLine(socket, "touch /tmp/typed-too-early");

    await acked;
    expect(events.find((e) => e.kind === "ack")).toEqual({ kind: "ack", ok: true });
    expect(berth.sandboxes.find(id, LAB)!.ready).toBe(true);
    // One screen only: the attach's answer does not send the kept screen a second time.
    expect(events.filter((e) => e.kind === "data" && e.reset).length).toBe(1);

    typeLine(socket, "ls /tmp/setup-done /tmp/typed-too-early; echo DONE-$((6*7))");
    await expect
      .poll(() => plain(events.filter((e) => e.kind === "data").map((e) => (e as { text: string }).text).join("")), { timeout: 10_000, interval: 50 })
      .toMatch(/DONE-42/);
    const screen = plain(events.filter((e) => e.kind === "data").map((e) => (e as { text: string }).text).join(""));
    expect(screen).toMatch(/^\/tmp\/setup-done\s*$/m);
    expect(screen).toMatch(/typed-too-early': No such file or directory/);
    // Output after the answer is live, not marked.
    expect(events.filter((e) => e.kind === "data" && /DONE-42/.test(e.text)).every((e) => e.kind === "data" && !e.preparing)).toBe(true);
  });

  it("shows it too when the attach comes with the click, before the sandbox is handed over", async () => {
    const { socket, id } = await learnerAtWarmPool("early2");
    const events: Array<{ preparing: boolean } | "ack"> = [];
    socket.on("term:data", (m: { preparing?: boolean }) => events.push({ preparing: m.preparing === true }));
    // Both at once, as the catalog's click sends them: no sandbox is this learner's yet.
    socket.emit("sandbox:prepare", { labId: LAB });
    expect(berth.sandboxes.find(id, LAB)).toBeUndefined();
    const acked = new Promise<void>((resolve) => socket.emit("term:attach", { labId: LAB, term: "1", cols: 90, rows: 25 }, () => (events.push("ack"), resolve())));
    await expect.poll(() => events.length, { timeout: 5_000, interval: 20 }).toBeGreaterThan(0);
    expect(events[0]).toEqual({ preparing: true });
    await acked;
    expect(berth.sandboxes.find(id, LAB)!.ready).toBe(true);
  });

  it("a second attach while the first still waits (the click's, at a size the terminal did not get) owns the terminal", async () => {
    // Both attaches share this socket's viewer: the first, done later, once detached the second's
    // and the learner's typing went to a shell whose output reached no one.
    const { socket } = await learnerAtWarmPool("early3");
    let text = "";
    socket.on("term:data", (m: { data: ArrayBuffer }) => (text += plain(Buffer.from(m.data).toString("utf8"))));
    socket.emit("sandbox:prepare", { labId: LAB });
    const answer = (cols: number, rows: number) =>
      new Promise<{ ok: boolean; error?: string }>((resolve) => socket.emit("term:attach", { labId: LAB, term: "1", cols, rows }, resolve));
    const [stale, fresh] = await Promise.all([answer(61, 13), answer(98, 27)]);
    expect(stale).toEqual({ ok: false, error: "replaced by a newer attach of this terminal" });
    expect(fresh).toEqual({ ok: true });
    typeLine(socket, "echo size=$(tput cols)x$(tput lines)");
    await expect.poll(() => text, { timeout: 10_000, interval: 50 }).toMatch(/^size=98x27\s*$/m);
  });
});
