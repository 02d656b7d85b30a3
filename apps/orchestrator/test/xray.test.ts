// The X-ray feed against a real sandbox with its engine: the owner of a lab's sandbox gets the
// view of their containers pushed (a new container without asking again, then live figures); a
// learner without that sandbox gets nothing of it; a lie from inside the sandbox (a `curl` that
// prints something else) is refused, not forwarded; unwatching stops the feed; source excerpts
// come only from the engine's files.
import { pino } from "pino";
import { EventEmitter } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "@berth/sandbox";
import { sh, testDriver, testId } from "../../../packages/sandbox/test/sandbox-fixture.js";
import { XrayHub, type XraySocket } from "../src/xray/xray-hub.js";
import type { LearnerSandbox } from "../src/sandboxes/sandbox-manager.js";

const driver = testDriver();
const id = testId("xray");
let client: AgentClient;
let hub: XrayHub;
const LAB = "namespaces-by-hand";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A socket as the hub sees one: events in (with an ack), events out (recorded). */
class TestSocket extends EventEmitter implements XraySocket {
  readonly got: { event: string; msg: any }[] = [];
  constructor(readonly id: string) {
    super();
  }
  override emit(event: string, ...args: unknown[]): boolean {
    if (event.startsWith("xray:")) this.got.push({ event, msg: args[0] });
    return super.emit(event, ...args);
  }
  /** The browser's side: send an event and wait for the ack. */
  ask(event: string, msg: unknown): Promise<any> {
    return new Promise((resolve) => this.listeners(event)[0]!(msg, resolve));
  }
  async next(event: string, pred: (msg: any) => boolean = () => true, timeoutMs = 20_000): Promise<any> {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(50)) {
      const hit = this.got.find((g) => g.event === event && pred(g.msg));
      if (hit) return hit.msg;
    }
    throw new Error(`no ${event} in ${timeoutMs} ms; got ${JSON.stringify(this.got.map((g) => [g.event, g.msg?.message]))}`);
  }
}

beforeAll(async () => {
  await driver.prepare();
  await driver.create({ id, hostname: "xray-lab" });
  client = await AgentClient.connect(await driver.connect(id));
  for (const t0 = Date.now(); (await sh(client, "docker version >/dev/null 2>&1")).exitCode !== 0; await sleep(100)) {
    if (Date.now() - t0 > 30_000) throw new Error("the engine did not answer");
  }
  const sandbox = { id, userId: "alice", labId: LAB, agent: client } as unknown as LearnerSandbox;
  hub = new XrayHub({
    // The manager's find(): alice's sandbox for this lab, nobody else's.
    sandboxes: { find: (userId: string, labId: string) => (userId === "alice" && labId === LAB ? sandbox : undefined) },
    catalog: { get: (labId: string) => (labId === LAB || labId === "volumes" ? ({} as never) : undefined) },
    log: pino({ level: "silent" }),
  });
}, 120_000);

afterAll(async () => {
  hub?.dispose();
  client?.close();
  await driver.destroy(id);
}, 60_000);

