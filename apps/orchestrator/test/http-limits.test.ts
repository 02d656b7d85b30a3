// Slow and greedy clients against a real orchestrator: half-sent requests are answered 408 and
// closed within the timeouts, one address cannot hold more than its share of connections or
// sockets, and another address is served meanwhile (127.0.0.2 and 127.0.0.3: loopback addresses
// other than the machine's own 127.0.0.1).
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { io as connectSocket, type Socket } from "socket.io-client";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

let berth: Orchestrator;
let port = 0;
const HEADERS_MS = 2_000;
const REQUEST_MS = 3_000;
const MAX_CONNECTIONS = 60;
const MAX_SOCKETS = 3;

beforeAll(async () => {
  process.env.BERTH_DATA_DIR = await freshDataDir("berth-http-");
  berth = await startOrchestrator({
    port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, registry: { enabled: false, root: "", port: 0 },
    instance: `http${process.pid}`,
    http: { headersTimeoutMs: HEADERS_MS, requestTimeoutMs: REQUEST_MS, keepAliveTimeoutMs: 1_000, maxConnectionsPerIp: MAX_CONNECTIONS, maxSocketsPerIp: MAX_SOCKETS, trustProxy: false },
  });
  port = Number(new URL(berth.url).port);
});
afterAll(async () => {
  await berth?.close();
});

/** A raw connection from `from` that writes `payload` and then says nothing more. */
function halfSent(payload: string, from = "127.0.0.1"): Promise<{ socket: net.Socket; closed: Promise<{ afterMs: number; answer: string }> }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let answer = "";
    const socket = net.connect({ port, host: "127.0.0.1", localAddress: from }, () => {
      socket.write(payload);
      resolve({ socket, closed });
    });
    const closed = new Promise<{ afterMs: number; answer: string }>((done) => socket.on("close", () => done({ afterMs: Date.now() - t0, answer })));
    socket.on("data", (d) => (answer += d.toString("latin1")));
    socket.once("error", (err) => (socket.connecting ? reject(err) : undefined));
  });
}

async function healthzFrom(from: string): Promise<string> {
  const { socket, closed } = await halfSent("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", from);
  const { answer } = await closed;
  socket.destroy();
  return answer.split("\r\n")[0]!;
}

describe("slow clients", () => {
  it("closes 50 half-sent requests (headers or body unfinished) within the timeouts, with a 408", async () => {
    const payloads = [
      "", // connected, nothing sent
      "GET /api/labs HTTP/1.1\r\nHost: x\r\n", // headers never finish
      "POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":", // body never finishes
    ];
    const conns = await Promise.all(Array.from({ length: 50 }, (_, i) => halfSent(payloads[i % payloads.length]!)));
    const results = await Promise.all(conns.map((c) => c.closed));
    // Closed by the server (the test never closes them) within the request timeout plus Node's
    // 1 s check interval and slack for a busy machine.
    for (const r of results) {
      expect(r.afterMs).toBeLessThan(REQUEST_MS + 5_000);
    }
    expect(results.filter((r) => r.answer.startsWith("HTTP/1.1 408")).length).toBe(50);
  });

  it("refuses connections past the per-address cap with a 503, while another address is served", async () => {
    // 127.0.0.2 is the greedy client. (127.0.0.1 is this machine itself, which the cap leaves out:
    // the web app's server-side renders call the API from there.)
    const held = await Promise.all(Array.from({ length: MAX_CONNECTIONS }, () => halfSent("GET / HTTP/1.1\r\n", "127.0.0.2")));
    try {
      const { closed } = await halfSent("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "127.0.0.2");
      const refused = await closed;
      expect(refused.answer).toMatch(/^HTTP\/1\.1 503 [^]*too many open connections/);
      expect(await healthzFrom("127.0.0.3")).toBe("HTTP/1.1 200 OK");
      expect(await healthzFrom("127.0.0.1")).toBe("HTTP/1.1 200 OK");
    } finally {
      for (const c of held) c.socket.destroy();
    }
    // Once they are gone, the greedy address is served again.
    await expect.poll(() => healthzFrom("127.0.0.2"), { timeout: 5_000 }).toBe("HTTP/1.1 200 OK");
  });

  it("leaves this machine's own loopback address uncapped (server-side renders call the API from it)", async () => {
    const held = await Promise.all(Array.from({ length: MAX_CONNECTIONS + 5 }, () => halfSent("GET / HTTP/1.1\r\n")));
    try {
      expect(await healthzFrom("127.0.0.1")).toBe("HTTP/1.1 200 OK");
    } finally {
      for (const c of held) c.socket.destroy();
    }
  });

  it("a request that arrived in time is not cut while it is answered (the timers are about receiving)", async () => {
    // A sign-in costs a scrypt (~50 ms+); sending the whole body slowly but within the timeout works.
    const body = JSON.stringify({ email: "nobody@example.org", password: "not the password" });
    const { socket, closed } = await halfSent(`POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
    await new Promise((r) => setTimeout(r, 1_000));
    socket.write(body.slice(5));
    expect((await closed).answer.split("\r\n")[0]).toBe("HTTP/1.1 401 Unauthorized");
  });
});

describe("socket.io connections per address", () => {
  it(`allows ${MAX_SOCKETS} live sockets per address, refuses the next with a message, and serves another address`, async () => {
    const { cookie } = await signUp(berth.url, "sockets");
    const open = (localAddress: string) =>
      new Promise<{ socket: Socket; error?: Error }>((resolve) => {
        const socket = connectSocket(berth.url, { transports: ["websocket"], extraHeaders: { cookie }, reconnection: false, localAddress } as never);
        socket.on("connect", () => resolve({ socket }));
        socket.on("connect_error", (error) => resolve({ socket, error }));
      });
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < MAX_SOCKETS; i++) {
        const s = await open("127.0.0.1");
        sockets.push(s.socket);
        expect(s.error).toBeUndefined();
      }
      const refused = await open("127.0.0.1");
      sockets.push(refused.socket);
      expect(refused.error?.message).toMatch(/too many live connections from your address/);
      const other = await open("127.0.0.2");
      sockets.push(other.socket);
      expect(other.error).toBeUndefined();
      // A closed socket frees its place.
      sockets[0]!.close();
      await expect.poll(async () => {
        const again = await open("127.0.0.1");
        sockets.push(again.socket);
        return again.error?.message ?? "connected";
      }, { timeout: 5_000 }).toBe("connected");
    } finally {
      for (const s of sockets) s.close();
    }
  });
});
