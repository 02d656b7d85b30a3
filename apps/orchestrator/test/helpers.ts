// What the orchestrator's integration tests do as a learner would: sign up over the API, open a
// lab's terminal over socket.io (which starts the learner's sandbox) and wait for the prompt.
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { expect } from "vitest";
import { io as connectSocket, type Socket } from "socket.io-client";
import { TERMINAL_KEYS } from "@berth/protocol";
import { REPO_ROOT } from "../src/config.js";

/** Every test learner's password (long enough for the server's rule). */
export const PASSWORD = "test-learner-password";

export async function signUp(url: string, who: string): Promise<{ cookie: string; id: string; email: string }> {
  const email = `${who}-${process.pid}-${Date.now()}@example.org`;
  const res = await fetch(`${url}/api/auth/signup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  expect(res.status).toBe(200);
  // A sign-up never signs in (its answer must not tell whether the email was taken): sign in next.
  return { ...(await signIn(url, email)), email };
}

export async function signIn(url: string, email: string, password = PASSWORD): Promise<{ cookie: string; id: string }> {
  const res = await fetch(`${url}/api/auth/signin`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  expect(res.status).toBe(200);
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  const { user } = (await res.json()) as { user: { id: string } };
  return { cookie, id: user.id };
}

/**
 * Attaches the lab's main terminal and resolves, with the screen so far, once the attach is answered
 * (the lab's setup is done then) and a prompt shows. (A warm shell's prompt may come first, before
 * the setup ends: see gateway.ts.)
 */
export async function attachTerminal(url: string, cookie: string, labId: string): Promise<{ text: string; close(): void }> {
  const socket = connectSocket(url, { transports: ["websocket"], extraHeaders: { cookie }, reconnection: false });
  let text = "";
  try {
    const prompt = new Promise<void>((resolve, reject) => {
      socket.on("term:data", (m: { data: ArrayBuffer }) => {
        text += Buffer.from(m.data).toString("utf8");
        // A re-attached screen is a serialized copy that may end in cursor and mode sequences.
        if (/[#$] $/.test(text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ""))) resolve();
      });
      socket.on("connect_error", reject);
    });
    const answered = new Promise<void>((resolve, reject) =>
      socket.emit("term:attach", { labId, term: "1", cols: 80, rows: 24 }, (r: { ok: boolean; error?: string }) => (r.ok ? resolve() : reject(new Error(r.error)))),
    );
    await Promise.all([prompt, answered]);
  } catch (err) {
    socket.close();
    throw err;
  }
  return { text, close: () => socket.close() };
}

/**
 * Attaches a lab's first terminal at 120×30; `screen()` is everything it showed since. The socket is
 * added to `owned`, which the caller closes in afterAll.
 */
export async function openLabTerminal(url: string, cookie: string, labId: string, owned: Socket[]): Promise<{ socket: Socket; screen(): string }> {
  const socket = connectSocket(url, { transports: ["websocket"], extraHeaders: { cookie }, reconnection: false });
  owned.push(socket);
  let text = "";
  socket.on("term:data", (m: { data: ArrayBuffer }) => (text += Buffer.from(m.data).toString("utf8")));
  await new Promise<void>((resolve, reject) => {
    socket.on("connect_error", reject);
    socket.emit("term:attach", { labId, term: TERMINAL_KEYS[0], cols: 120, rows: 30 }, (r: { ok: boolean; error?: string }) =>
      r.ok ? resolve() : reject(new Error(r.error)),
    );
  });
  return { socket, screen: () => text };
}

/** Types a line (and Enter) into the first terminal. */
export const typeLine = (socket: Socket, line: string) => socket.emit("term:input", { term: TERMINAL_KEYS[0], data: `${line}\r` });

/** The systemd unit's ExecStart, split into program and arguments (tests run Berth as the unit does). */
export function unitCommand(): [string, string[]] {
  const unit = readFileSync(path.join(REPO_ROOT, "infra/systemd/berth.service"), "utf8");
  const line = unit.split("\n").find((l) => l.startsWith("ExecStart="))!;
  const [program, ...args] = line.slice("ExecStart=".length).trim().split(/\s+/);
  return [program!, args];
}

/** A TCP port nobody listens on right now. */
export const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
