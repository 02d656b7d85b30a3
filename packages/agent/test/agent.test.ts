// The agent on the host, in-process, spoken to over its real UNIX socket by the real client.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { AgentClient } from "../src/client.js";
import { AgentServer } from "../src/index.js";
import type { AgentEvent } from "@berth/protocol";

const TOKEN = "test-token-" + Math.random().toString(36).slice(2);
let dir: string;
let server: AgentServer;
let socketPath: string;
const clients: AgentClient[] = [];

async function client(): Promise<AgentClient> {
  const c = await AgentClient.connect({ socketPath, token: TOKEN });
  clients.push(c);
  return c;
}

/** Collects a pty's output bytes until `pattern` appears in them (decoded only here, for the assertion). */
function collect(c: AgentClient, handle: number) {
  const parts: Buffer[] = [];
  const sub = c.onOutput((h, bytes) => {
    if (h === handle) parts.push(bytes);
  });
  return {
    bytes: () => Buffer.concat(parts),
    async until(pattern: string | RegExp, timeoutMs = 5000): Promise<Buffer> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = Buffer.concat(parts).toString("utf8");
        if (typeof pattern === "string" ? text.includes(pattern) : pattern.test(text)) return Buffer.concat(parts);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(pattern)}; got ${JSON.stringify(text.slice(-300))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    dispose: () => sub.dispose(),
  };
}

