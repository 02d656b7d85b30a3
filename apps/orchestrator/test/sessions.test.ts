// A socket lives no longer than its session, with a real socket.io client and a real sandbox:
// sign-out disconnects it and what it types no longer reaches the shell; an expired session's
// socket is closed on time; a term:attach looks the session up again. And a cross-site POST cannot
// run a check in a learner's running sandbox.
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { io as connectSocket, type Socket } from "socket.io-client";
import { createNamespacesDriver } from "@berth/sandbox";
import { loadLabs } from "@berth/labkit";
import { TERMINAL_KEYS } from "@berth/protocol";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { REPO_ROOT } from "../src/config.js";
import { signIn, signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const LAB = "namespaces-by-hand";
const TERM = TERMINAL_KEYS[0];
const instance = `sess${process.pid}`;
const driver = createNamespacesDriver();
let berth: Orchestrator;

beforeAll(async () => {
  process.env.BERTH_DATA_DIR = await freshDataDir("berth-sess-");
  berth = await startOrchestrator({ port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, registry: { enabled: false, root: "", port: 0 }, instance });
});
afterAll(async () => {
  await berth?.close();
  for (const s of await driver.list()) if (s.id.startsWith(`${instance}-`)) await driver.destroy(s.id);
}, 120_000);

/** A browser's socket: attached to the lab's main terminal, with everything the shell printed. */
async function openTerminal(cookie: string): Promise<{ socket: Socket; screen(): string; disconnected: Promise<string> }> {
  const socket = connectSocket(berth.url, { transports: ["websocket"], extraHeaders: { cookie }, reconnection: false });
  let text = "";
  socket.on("term:data", (m: { data: ArrayBuffer }) => (text += Buffer.from(m.data).toString("utf8")));
  const disconnected = new Promise<string>((resolve) => socket.on("disconnect", (reason) => resolve(reason)));
  await new Promise<void>((resolve, reject) => {
    socket.on("connect_error", reject);
    socket.emit("term:attach", { labId: LAB, term: TERM, cols: 120, rows: 30 }, (r: { ok: boolean; error?: string }) =>
      r.ok ? resolve() : reject(new Error(r.error)),
    );
  });
  return { socket, screen: () => text, disconnected };
}

const type = (socket: Socket, line: string) => socket.emit("term:input", { term: TERM, data: `${line}\r` });

describe("sockets end with their session", () => {
  let email = "";
  let first = "";

  it("sign-out disconnects the session's socket, and its keystrokes no longer reach the shell", async () => {
    ({ email, cookie: first } = await signUp(berth.url, "sess"));
    const tab = await openTerminal(first);
    type(tab.socket, "echo alive-$((20+22))");
    await expect.poll(() => tab.screen(), { timeout: 60_000 }).toMatch(/alive-42/);

    const out = await fetch(`${berth.url}/api/auth/signout`, { method: "POST", headers: { cookie: first } });
    expect(out.status).toBe(204);
    expect(await tab.disconnected).toBe("io server disconnect");
    // Typing into the closed socket does nothing; reconnecting with the old cookie is refused.
    type(tab.socket, "touch /tmp/typed-after-signout");
    const again = await new Promise<Error | undefined>((resolve) => {
      tab.socket.once("connect", () => resolve(undefined));
      tab.socket.once("connect_error", resolve);
      tab.socket.connect();
    });
    expect(again?.message).toMatch(/unauthorized/);
    type(tab.socket, "touch /tmp/typed-after-reconnect");
    tab.socket.close();

    // The same shell, seen through a new session: nothing typed after sign-out arrived.
    const { cookie } = await signIn(berth.url, email);
    const later = await openTerminal(cookie);
    await expect.poll(() => later.screen(), { timeout: 10_000 }).toMatch(/alive-42/); // the same shell: its screen came back
    type(later.socket, "echo missing-$(ls /tmp/typed-after-signout /tmp/typed-after-reconnect 2>&1 | grep -c 'No such file')-of-2");
    await expect.poll(() => later.screen(), { timeout: 30_000 }).toMatch(/missing-\d-of-2/);
    expect(later.screen()).toMatch(/missing-2-of-2/);
    later.socket.close();
  });

  it("a socket is closed when its session expires", async () => {
    const { cookie } = await signIn(berth.url, email);
    const token = decodeURIComponent(cookie.split("=")[1]!);
    const { createHash } = await import("node:crypto");
    await berth.db.session.update({ where: { id: createHash("sha256").update(token).digest("hex") }, data: { expiresAt: new Date(Date.now() + 4_000) } });
    const tab = await openTerminal(cookie);
    expect(await tab.disconnected).toBe("io server disconnect");
    expect((await fetch(`${berth.url}/api/me`, { headers: { cookie } })).status).toBe(401);
  });

  it("term:attach looks the session up again (a session removed behind the gateway's back)", async () => {
    const { cookie } = await signIn(berth.url, email);
    const tab = await openTerminal(cookie);
    const token = decodeURIComponent(cookie.split("=")[1]!);
    const { createHash } = await import("node:crypto");
    // Removed in the database directly: no sign-out event reaches the gateway.
    await berth.db.session.delete({ where: { id: createHash("sha256").update(token).digest("hex") } });
    const answer = await new Promise<{ ok: boolean; error?: string }>((resolve) =>
      tab.socket.emit("term:attach", { labId: LAB, term: TERM, cols: 80, rows: 24 }, resolve),
    );
    expect(answer).toEqual({ ok: false, error: "your session has ended: sign in again" });
    expect(await tab.disconnected).toBe("io server disconnect");
  });
});

describe("cross-site requests cannot grade", () => {
  it("a cross-site text/plain POST to a check is refused with 403 and stores no attempt; the same request from the site runs", async () => {
    const { labs } = await loadLabs(path.join(REPO_ROOT, "labs"));
    const checkId = labs.find((l) => l.id === LAB)!.steps.flatMap((s) => s.checks)[0]!.id;
    const { cookie, id: userId } = await signUp(berth.url, "csrf");
    const tab = await openTerminal(cookie); // the learner's sandbox runs: a check would run
    const url = `${berth.url}/api/labs/${LAB}/checks/${checkId}`;
    const attack = await fetch(url, { method: "POST", headers: { cookie, origin: "https://evil.example", "content-type": "text/plain" }, body: "x" });
    expect(attack.status).toBe(403);
    expect(await berth.db.checkAttempt.count({ where: { userId } })).toBe(0);
    const own = await fetch(url, { method: "POST", headers: { cookie, origin: berth.url, "sec-fetch-site": "same-origin" } });
    expect(own.status).toBe(200);
    expect(await berth.db.checkAttempt.count({ where: { userId } })).toBe(1);
    tab.socket.close();
  });
});
