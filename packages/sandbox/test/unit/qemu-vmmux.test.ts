// berth-vmmux's host end against a guest that plays by no rules: the test is QEMU's chardev (the
// link) and the guest behind it, sending frames by hand; the real binary (compiled as the driver
// compiles it) is the host end. What the guest may open is one kind of channel, to one socket: its
// own sandbox's registry gateway. No root, no VM: seconds.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { buildMux } from "../../src/qemu/driver.js";

const F_OPEN = 1;
const F_DATA = 2;
const F_CLOSE = 3;
const GUEST = 0x80000000;

const dir = mkdtempSync(join(tmpdir(), "berth-vmmux-"));
const mux = buildMux(join(dir, "bin"));
const running: ChildProcess[] = [];

afterEach(() => {
  for (const c of running.splice(0)) c.kill("SIGKILL");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function frame(id: number, type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const data = Buffer.from(payload);
  const h = Buffer.alloc(9);
  h.writeUInt32BE(id >>> 0, 0);
  h[4] = type;
  h.writeUInt32BE(data.length, 5);
  return Buffer.concat([h, data]);
}

interface Frame {
  id: number;
  type: number;
  data: Buffer;
}

/** The guest's side of the link: frames as they arrive, and a way to wait for one. */
class FakeGuest {
  frames: Frame[] = [];
  private buf = Buffer.alloc(0);
  constructor(readonly link: Socket) {
    link.on("data", (b: Buffer) => {
      this.buf = Buffer.concat([this.buf, b]);
      while (this.buf.length >= 9 && this.buf.length >= 9 + this.buf.readUInt32BE(5)) {
        const len = this.buf.readUInt32BE(5);
        this.frames.push({ id: this.buf.readUInt32BE(0), type: this.buf[4], data: this.buf.subarray(9, 9 + len) });
        this.buf = this.buf.subarray(9 + len);
      }
    });
  }
  send(id: number, type: number, payload?: Buffer | string): void {
    this.link.write(frame(id, type, payload));
  }
  async waitFor(test: (f: Frame) => boolean, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find(test);
      if (f) return f;
      if (Date.now() > deadline) throw new Error(`no such frame; got ${JSON.stringify(this.frames.map((x) => [x.id, x.type, x.data.toString()]))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** A host mux with a fake link, a fake registry gateway (when `registry`), and the guest's end. */
async function start(name: string, registry: boolean) {
  const link = join(dir, `${name}-link.sock`);
  const reg = join(dir, `${name}-reg.sock`);
  const linkServer = createServer();
  await new Promise<void>((r) => linkServer.listen(link, r));
  const gatewayConns: Socket[] = [];
  let gateway: Server | undefined;
  if (registry) {
    gateway = createServer((s) => {
      gatewayConns.push(s);
      s.on("data", (b) => s.write(`gateway got ${b}`));
    });
    await new Promise<void>((r) => gateway!.listen(reg, r));
  }
  const accepted = new Promise<Socket>((r) => linkServer.once("connection", r));
  const args = ["host", link, join(dir, `${name}-agent.sock`), join(dir, `${name}-ctl.sock`), ...(registry ? [reg] : [])];
  const child = spawn(mux, args, { stdio: ["ignore", "ignore", "pipe"] });
  running.push(child);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const guest = new FakeGuest(await accepted);
  // The host mux listens once it has the link (its socket files appear; connecting would open a channel).
  for (let i = 0; i < 200 && !existsSync(join(dir, `${name}-ctl.sock`)); i++) await new Promise((r) => setTimeout(r, 20));
  return {
    guest,
    gatewayConns,
    exited,
    agentSock: join(dir, `${name}-agent.sock`),
    close: () => {
      linkServer.close();
      gateway?.close();
    },
  };
}

describe("berth-vmmux, host end: what a guest may open", () => {
  it("a registry channel the guest opens reaches this sandbox's gateway, both ways", async () => {
    const h = await start("r1", true);
    try {
      h.guest.send(GUEST | 1, F_OPEN, "r");
      h.guest.send(GUEST | 1, F_DATA, "GET /v2/");
      const back = await h.guest.waitFor((f) => f.id === (GUEST | 1) >>> 0 && f.type === F_DATA);
      expect(back.data.toString()).toBe("gateway got GET /v2/");
      expect(h.gatewayConns).toHaveLength(1);
      // The gateway ending the connection closes the channel in the guest.
      h.gatewayConns[0].end();
      await h.guest.waitFor((f) => f.id === (GUEST | 1) >>> 0 && f.type === F_CLOSE);
    } finally {
      h.close();
    }
  });

  it("refuses every other open: a host-range id, the agent's or control's kind, a path, a second open of a live id", async () => {
    const h = await start("r2", true);
    try {
      h.guest.send(7, F_OPEN, "r");
      h.guest.send(GUEST | 2, F_OPEN, "a");
      h.guest.send(GUEST | 3, F_OPEN, "c");
      h.guest.send(GUEST | 4, F_OPEN, "/etc/shadow");
      for (const id of [7, GUEST | 2, GUEST | 3, GUEST | 4]) await h.guest.waitFor((f) => f.id === id >>> 0 && f.type === F_CLOSE);
      // Data for a channel that does not exist goes nowhere.
      h.guest.send(GUEST | 2, F_DATA, "anyone?");
      h.guest.send(GUEST | 5, F_OPEN, "r");
      h.guest.send(GUEST | 5, F_OPEN, "r");
      h.guest.send(GUEST | 5, F_DATA, "once");
      await h.guest.waitFor((f) => f.id === (GUEST | 5) >>> 0 && f.type === F_DATA);
      await new Promise((r) => setTimeout(r, 200));
      expect(h.gatewayConns).toHaveLength(1);
      expect(h.guest.frames.filter((f) => f.id === (GUEST | 5) >>> 0 && f.type === F_CLOSE)).toHaveLength(0);
    } finally {
      h.close();
    }
  });

  it("at most 64 registry channels at a time; closing one makes room", async () => {
    const h = await start("r3", true);
    try {
      for (let i = 1; i <= 70; i++) h.guest.send(GUEST | (100 + i), F_OPEN, "r");
      await h.guest.waitFor((f) => f.id === (GUEST | 170) >>> 0 && f.type === F_CLOSE);
      const refused = h.guest.frames.filter((f) => f.type === F_CLOSE && f.id >= GUEST).map((f) => f.id - GUEST);
      expect(refused).toEqual([165, 166, 167, 168, 169, 170]);
      for (let i = 0; i < 300 && h.gatewayConns.length < 64; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 100));
      expect(h.gatewayConns).toHaveLength(64);
      h.guest.send(GUEST | 101, F_CLOSE);
      h.guest.send(GUEST | 200, F_OPEN, "r");
      h.guest.send(GUEST | 200, F_DATA, "room");
      await h.guest.waitFor((f) => f.id === (GUEST | 200) >>> 0 && f.type === F_DATA);
    } finally {
      h.close();
    }
  });

  it("without a gateway the guest can open nothing; host channels still work; a malformed frame ends the link", async () => {
    const h = await start("r4", false);
    try {
      h.guest.send(GUEST | 1, F_OPEN, "r");
      await h.guest.waitFor((f) => f.id === (GUEST | 1) >>> 0 && f.type === F_CLOSE);
      // The host opens channels below 2^31 for the agent's clients.
      const client = connect(h.agentSock);
      const open = await h.guest.waitFor((f) => f.type === F_OPEN);
      expect(open.data.toString()).toBe("a");
      expect(open.id).toBeLessThan(GUEST);
      client.destroy();
      // A frame type that does not exist: the host trusts nothing more on this link.
      h.guest.link.write(Buffer.from([0, 0, 0, 1, 9, 0, 0, 0, 0]));
      expect(await h.exited).toBe(1);
    } finally {
      h.close();
    }
  });
});