describe("the X-ray feed", () => {
  it("pushes the owner's containers, then live figures; nothing to another learner", async () => {
    const alice = new TestSocket("a1");
    const mallory = new TestSocket("m1");
    hub.attach(alice, "alice");
    hub.attach(mallory, "mallory");
    expect(await alice.ask("xray:watch", { labId: "no-such-lab" })).toEqual({ ok: false, error: "no such lab" });
    const ack = await alice.ask("xray:watch", { labId: LAB });
    expect(ack.ok).toBe(true);
    expect(ack.chapters.volumes.labId).toBe("volumes");
    expect(ack.chapters["cgroup:memory"]).toBeUndefined(); // its lab is not in this catalog
    expect((await mallory.ask("xray:watch", { labId: LAB })).ok).toBe(true);

    const first = await alice.next("xray:view");
    expect(first.view.engine.namespaces.length).toBeGreaterThan(3);
    await sh(client, "docker run -d --name xr --memory 40m busybox sleep 300 >/dev/null");
    const view = await alice.next("xray:view", (m) => m.view.containers.some((c: any) => c.name === "xr" && c.state.running));
    const c = view.view.containers.find((x: any) => x.name === "xr");
    expect(c.live.memory.limit).toBe(40 * 1024 * 1024);
    expect(c.recipe.namespaces.find((n: any) => n.type === "pid").shared).toBe(false);
    // Every shim step has a link into shim.c with a line range.
    const link = view.links[`packages/engine/src/runtime/shim.c#${c.recipe.namespaces[0].source.line}`];
    expect(link).toMatchObject({ path: "packages/engine/src/runtime/shim.c" });
    expect(link.to).toBeGreaterThanOrEqual(link.from);
    // Sections no single report names link to the code that makes them.
    for (const section of ["layers", "upper", "volumes", "ports", "networks", "user", "capabilities", "live"]) {
      expect(view.links[`section:${section}`], section).toMatchObject({ path: expect.stringMatching(/^packages\/engine\/src\//) });
    }
    const live = await alice.next("xray:live", (m) => m.containers[c.id]?.live);
    expect(live.containers[c.id].live.memory.limit).toBe(40 * 1024 * 1024);

    // Mallory asked for the same lab: no sandbox of hers, so only a status, never alice's view.
    await mallory.next("xray:status");
    expect(mallory.got.filter((g) => g.event !== "xray:status")).toEqual([]);
    mallory.emit("disconnect");
    alice.emit("xray:unwatch", { labId: LAB });
    alice.emit("disconnect");
  }, 120_000);

  it("refuses a lying sandbox's answer and stops when nobody watches", async () => {
    // Root in the sandbox replaces curl: the hub is told "not understood", the browser gets no view.
    await sh(client, `mkdir -p /usr/local/bin && printf '#!/bin/sh\\necho "{\\\\"seq\\\\": 9, \\\\"engine\\\\": {\\\\"pid\\\\": 1, \\\\"namespaces\\\\": []}, \\\\"containers\\\\": [{\\\\"id\\\\": \\\\"../../etc\\\\"}]}"\\n' > /usr/local/bin/curl && chmod +x /usr/local/bin/curl`);
    try {
      const alice = new TestSocket("a2");
      hub.attach(alice, "alice");
      await alice.ask("xray:watch", { labId: LAB });
      const status = await alice.next("xray:status", (m) => /not understood/.test(m.message));
      expect(status.message).toContain("containers.0.id");
      expect(alice.got.filter((g) => g.event === "xray:view")).toEqual([]);
      alice.emit("disconnect");
    } finally {
      await sh(client, "rm -f /usr/local/bin/curl");
    }
    // Nobody watches now: within a poll the loop is gone (no feed left to ask the agent).
    await expect.poll(() => (hub as unknown as { feeds: Map<string, unknown> }).feeds.size, { timeout: 2500, interval: 50 }).toBe(0);
  }, 60_000);

  it("serves source excerpts of the engine only", async () => {
    const s = new TestSocket("s1");
    hub.attach(s, "alice");
    const ok = await s.ask("xray:source", { path: "packages/engine/src/runtime/shim.c", from: 2, to: 4 });
    expect(ok.ok).toBe(true);
    expect(ok.excerpt.lines.join("\n")).toContain("berth-shim");
    for (const path of ["../../etc/passwd", "/etc/passwd", "packages/engine/../../apps/orchestrator/src/config.ts", "apps/orchestrator/src/config.ts", "packages/engine/src/missing.ts"]) {
      expect(await s.ask("xray:source", { path, from: 1, to: 2 }), path).toEqual({ ok: false, error: "no such source" });
    }
    expect(await s.ask("xray:source", { path: "packages/engine/src/runtime/shim.c", from: 5, to: 1 })).toEqual({ ok: false, error: "no such source" });
  });
});
