// The agent client's handshake timeout, stretched by the endpoint's timeScale: a driver whose
// sandboxes answer slowly (a VM under emulation) says so in connect()'s endpoint, and every dial
// (the orchestrator's, labkit's, the preview's tunnels) waits that much longer without knowing why.
// A real websocket server on a UNIX socket that holds each upgrade back for a while.
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { AgentClient, MAX_STRETCHED_TIMEOUT_MS, stretchedTimeout } from "../../src/client.js";

const UPGRADE_DELAY_MS = 600;
let dir: string;
let server: Server;
let socketPath: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "berth-client-scale-"));
  socketPath = join(dir, "agent.sock");
  const wss = new WebSocketServer({ noServer: true });
  server = createServer();
  server.on("upgrade", (req, socket, head) => {
    // A slow guest: the connection is accepted at once, the upgrade answered much later.
    setTimeout(() => {
      if (socket.destroyed) return;
      wss.handleUpgrade(req, socket, head, (ws) => ws.on("error", () => {}));
    }, UPGRADE_DELAY_MS);
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe("the handshake timeout and the endpoint's timeScale", () => {
  it("stretches a timeout by the scale, never shrinks it, and caps it", () => {
    expect(stretchedTimeout({}, 5000)).toBe(5000);
    expect(stretchedTimeout({ timeScale: 10 }, 5000)).toBe(50_000);
    expect(stretchedTimeout({ timeScale: 0.1 }, 5000)).toBe(5000);
    expect(stretchedTimeout({ timeScale: Number.NaN }, 5000)).toBe(5000);
    expect(stretchedTimeout({ timeScale: 1e9 }, 5000)).toBe(MAX_STRETCHED_TIMEOUT_MS);
  });

  it("a timeout the slow agent misses without a scale is met with one, for the same caller's options", async () => {
    const started = Date.now();
    await expect(AgentClient.connect({ socketPath, token: "t" }, { timeoutMs: 200 })).rejects.toThrow(/timed out|Opening handshake/i);
    expect(Date.now() - started).toBeLessThan(UPGRADE_DELAY_MS);
    const client = await AgentClient.connect({ socketPath, token: "t", timeScale: 10 }, { timeoutMs: 200 });
    expect(client.isOpen).toBe(true);
    client.close();
  });
});