function isRunning(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("Z");
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "berth-agent-"));
  socketPath = join(dir, "agent.sock");
  server = await AgentServer.listen({ socketPath, token: TOKEN, home: dir });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("agent", () => {
  it("refuses an upgrade without the token, and with a wrong one", async () => {
    const attempt = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`ws+unix://${socketPath}:/`, { headers });
        ws.on("unexpected-response", (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on("open", () => reject(new Error("upgrade was accepted")));
        ws.on("error", () => {});
      });
    expect(await attempt({})).toBe(401);
    expect(await attempt({ authorization: "Bearer nope" })).toBe(401);
    await expect(AgentClient.connect({ socketPath, token: "wrong" })).rejects.toThrow(/401/);
  });

  it("answers health", async () => {
    const c = await client();
    const h = await c.request({ op: "health" });
    expect(h.version).toBe(1);
    expect(h.memoryRss).toBeGreaterThan(0);
  });

  it("round-trips bytes through a pty, including a UTF-8 character split across two writes", async () => {
    const c = await client();
    const pty = await c.request({ op: "pty.start", key: "echo", cols: 80, rows: 24, cmd: ["/bin/cat"] });
    expect(pty.reattached).toBe(false);
    const out = collect(c, pty.handle);
    const euro = Buffer.from("€", "utf8"); // e2 82 ac
    c.sendInput(pty.handle, Buffer.concat([Buffer.from("price: "), euro.subarray(0, 1)]));
    await new Promise((r) => setTimeout(r, 30));
    c.sendInput(pty.handle, Buffer.concat([euro.subarray(1), Buffer.from("5\n")]));
    const got = await out.until("price: €5");
    // The echo and cat's copy both carry the intact three bytes.
    expect(got.includes(Buffer.from("price: €5", "utf8"))).toBe(true);
    out.dispose();
    await c.request({ op: "pty.kill", handle: pty.handle });
  });

  it("re-attaching gets the replay (reset first) and the same shell", async () => {
    const a = await client();
    const pty = await a.request({ op: "pty.start", key: "main", cols: 80, rows: 24, cmd: ["/bin/bash", "--norc", "-i"] });
    const out = collect(a, pty.handle);
    a.sendInput(pty.handle, Buffer.from("echo marker-$((40+2))\n"));
    await out.until("marker-42");
    out.dispose();

    const b = await client();
    const replayed = collect(b, pty.handle);
    const again = await b.request({ op: "pty.start", key: "main", cols: 100, rows: 30 });
    expect(again.reattached).toBe(true);
    expect(again.pid).toBe(pty.pid);
    const bytes = await replayed.until("marker-42");
    expect(bytes.subarray(0, 2).toString("latin1")).toBe("\x1bc");

    // pty.attach by handle replays too, and output now goes to both connections.
    const c = await client();
    const viaAttach = collect(c, pty.handle);
    const info = await c.request({ op: "pty.attach", handle: pty.handle });
    expect(info.pid).toBe(pty.pid);
    await viaAttach.until("marker-42");
    b.sendInput(pty.handle, Buffer.from("echo both-$((1+1))\n"));
    await replayed.until("both-2");
    await viaAttach.until("both-2");
  });

  it("resizes a pty (the shell sees the new size)", async () => {
    const c = await client();
    const pty = await c.request({ op: "pty.start", key: "resize", cols: 80, rows: 24, cmd: ["/bin/bash", "--norc", "-i"] });
    const out = collect(c, pty.handle);
    await c.request({ op: "pty.resize", handle: pty.handle, cols: 123, rows: 45 });
    c.sendInput(pty.handle, Buffer.from("stty size\n"));
    await out.until("45 123");
    const list = await c.request({ op: "pty.list" });
    expect(list.ptys.find((p) => p.handle === pty.handle)).toMatchObject({ cols: 123, rows: 45, exited: false });
    out.dispose();
  });

  it("sends pty.exit after the last output, and pty.kill destroys a live pty", async () => {
    const c = await client();
    const events: AgentEvent[] = [];
    c.onEvent((ev) => events.push(ev));
    const pty = await c.request({ op: "pty.start", key: "short", cols: 80, rows: 24, cmd: ["/bin/sh", "-c", "echo last-words; exit 3"] });
    const out = collect(c, pty.handle);
    let outputWhenExit = "";
    c.onEvent(() => (outputWhenExit = out.bytes().toString("utf8")));
    for (let i = 0; i < 100 && !events.some((e) => e.handle === pty.handle); i++) await new Promise((r) => setTimeout(r, 20));
    expect(events.find((e) => e.handle === pty.handle)).toMatchObject({ event: "pty.exit", exitCode: 3 });
    expect(outputWhenExit).toContain("last-words");

    const long = await c.request({ op: "pty.start", key: "long", cols: 80, rows: 24, cmd: ["/bin/sleep", "100"] });
    await c.request({ op: "pty.kill", handle: long.handle });
    expect((await c.request({ op: "pty.list" })).ptys.some((p) => p.handle === long.handle)).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(isRunning(long.pid)).toBe(false);
  });

  it("coalesces a burst of output into few frames, every byte intact", async () => {
    const c = await client();
    let frames = 0;
    let xs = 0;
    const pty = await c.request({ op: "pty.start", key: "burst", cols: 80, rows: 24, cmd: ["/bin/sh", "-c", "sleep 0.2; head -c 300000 /dev/zero | tr '\\0' x; echo; echo END"] });
    const out = collect(c, pty.handle);
    c.onOutput((h, bytes) => {
      if (h !== pty.handle) return;
      frames++;
      for (const b of bytes) if (b === 0x78) xs++;
    });
    await out.until("END");
    expect(xs).toBe(300000);
    // Unbatched, node-pty's reads (4 KiB or less) would be 70+ frames.
    expect(frames).toBeLessThan(40);
  });

  it("passes signals, env and cwd to the pty's process", async () => {
    const c = await client();
    const pty = await c.request({ op: "pty.start", key: "sig", cols: 80, rows: 24, cwd: "/tmp", env: { GREETING: "hi-there" }, cmd: ["/bin/sh", "-c", "echo $GREETING in $(pwd); trap 'echo got-usr1; exit 0' USR1; while :; do sleep 0.05; done"] });
    const out = collect(c, pty.handle);
    await out.until("hi-there in /tmp");
    await c.request({ op: "pty.signal", handle: pty.handle, signal: "SIGUSR1" });
    await out.until("got-usr1");
    await expect(c.request({ op: "pty.signal", handle: pty.handle, signal: "SIGNOPE" })).rejects.toThrow(/unknown signal/);
  });

  it("pauses and resumes a pty (flow control)", async () => {
    const c = await client();
    const pty = await c.request({ op: "pty.start", key: "flow", cols: 80, rows: 24, cmd: ["/bin/bash", "--norc", "-i"] });
    const out = collect(c, pty.handle);
    await out.until(/[#$] $/);
    await c.request({ op: "pty.flow", handle: pty.handle, paused: true });
    c.sendInput(pty.handle, Buffer.from("echo flow-$((2*3))\n"));
    await new Promise((r) => setTimeout(r, 300));
    expect(out.bytes().toString("utf8")).not.toContain("flow-6");
    await c.request({ op: "pty.flow", handle: pty.handle, paused: false });
    await out.until("flow-6");
  });

  it("runs exec with stdin, exit codes and an output cap", async () => {
    const c = await client();
    const r = await c.request({ op: "exec", cmd: ["/bin/sh", "-c", "cat; echo err >&2; exit 7"], stdin: Buffer.from("in-bytes").toString("base64") });
    expect(r.exitCode).toBe(7);
    expect(Buffer.from(r.stdout, "base64").toString()).toBe("in-bytes");
    expect(Buffer.from(r.stderr, "base64").toString()).toBe("err\n");
    expect(r.truncated).toBe(false);

    const big = await c.request({ op: "exec", cmd: ["/bin/sh", "-c", "head -c 100000 /dev/zero"], maxOutputBytes: 1000 });
    expect(Buffer.from(big.stdout, "base64").length).toBe(1000);
    expect(big.truncated).toBe(true);
    expect(big.exitCode).toBe(0);
  });

  it("kills the whole process group when exec times out", async () => {
    const c = await client();
    const marker = join(dir, "child-pid");
    const started = Date.now();
    const r = await c.request({ op: "exec", cmd: ["/bin/sh", "-c", `sleep 30 & echo $! > ${marker}; wait`], timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe("SIGKILL");
    expect(Date.now() - started).toBeLessThan(3000);
    const childPid = Number(readFileSync(marker, "utf8").trim());
    await new Promise((r2) => setTimeout(r2, 100));
    // Gone, or a zombie waiting for whoever inherited it to reap it: either way, not running.
    expect(isRunning(childPid)).toBe(false);
  });

  it("answers a bad request with an error and keeps the connection", async () => {
    const c = await client();
    await expect(c.request({ op: "pty.resize", handle: 1, cols: -5, rows: 2 })).rejects.toThrow(/invalid request.*cols/);
    await expect(c.request({ op: "nope" } as never)).rejects.toThrow(/invalid request/);
    await expect(c.request({ op: "pty.attach", handle: 99999 })).rejects.toThrow(/no pty with handle 99999/);
    await expect(c.request({ op: "exec", cmd: ["/no/such/binary"] })).rejects.toThrow(/ENOENT/);
    // Not JSON at all: the agent answers rid -1 and stays up.
    (c as unknown as { ws: WebSocket }).ws.send("{not json");
    expect(c.isOpen).toBe(true);
    expect((await c.request({ op: "health" })).version).toBe(1);
  });

  it("reads, writes, stats and lists files", async () => {
    const c = await client();
    const p = join(dir, "f.bin");
    const bytes = Buffer.from([0, 1, 2, 255, 254]);
    await c.request({ op: "file.write", path: p, data: bytes.toString("base64"), mode: 0o640 });
    const st = await c.request({ op: "file.stat", path: p });
    expect(st).toMatchObject({ name: "f.bin", size: 5, isDir: false });
    expect(st.mode & 0o777).toBe(0o640);
    const read = await c.request({ op: "file.read", path: p, maxBytes: 3 });
    expect(Buffer.from(read.data, "base64")).toEqual(bytes.subarray(0, 3));
    expect(read.truncated).toBe(true);
    const list = await c.request({ op: "file.list", path: dir });
    expect(list.entries.map((e) => e.name)).toContain("f.bin");
    await expect(c.request({ op: "file.stat", path: join(dir, "missing") })).rejects.toMatchObject({ code: "ENOENT" });
  });
});
