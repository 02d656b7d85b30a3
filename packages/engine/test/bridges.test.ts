/**
 * Engines sharing one host (here: one network namespace) leave each other's bridges and iptables
 * chains alone. Each engine tags the bridges it makes with its owner (the link's alias); a bridge
 * with another tag, or none, is refused and never removed, and an engine's chains are named after
 * its own default bridge. Also: the reference dockerd of the tests never starts in this process's
 * namespace (a dockerd with --bridge=none deletes the namespace's docker0).
 */
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker, makeNetns, startBerthInNetns, startDockerd, type Daemon } from "./harness";

type Engine = Daemon & { root: string };

describe("two engines on one host", () => {
  const netns = makeNetns("berthb");
  let a: Engine | undefined;
  const started: Engine[] = [];

  const links = () => netns.exec(["ip", "-o", "link", "show", "type", "bridge"]).stdout;
  const chains = () => netns.exec(["iptables", "-w", "-S"]).stdout + netns.exec(["iptables", "-w", "-t", "nat", "-S"]).stdout;
  const start = async (args: string[] = []) => {
    const e = await startBerthInNetns({ netns, args });
    started.push(e);
    return e;
  };

  beforeAll(async () => {
    a = await start();
    const r = await docker(a, ["run", "--rm", "busybox", "true"]);
    expect(r.stderr).toBe("");
  }, 60_000);

  afterAll(async () => {
    for (const e of started.reverse()) await e.stop().catch(() => {});
    netns.remove();
  });

  it("tags the bridge it makes with its owner", () => {
    const alias = netns.exec(["ip", "-j", "link", "show", "dev", "berth0"]).stdout;
    expect(JSON.parse(alias)[0].ifalias).toBe(`berth-engine:${a!.root}/state`);
    expect(chains()).toMatch(/-A FORWARD -j BERTH-FWD-BERTH0/);
  });

  it("a second engine with the same bridge name refuses it, and leaves it when it stops", async () => {
    const b = await start();
    const run = await docker(b, ["run", "--rm", "busybox", "true"]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/the bridge berth0 exists and was not made by this engine \(its owner: berth-engine:.*\): another engine or program uses it/);
    // Without a network it runs, and a user network (which would need the chains) is refused.
    expect((await docker(b, ["run", "--rm", "--network", "none", "busybox", "true"])).code).toBe(0);
    expect((await docker(b, ["network", "create", "bnet"])).code).not.toBe(0);
    expect((await docker(b, ["network", "ls", "--format", "{{.Name}}"])).stdout.split("\n")).not.toContain("bnet");
    await b.stop();
    started.splice(started.indexOf(b), 1);
    expect(links()).toMatch(/: berth0:/);
    expect(chains()).toMatch(/-A FORWARD -j BERTH-FWD-BERTH0/);
    const again = await docker(a!, ["run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"]);
    expect(again.stdout).toMatch(/inet 172\.17\.0\.\d+\/16/);
  }, 90_000);

  it("an engine with its own bridge removes exactly what it made", async () => {
    const c = await start(["--bridge", "berthc0", "--bridge-subnet", "172.29.0.0/16"]);
    expect((await docker(c, ["run", "--rm", "busybox", "true"])).stderr).toBe("");
    expect((await docker(c, ["network", "create", "cnet"])).code).toBe(0);
    const id = (await docker(c, ["network", "inspect", "-f", "{{.Id}}", "cnet"])).stdout.trim().slice(0, 12);
    expect((await docker(c, ["run", "--rm", "--network", "cnet", "busybox", "true"])).code).toBe(0);
    expect(links()).toMatch(/: berthc0:/);
    expect(links()).toContain(`br-${id}`);
    expect(chains()).toMatch(/BERTH-FWD-BERTHC0/);
    await c.stop();
    started.splice(started.indexOf(c), 1);
    expect(links()).not.toMatch(/berthc0|br-/);
    expect(chains()).not.toMatch(/BERTHC0/);
    // The first engine's bridge, chains and containers are untouched.
    expect(links()).toMatch(/: berth0:/);
    expect(chains()).toMatch(/-A FORWARD -j BERTH-FWD-BERTH0/);
    expect((await docker(a!, ["run", "--rm", "busybox", "true"])).code).toBe(0);
  }, 90_000);

  it("a bridge made by someone else is neither used nor removed", async () => {
    netns.exec(["ip", "link", "add", "name", "berthx0", "type", "bridge"]);
    const d = await start(["--bridge", "berthx0", "--bridge-subnet", "172.28.0.0/16"]);
    const run = await docker(d, ["run", "--rm", "busybox", "true"]);
    expect(run.stderr).toMatch(/the bridge berthx0 exists and was not made by this engine \(it has no owner tag\)/);
    await d.stop();
    started.splice(started.indexOf(d), 1);
    expect(links()).toMatch(/: berthx0:/);
    expect(chains()).not.toMatch(/BERTHX0/);
  }, 60_000);

  it("the first engine, stopped, takes its own bridge and chains away", async () => {
    await a!.stop();
    started.splice(started.indexOf(a!), 1);
    expect(links()).not.toMatch(/: berth0:/);
    expect(chains()).not.toMatch(/BERTH0/);
  }, 60_000);
});

describe("the reference dockerd of the tests", () => {
  let d: Awaited<ReturnType<typeof startDockerd>> | undefined;
  afterAll(async () => {
    await d?.stop();
  });

  it("runs in a network namespace of its own, never this process's", async () => {
    d = await startDockerd();
    expect(fs.readlinkSync(`/proc/${d.pid}/ns/net`)).not.toBe(fs.readlinkSync("/proc/self/ns/net"));
    expect((await docker(d, ["run", "--rm", "busybox", "true"])).code).toBe(0);
  }, 60_000);
});
