// The preview's tunnels against an agent that lies or stops (it runs in the learner's sandbox, where
// root can do either). First a real websocket server on a UNIX socket that stands in for a
// compromised agent, beside an honest in-process AgentServer; then a real sandbox whose agent is
// stopped (SIGSTOP) while the orchestrator pushes 200 MiB into a tunnel towards it.
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { AgentServer } from "@berth/agent";
import { FrameKind, TUNNEL_WINDOW, encodeFrame } from "@berth/protocol";
import { AgentClient, createNamespacesDriver } from "@berth/sandbox";
import { TunnelClient } from "../src/preview/tunnel-client.js";

const TOKEN = "hostile-tunnel-token";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !cond(); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`still waiting after ${timeoutMs} ms for ${cond}`);
  }
}

describe("tunnels to a hostile agent", () => {
  let dir: string;
  let healthy: AgentServer;
  let echo: ReturnType<typeof createTcpServer>;
  let hostileHttp: Server;
  let wss: WebSocketServer;
  let onRequest: (ws: WebSocket, req: { rid: number; op: string; id?: number }) => void = () => {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-hostile-tunnel-"));
    healthy = await AgentServer.listen({ socketPath: join(dir, "healthy.sock"), token: TOKEN, home: dir });
    echo = createTcpServer((c) => c.pipe(c));
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    wss = new WebSocketServer({ noServer: true });
    hostileHttp = createServer();
    hostileHttp.on("upgrade", (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (d, bin) => !bin && onRequest(ws, JSON.parse(String(d))))),
    );
    await new Promise<void>((r) => hostileHttp.listen(join(dir, "hostile.sock"), r));
  });

  afterAll(async () => {
    for (const ws of wss?.clients ?? []) ws.terminate();
    wss?.close();
    await new Promise((r) => hostileHttp?.close(r));
    await new Promise((r) => echo?.close(r));
    await healthy?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const echoThrough = async (client: TunnelClient): Promise<string> => {
    const s = await client.open((echo.address() as AddressInfo).port);
    s.write("ping");
    const got = await new Promise<string>((r) => s.once("data", (b: Buffer) => r(String(b))));
    s.destroy();
    return got;
  };

  it("drops garbage, closes a tunnel whose agent ignores the window, and times out an open it never answers", async () => {
    const warnings: string[] = [];
    const good = await TunnelClient.connect({ socketPath: join(dir, "healthy.sock"), token: TOKEN });
    const bad = await TunnelClient.connect({ socketPath: join(dir, "hostile.sock"), token: TOKEN }, { onWarning: (m) => warnings.push(m) });
    const ws = [...wss.clients][0]!;
    for (const g of ["1", "null", '"x"', "{}", '{"rid":77,"ok":true}', '{"rid":1,"ok":"yes"}']) ws.send(g);
    for (const g of [Buffer.alloc(2), encodeFrame(FrameKind.PtyOutput, 1, Buffer.from("x")), encodeFrame(FrameKind.TunnelAck, 5, Buffer.from("odd"))]) ws.send(g);
    await sleep(100);
    expect(bad.isOpen).toBe(true);

    // It accepts the open, then floods the tunnel past its window and sends a malformed ack.
    onRequest = (sock, req) => {
      sock.send(JSON.stringify({ rid: req.rid, ok: true, result: {} }));
      for (let i = 0; i < 64; i++) sock.send(encodeFrame(FrameKind.TunnelData, req.id!, Buffer.alloc(64 * 1024)));
    };
    // (It may all arrive in the same read as the reply: the tunnel can be gone before open() returns.)
    const flooded = await bad.open(80);
    flooded.pause(); // a reader that does not read: all of it would stay in memory
    await until(() => flooded.destroyed);
    expect(flooded.errored?.message).toMatch(/flow control/);
    expect(bad.size).toBe(0);

    onRequest = (sock, req) => {
      sock.send(JSON.stringify({ rid: req.rid, ok: true, result: {} }));
      sock.send(encodeFrame(FrameKind.TunnelAck, req.id!, Buffer.from("bad")));
    };
    const acked = await bad.open(80);
    await until(() => acked.destroyed);
    expect(acked.errored?.message).toMatch(/malformed/);

    onRequest = () => {}; // never answers
    const t0 = Date.now();
    await expect(bad.open(80, 200)).rejects.toMatchObject({ code: "ETIMEDOUT" });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(warnings.length).toBeGreaterThan(0);
    // The honest agent's tunnels never noticed.
    expect(await echoThrough(good)).toBe("ping");
    bad.close();
    good.close();
  });
});

describe("tunnels to a sandbox whose agent is stopped", () => {
  const driver = createNamespacesDriver({ engine: false, uplink: false });
  const id = `t-tstop-${process.pid.toString(36)}`;
  let agentPid = 0;

  beforeAll(async () => {
    await driver.prepare();
    await driver.create({ id, hostname: "tstop" });
    const info = (await driver.list()).find((s) => s.id === id)!;
    const children = readFileSync(`/proc/${info.pid}/task/${info.pid}/children`, "utf8").trim().split(/\s+/).map(Number);
    agentPid = children.find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("/opt/berth/agent.mjs"))!;
  });

  afterAll(async () => {
    if (agentPid) process.kill(agentPid, "SIGCONT");
    await driver.destroy(id);
    await driver.close();
  });

  it("holds at most a window for a tunnel that gets 200 MiB, and opens time out", async () => {
    const agent = await AgentClient.connect(await driver.connect(id));
    // A server in the sandbox that takes any amount of data.
    await agent.request({ op: "exec", cmd: ["/bin/sh", "-c", `node -e 'require("net").createServer((c) => c.resume()).listen(8099)' >/dev/null 2>&1 & sleep 0.5`] });
    agent.close();
    const client = await TunnelClient.connect(await driver.connect(id));
    try {
      const stream = await client.open(8099);
      process.kill(agentPid, "SIGSTOP");
      const rssBefore = process.memoryUsage.rss();
      const chunk = Buffer.alloc(64 * 1024, 0x62);
      let produced = 0;
      const source = new Readable({
        read() {
          if (produced >= 200 * 1024 * 1024) return void this.push(null);
          produced += chunk.length;
          this.push(chunk);
        },
      });
      source.pipe(stream);
      let maxQueued = 0;
      for (let i = 0; i < 20; i++) {
        await sleep(100);
        maxQueued = Math.max(maxQueued, client.queuedBytes);
      }
      // The window holds the writer; the pipe holds the source.
      expect(maxQueued).toBeLessThanOrEqual(TUNNEL_WINDOW + 64 * 1024);
      expect(produced).toBeLessThan(8 * 1024 * 1024);
      expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(64 * 1024 * 1024);
      // A new tunnel cannot open while the agent sleeps: the caller hears so, in bounded time.
      await expect(client.open(8099, 200)).rejects.toMatchObject({ code: "ETIMEDOUT" });
      source.unpipe(stream);
      source.destroy();
      stream.destroy();
    } finally {
      process.kill(agentPid, "SIGCONT");
      client.close();
    }
  });
});
