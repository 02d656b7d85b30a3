// The namespaces driver's lifecycle on real runc, overlayfs and cgroups: create, health, hostname,
// stats, the cgroup a learner can use, and a destroy that leaves nothing behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { AgentClient } from "../src/index.js";
import { SandboxCgroup } from "../src/namespaces/cgroups.js";
import { hostMounts, sandboxRss, sh, terminal, testDriver, testId } from "./sandbox-fixture.js";

const driver = testDriver();

/** Not running: gone, or a zombie the host's init has yet to reap. */
function isRunning(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("Z");
  } catch {
    return false;
  }
}
const id = testId("drv");
let client: AgentClient;
let createMs = 0;

beforeAll(async () => {
  await driver.prepare((line) => console.log(line));
  const t0 = Date.now();
  const info = await driver.create({ id, hostname: "lab-alpha", limits: { memoryBytes: 256 * 1024 * 1024, pids: 128 } });
  createMs = Date.now() - t0;
  expect(info).toMatchObject({ id, hostname: "lab-alpha", state: "running" });
  client = await AgentClient.connect(await driver.connect(id));
});

afterAll(async () => {
  client?.close();
  await driver.destroy(id);
});

describe("namespaces driver", () => {
  it("creates a sandbox whose agent answers health, with the spec's hostname", async () => {
    console.log(`create() cold: ${createMs} ms`);
    expect(createMs).toBeLessThan(10_000);
    const health = await client.request({ op: "health" });
    expect(health.hostname).toBe("lab-alpha");
    const r = await sh(client, "hostname; cat /etc/hostname; id -u; echo $HOME");
    expect(r.stdout).toBe("lab-alpha\nlab-alpha\n0\n/root\n");
  });

  it("gives a login shell with the prompt user@host:cwd", async () => {
    const pty = await client.request({ op: "pty.start", key: "main", cols: 80, rows: 24 });
    const term = terminal(client, pty.handle);
    await term.waitFor(/root@lab-alpha.*:.*~.*# /);
    term.dispose();
  });

  it("reports stats from the sandbox's cgroup, and lists it", async () => {
    const stats = await driver.stats(id);
    expect(stats.memoryBytes).toBeGreaterThan(1024 * 1024);
    expect(stats.pids).toBeGreaterThanOrEqual(2);
    expect(stats.cpuUsageNs).toBeGreaterThan(0);
    const listed = (await driver.list()).find((s) => s.id === id);
    expect(listed).toMatchObject({ state: "running", hostname: "lab-alpha" });
    expect(listed!.pid).toBeGreaterThan(1);

    // Measured for the report: every process of an idle sandbox with one shell (tini, agent, bash).
    const cg = new SandboxCgroup(id);
    const procs = cg.version === 1 ? join("/sys/fs/cgroup/pids", cg.boxPath, "cgroup.procs") : join("/sys/fs/cgroup", cg.boxPath, "cgroup.procs");
    const pids = readFileSync(procs, "utf8").trim().split("\n").map(Number);
    const rss = sandboxRss(pids);
    console.log(`idle sandbox: ${pids.length} processes, RSS ${(rss / 1048576).toFixed(1)} MiB, cgroup memory ${(stats.memoryBytes / 1048576).toFixed(1)} MiB`);
    expect(rss).toBeLessThan(200 * 1024 * 1024);
  });

  it("shows the limits from inside, and lets the learner make a child memory cgroup and move a shell into it", async () => {
    const r = await sh(
      client,
      [
        "set -e",
        "cat /proc/self/cgroup | grep memory",
        "mkdir /sys/fs/cgroup/memory/demo",
        "echo 50000000 > /sys/fs/cgroup/memory/demo/memory.limit_in_bytes",
        "echo $$ > /sys/fs/cgroup/memory/demo/cgroup.procs",
        "grep memory /proc/self/cgroup",
        "echo $$ > /sys/fs/cgroup/memory/cgroup.procs",
        "rmdir /sys/fs/cgroup/memory/demo",
        "mkdir /sys/fs/cgroup/pids/p1 && rmdir /sys/fs/cgroup/pids/p1 && echo pids-ok",
      ].join("\n"),
    );
    if (new SandboxCgroup(id).version === 2) return; // the v1 file names above; v2 is not testable on this host
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("4:memory:/\n4:memory:/demo\npids-ok\n".replace(/^4/gm, r.stdout.split(":")[0]!));
  });

  it("lets the learner unshare namespaces, including a nested user namespace with its own /proc", async () => {
    const r = await sh(client, "unshare --pid --fork --mount-proc --uts --ipc --net --mount bash -c 'hostname inner && hostname && ps -e --no-headers | wc -l'; unshare --user --map-root-user --pid --fork --mount-proc bash -c 'id -u; ps -e --no-headers | wc -l'");
    expect(r.stderr).toBe("");
    // In each new pid namespace: bash as PID 1, then ps and wc of the pipeline. Nothing else.
    expect(r.stdout).toBe("inner\n3\n0\n3\n");
  });

  it("reaps orphans (tini is PID 1): no zombies pile up", async () => {
    const r = await sh(client, "for i in 1 2 3 4 5; do (sleep 0.1 &); done; sleep 0.5; ps -eo stat= | grep -c '^Z'; cat /proc/1/comm");
    expect(r.stdout).toBe("0\ntini\n");
  });

  it("has loopback and its uplink eth0 only, with a default route to the host end (egress: uplink.test.ts)", async () => {
    const up = (await driver.uplinkOf(id))!;
    const r = await sh(client, "ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1; ip route show default");
    expect(r.stdout).toBe(`lo\neth0\ndefault via ${up.gateway} dev eth0 \n`);
  });

  it("has its own network stack to build on: bridge, veth, forwarding and iptables NAT", async () => {
    const r = await sh(
      client,
      "ip link add br0 type bridge && ip link add v0 type veth peer name v1 && ip link set v0 master br0 && echo 1 > /proc/sys/net/ipv4/ip_forward && iptables -t nat -A POSTROUTING -s 10.88.0.0/16 -j MASQUERADE && iptables -t nat -S POSTROUTING | tail -1; ip link del br0; ip link del v0",
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("-A POSTROUTING -s 10.88.0.0/16 -j MASQUERADE\n");
  });

  it("destroy removes the processes, mounts, cgroups and state, and is idempotent", async () => {
    const tmp = testId("gone");
    const info = await driver.create({ id: tmp, hostname: "gone" });
    const dir = driver.sandboxDir(tmp);
    const c = await AgentClient.connect(await driver.connect(tmp));
    await sh(c, "mkdir /sys/fs/cgroup/memory/learner-made /sys/fs/cgroup/pids/learner-made 2>/dev/null; sleep 1000 & disown; true");
    c.close();
    expect(hostMounts()).toContain(dir);
    const cg = new SandboxCgroup(tmp);
    expect(cg.existingDirs().length).toBeGreaterThan(0);

    await driver.destroy(tmp);
    expect(hostMounts()).not.toContain(dir);
    expect(cg.existingDirs()).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect(isRunning(info.pid!)).toBe(false);
    expect((await driver.list()).some((s) => s.id === tmp)).toBe(false);
    await driver.destroy(tmp);
    await expect(driver.connect(tmp)).rejects.toThrow(/no sandbox/);
  });

  it("stop() ends the sandbox but keeps it listed until destroy()", async () => {
    const tmp = testId("stop");
    await driver.create({ id: tmp, hostname: "stopper" });
    await driver.stop(tmp);
    expect((await driver.list()).find((s) => s.id === tmp)?.state).toBe("stopped");
    await expect(AgentClient.connect(await driver.connect(tmp), { timeoutMs: 1000 })).rejects.toThrow(/could not connect/);
    await driver.stop(tmp); // again: nothing to do
    await driver.destroy(tmp);
    expect(existsSync(driver.sandboxDir(tmp))).toBe(false);
    expect(new SandboxCgroup(tmp).existingDirs()).toEqual([]);
  });

  it("destroy still cleans up when runc has lost its state (as after a reboot or a wiped runc root)", async () => {
    const tmp = testId("lost");
    const info = await driver.create({ id: tmp, hostname: "lost" });
    rmSync(join(driver.stateDir, "runc", tmp), { recursive: true, force: true });
    expect((await driver.list()).find((s) => s.id === tmp)?.state).toBe("missing");
    await driver.destroy(tmp);
    expect(isRunning(info.pid!)).toBe(false);
    expect(new SandboxCgroup(tmp).existingDirs()).toEqual([]);
    expect(hostMounts()).not.toContain(driver.sandboxDir(tmp));
  });

  it("refuses bad ids and hostnames with a message that says what to use", async () => {
    await expect(driver.create({ id: "../etc", hostname: "x" })).rejects.toThrow(/invalid sandbox id/);
    await expect(driver.create({ id: testId("bad"), hostname: "no spaces" })).rejects.toThrow(/invalid hostname/);
    await expect(driver.create({ id, hostname: "again" })).rejects.toThrow(/already exists/);
    await expect(driver.create({ id: testId("lim"), hostname: "x", limits: { memoryBytes: 1000 } })).rejects.toThrow(/invalid limits/);
    // The failed create of an existing id left the existing sandbox alone.
    expect((await client.request({ op: "health" })).hostname).toBe("lab-alpha");
  });
});
