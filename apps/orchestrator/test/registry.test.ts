// The lab registry's lifecycle in the orchestrator: it starts with Berth on 127.0.0.1 only, serves
// the distribution API from the configured storage, and is gone after close(). A registry that
// cannot start (its port taken) does not keep Berth from starting.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { freshDataDir } from "./fresh-data-dir.js";

const dirs: string[] = [];
const running: Orchestrator[] = [];
function tmp(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  for (const o of running) await o.close().catch(() => {});
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The local addresses listening on `port`, from /proc/net/tcp{,6} (hex, as the kernel writes them). */
function listeners(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const out: string[] = [];
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of fs.readFileSync(f, "utf8").split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === "0A" && cols[1]?.endsWith(`:${hexPort}`)) out.push(cols[1].split(":")[0]!);
    }
  }
  return out;
}

/** An address of this machine that is not loopback, if it has one. */
function outsideAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return undefined;
}

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 2000 });
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
    s.once("timeout", () => (s.destroy(), resolve(false)));
  });
}

describe("the lab registry started by the orchestrator", () => {
  let berth: Orchestrator;
  let root: string;
  // In a hook: the first start of a run may build the sandbox agent's bundle (tens of seconds).
  beforeAll(async () => {
    dirs.push((process.env.BERTH_DATA_DIR = await freshDataDir("berth-reg-data-")));
    root = tmp("berth-reg-root-");
    berth = await startOrchestrator({ port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, instance: `reg${process.pid}`, registry: { enabled: true, root, port: 0 } });
    running.push(berth);
  });

  it("listens on 127.0.0.1 only, serves /v2/ from its storage, and stops with close()", async () => {
    const reg = berth.registry!;
    expect(reg, "the orchestrator should have started a registry").toBeDefined();
    expect(reg.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const v2 = await fetch(`${reg.url}/v2/`);
    expect(v2.status).toBe(200);
    expect(v2.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
    const catalog = await (await fetch(`${reg.url}/v2/_catalog`)).json();
    expect(catalog).toEqual({ repositories: [] });
    expect(fs.existsSync(path.join(root, "data"))).toBe(true);
    // Bound to loopback (0100007F is 127.0.0.1 as /proc/net/tcp writes it), never to every address.
    expect(listeners(reg.port)).toEqual(["0100007F"]);
    const outside = outsideAddress();
    if (outside) expect(await connects(outside, reg.port)).toBe(false);

    await berth.close();
    expect(alive(reg.pid)).toBe(false);
    expect(await connects("127.0.0.1", reg.port)).toBe(false);
  });

  it("starts Berth without a registry when the registry cannot start (its port is taken)", async () => {
    dirs.push((process.env.BERTH_DATA_DIR = await freshDataDir("berth-reg-data-")));
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const berth = await startOrchestrator({ port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, instance: `reg${process.pid}b`, registry: { enabled: true, root: tmp("berth-reg-root-"), port } });
      running.push(berth);
      expect(berth.registry).toBeUndefined();
      expect((await fetch(`${berth.url}/healthz`)).status).toBe(200);
      await berth.close();
    } finally {
      blocker.close();
    }
  });
});
