// The agent runs inside the learner's sandbox, where root can make it say anything. Here a real
// websocket server on a UNIX socket stands in for a compromised agent (that is the threat: a
// learner who ptraced or replaced theirs) and sends what no honest agent would, while a second,
// honest agent (the real AgentServer) shares the process. The orchestrator's side (AgentClient,
// the registry gateway) must drop the garbage, report it, keep the healthy link working, and never
// throw out of a listener: vitest fails the file on any uncaught exception, and before this was
// hardened the first frame (`1`) did exactly that.
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { AgentServer } from "@berth/agent";
import { FrameKind, encodeFrame } from "@berth/protocol";
import { AgentClient, AgentRequestError, dialAgent } from "../src/index.js";
import { RegistryGateway } from "../src/namespaces/registry-gateway.js";

const TOKEN = "hostile-test-token";
let dir: string;
let healthy: AgentServer;
let hostileHttp: Server;
let hostileWss: WebSocketServer;
/** What the hostile agent does with each request it gets: its test sets it. */
let onRequest: (ws: WebSocket, req: { rid: number; op: string }) => void = () => {};
const hostileSockets = new Set<WebSocket>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "berth-hostile-"));
  healthy = await AgentServer.listen({ socketPath: join(dir, "healthy.sock"), token: TOKEN, home: dir });
  hostileWss = new WebSocketServer({ noServer: true });
  hostileHttp = createServer();
  hostileHttp.on("upgrade", (req, socket, head) =>
    hostileWss.handleUpgrade(req, socket, head, (ws) => {
      hostileSockets.add(ws);
      ws.on("close", () => hostileSockets.delete(ws));
      ws.on("message", (data, isBinary) => {
        if (!isBinary) onRequest(ws, JSON.parse(String(data)) as { rid: number; op: string });
      });
    }),
  );
  await new Promise<void>((r) => hostileHttp.listen(join(dir, "hostile.sock"), r));
});

afterAll(async () => {
  for (const ws of hostileSockets) ws.terminate();
  hostileWss?.close();
  await new Promise((r) => hostileHttp?.close(r));
  await healthy?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const healthyEp = () => ({ socketPath: join(dir, "healthy.sock"), token: TOKEN });
const hostileEp = () => ({ socketPath: join(dir, "hostile.sock"), token: TOKEN });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a hostile agent", () => {
  it("sends frames of every wrong shape: they are dropped and reported, the healthy link keeps working", async () => {
    const warnings: string[] = [];
    const good = await AgentClient.connect(healthyEp());
    const bad = await AgentClient.connect(hostileEp(), { onWarning: (m) => warnings.push(m) });
    const outputs: number[] = [];
    const events: unknown[] = [];
    // A listener that throws must cost only itself: the next listener still runs.
    bad.onOutput(() => {
      throw new Error("a listener's own bug");
    });
    bad.onOutput((handle) => outputs.push(handle));
    bad.onEvent((ev) => events.push(ev));
    const ws = [...hostileSockets][0]!;
    const garbage: (string | Buffer)[] = [
      "1",
      "null",
      '"x"',
      "{}",
      "[]",
      "true",
      "not json at all {",
      '{"rid":999,"ok":true,"result":{}}', // no request has rid 999
      '{"rid":"1","ok":true}',
      '{"event":"pty.exit"}',
      '{"event":"pty.exit","handle":"1","exitCode":0,"signal":null}',
      '{"event":"mystery","handle":1}',
      '{"event":null}',
      '{"__proto__":{"polluted":true},"rid":5,"ok":false,"error":"x"}',
      Buffer.alloc(0),
      Buffer.from([1, 0, 0]), // too short for a header
      Buffer.from([99, 0, 0, 0, 1, 65]), // unknown kind
      encodeFrame(FrameKind.TunnelData, 1, Buffer.from("not on this link")),
      encodeFrame(FrameKind.PtyInput, 1, Buffer.from("wrong direction")),
      Buffer.from("\xff\xfe garbled", "latin1"),
    ];
    for (const g of garbage) ws.send(g, { binary: Buffer.isBuffer(g) });
    // Well-formed output and events still get through, even after a listener threw.
    ws.send(encodeFrame(FrameKind.PtyOutput, 7, Buffer.from("fine")));
    ws.send(JSON.stringify({ event: "pty.exit", handle: 7, exitCode: 0, signal: null }));
    await sleep(300);
    expect(outputs).toEqual([7]);
    expect(events).toEqual([{ event: "pty.exit", handle: 7, exitCode: 0, signal: null }]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(bad.isOpen).toBe(true);
    // Throttled: one report a second, the rest counted.
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThan(garbage.length);
    expect((await good.request({ op: "health" })).version).toBe(1);
    bad.close();
    expect(warnings.at(-1)).toMatch(/more warnings/);
    good.close();
  });

  it("answers a request with the wrong shape, or another rid: the caller gets an error, not the lie", async () => {
    const bad = await AgentClient.connect(hostileEp());
    const good = await AgentClient.connect(healthyEp());
    onRequest = (ws, req) => {
      ws.send(JSON.stringify({ rid: req.rid + 1000, ok: true, result: {} }));
      ws.send(JSON.stringify({ rid: req.rid, ok: true, result: req.op === "health" ? { version: "one", hostname: 5 } : null }));
    };
    await expect(bad.request({ op: "health" })).rejects.toThrow(/malformed reply/);
    await expect(bad.request({ op: "pty.list" })).rejects.toBeInstanceOf(AgentRequestError);
    onRequest = (ws, req) => ws.send(JSON.stringify({ rid: req.rid, ok: false, error: "x".repeat(100_000) }));
    // An error message too long to be one: malformed, so the request stays pending until closed.
    const pending = bad.request({ op: "health" });
    await sleep(200);
    bad.close();
    await expect(pending).rejects.toThrow(/connection closed/);
    expect((await good.request({ op: "health" })).version).toBe(1);
    good.close();
    onRequest = () => {};
  });

  it("sends a frame larger than the link allows: that link closes, unread; the other does not", async () => {
    const good = await AgentClient.connect(healthyEp());
    const bad = await AgentClient.connect(hostileEp(), { maxPayload: 1024 * 1024 });
    const closed = new Promise<void>((r) => bad.onClose(r));
    [...hostileSockets].at(-1)!.send(encodeFrame(FrameKind.PtyOutput, 1, Buffer.alloc(4 * 1024 * 1024, 0x41)));
    await closed;
    expect(bad.isOpen).toBe(false);
    expect((await good.request({ op: "health" })).hostname).toBeTruthy();
    // Sending to a closed link reports it, never throws.
    expect(bad.sendInput(1, Buffer.from("x"))).toEqual({ sent: false, reason: "closed" });
    good.close();
  });

  it("keeps its replies coming while the client floods it with input: input past the rate is dropped and said so", async () => {
    const warnings: string[] = [];
    const bad = await AgentClient.connect(hostileEp(), { onWarning: (m) => warnings.push(m), inputBytesPerSecond: 64 * 1024, inputBurstBytes: 128 * 1024 });
    const results = Array.from({ length: 8 }, () => bad.sendInput(1, Buffer.alloc(32 * 1024)));
    expect(results.slice(0, 4).every((r) => r.sent)).toBe(true);
    expect(results.slice(4)).toContainEqual({ sent: false, reason: "rate" });
    expect(bad.droppedInputBytes).toBeGreaterThan(0);
    expect(warnings.join("\n")).toMatch(/over the input rate/);
    bad.close();
  });

  it("never answers: requests past the cap are refused at once (EAGAIN), not queued", async () => {
    onRequest = () => {};
    const bad = await AgentClient.connect(hostileEp());
    const waiting = Array.from({ length: 1100 }, () => bad.request({ op: "pty.resize", handle: 1, cols: 80, rows: 24 }).then(() => "answered", (e: AgentRequestError) => e.code ?? e.message));
    await sleep(100);
    bad.close();
    const outcomes = await Promise.all(waiting);
    expect(outcomes.filter((o) => o === "EAGAIN").length).toBe(1100 - 1024);
    expect(outcomes.slice(0, 1024).every((o) => /connection closed/.test(o))).toBe(true);
  });
});

describe("dialling", () => {
  it("never follows a symlink to a socket: the token goes only to the path the driver made", async () => {
    const link = join(dir, "link.sock");
    symlinkSync(join(dir, "healthy.sock"), link);
    await expect(dialAgent({ socketPath: link, token: TOKEN })).rejects.toThrow(/symlink/);
    await expect(dialAgent({ socketPath: join(dir, "missing.sock"), token: TOKEN })).rejects.toThrow(/no such socket/);
  });
});

describe("the registry gateway (served to the sandbox from the orchestrator's process)", () => {
  it("survives CONNECT, upgrades and requests cut off mid-way", async () => {
    // The lab registry: a real HTTP server that never finishes answering.
    const upstream = createServer((req) => req.resume());
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const port = (upstream.address() as { port: number }).port;
    const gw = await RegistryGateway.listen({ socketPath: join(dir, "gw.sock"), upstream: `http://127.0.0.1:${port}`, owner: "learner" });
    try {
      const attacks = [
        "CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "PUT /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
        "GET /v2/%zz/\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        "\x00\x01garbage\r\n\r\n",
      ];
      for (const attack of attacks) {
        // Hang up at once (the gateway's answer then meets a closed socket: EPIPE) and a little later.
        for (const delayMs of [0, 100]) {
          await new Promise<void>((resolve) => {
            const s = connect(join(dir, "gw.sock"), () => {
              s.write(Buffer.from(attack, "latin1"));
              setTimeout(() => {
                s.destroy();
                resolve();
              }, delayMs);
            });
            s.on("error", () => resolve());
          });
        }
      }
      await sleep(300);
      // Still serving.
      const answer = await new Promise<string>((resolve, reject) => {
        const s = connect(join(dir, "gw.sock"), () => s.write("GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        let text = "";
        s.on("data", (b) => (text += String(b)));
        s.on("end", () => resolve(text));
        s.on("error", reject);
      });
      expect(answer).toMatch(/^HTTP\/1.1 404/);
    } finally {
      await gw.close();
      upstream.closeAllConnections();
      await new Promise((r) => upstream.close(r));
    }
  });
});
