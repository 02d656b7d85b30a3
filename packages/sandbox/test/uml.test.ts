// The uml driver's own promises, beyond the shared suites: the guest is a cgroup-v2-only machine
// with the sandbox's limits on the learner's cgroup; the learner cannot load kernel modules; and
// the guest kernel process itself is confined on the host (unprivileged uid, no capability but
// CAP_NET_RAW, its own namespaces, a jail as its whole view of the host, a host cgroup).
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AgentClient, createUmlDriver, detectCgroupVersion } from "../src/index.js";
import { UML_HOST_UID_BASE } from "../src/uml/driver.js";
import { sh, testId } from "./sandbox-fixture.js";

vi.setConfig({ testTimeout: 300_000, hookTimeout: 600_000 });

const driver = createUmlDriver();
const id = testId("uml");
const MEMORY = 160 * 1024 * 1024;
let client: AgentClient;

beforeAll(async () => {
  await driver.prepare();
  await driver.create({ id, hostname: "umlbox", limits: { memoryBytes: MEMORY, pids: 128 } });
  client = await AgentClient.connect(await driver.connect(id));
});

afterAll(async () => {
  client?.close();
  await driver.destroy(id);
  await driver.close();
});

/** A file of the sandbox's host cgroup (berth/<id>), on a v1 (per controller) or v2 host. */
function hostCgroup(controller: string, file: string): string {
  return detectCgroupVersion() === 2 ? join("/sys/fs/cgroup/berth", id, file) : join("/sys/fs/cgroup", controller, "berth", id, file);
}

/** Host pids of the guest kernel's processes (everything of the sandbox's host cgroup but root's). */
function guestHostPids(): number[] {
  const procs = readFileSync(hostCgroup("pids", "box/cgroup.procs"), "utf8").trim().split("\n").map(Number);
  return procs.filter((pid) => {
    try {
      return /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] !== "0";
    } catch {
      return false;
    }
  });
}

describe("uml: inside the guest", () => {
  it("is a cgroup v2 machine: one unified hierarchy, no v1 to mount, the sandbox's limits on the learner's cgroup", async () => {
    const r = await sh(client, "grep -c ' cgroup ' /proc/mounts; grep -c ' cgroup2 ' /proc/mounts; mount -t cgroup -o memory none /mnt 2>/dev/null; echo v1=$?; cat /sys/fs/cgroup/cgroup.controllers; grep -o cgroup_no_v1=all /proc/cmdline; cat /proc/self/cgroup");
    const [v1mounts, v2mounts, v1, controllers, cmdline, self] = r.stdout.split("\n");
    expect(v1mounts).toBe("0");
    expect(Number(v2mounts)).toBeGreaterThanOrEqual(1);
    expect(v1).not.toBe("v1=0");
    expect(controllers!.split(" ")).toEqual(expect.arrayContaining(["cpu", "memory", "pids"]));
    expect(cmdline).toBe("cgroup_no_v1=all");
    // Its cgroup namespace's root is the learner's cgroup (the engine moves the first processes
    // into the leaf init/, to hand controllers down).
    expect(self).toMatch(/^0::\/(init)?$/);
    const limits = await driver.execTrusted(id, "cat /proc/1/cgroup; cd /sys/fs/cgroup && cat memory.max pids.max cpu.max", { timeoutMs: 15_000 });
    expect(limits.stdout.toString()).toMatch(new RegExp(`^0::/(init)?\\n${MEMORY}\\n128\\n100000 100000\\n$`));
  });

  it("runs the learner without CAP_SYS_MODULE: no module loading, whatever root tries", async () => {
    const r = await sh(client, "grep CapBnd /proc/self/status; insmod /lib/modules/$(uname -r)/kernel/net/ipv4/ipip.ko 2>&1; echo rc=$?");
    const bnd = BigInt(`0x${/CapBnd:\s+([0-9a-f]+)/.exec(r.stdout)![1]}`);
    expect(bnd & (1n << 16n)).toBe(0n); // CAP_SYS_MODULE
    expect(bnd & (1n << 21n)).not.toBe(0n); // CAP_SYS_ADMIN stays: mount and unshare are the course
    expect(r.stdout).toMatch(/rc=[1-9]/);
  });

  it("wiped the seed disk: the tokens it carried are gone from the guest and from the host's file", async () => {
    const r = await sh(client, "head -c 4096 /dev/ubdc | tr -d '\\0' | wc -c");
    expect(r.stdout).toBe("0\n");
    const seed = readFileSync(join(driver.sandboxDir(id), "vm", "seed.img"));
    expect(seed.every((b) => b === 0)).toBe(true);
  });

  it("hostfs shows the guest its jail, never the host's filesystem", async () => {
    const r = await sh(client, "mkdir -p /mnt/h && mount -t hostfs none /mnt/h -o / && ls /mnt/h | tr '\\n' ' '; echo; ls /mnt/h/etc 2>&1 | head -1; umount /mnt/h");
    const [top] = r.stdout.split("\n");
    expect(top!.trim().split(" ").sort()).toEqual(["base", "bin", "dev", "lib", "lib64", "proc", "s", "sbin", "tmp", "usr"]);
    expect(r.stdout).toMatch(/No such file/);
  });

  it("OOM-kills a memory hog at the sandbox's memory limit, inside the guest, and counts it", async () => {
    const before = (await driver.stats(id)).oomKills ?? 0;
    const r = await sh(client, "tail /dev/zero", { timeoutMs: 240_000 });
    expect(r.signal === "SIGKILL" || r.exitCode === 137).toBe(true);
    expect((await driver.stats(id)).oomKills).toBeGreaterThan(before);
    expect((await client.request({ op: "health" })).hostname).toBe("umlbox");
  });
});

describe("uml: the guest kernel process on the host", () => {
  it("runs as an unprivileged uid of its own with no capability but CAP_NET_RAW, and no new privileges to gain", () => {
    const pids = guestHostPids();
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(status)!.slice(1).map(Number);
      expect(new Set(uids).size).toBe(1);
      expect(uids[0]).toBeGreaterThanOrEqual(UML_HOST_UID_BASE);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(/^CapEff:\s+(\S+)/m.exec(status)![1]).toMatch(/^0*(2000)?$/);
      expect(/^CapBnd:\s+(\S+)/m.exec(status)![1]).toBe("0000000000002000");
    }
  });

  it("has its own network, mount, pid, ipc and uts namespaces, and a jail as its whole filesystem", () => {
    const pid = guestHostPids()[0]!;
    for (const ns of ["net", "mnt", "pid", "ipc", "uts"]) expect(readlinkSync(`/proc/${pid}/ns/${ns}`)).not.toBe(readlinkSync(`/proc/self/ns/${ns}`));
    expect(readdirSync(`/proc/${pid}/root`).sort()).toEqual(["base", "bin", "dev", "lib", "lib64", "proc", "s", "sbin", "tmp", "usr"]);
    // Its only interface besides lo: the veth peer the guest's eth0 is made of.
    const dev = readFileSync(`/proc/${pid}/net/dev`, "utf8");
    expect(dev).toMatch(/\bup0:/);
    expect(dev.split("\n").filter((l) => l.includes(":")).length).toBe(2);
  });

  it("sits in a host cgroup that caps memory above the guest's RAM, CPU and processes", () => {
    const v2 = detectCgroupVersion() === 2;
    const limit = Number(readFileSync(hostCgroup("memory", v2 ? "memory.max" : "memory.limit_in_bytes"), "utf8"));
    expect(limit).toBeGreaterThan(MEMORY);
    expect(limit).toBeLessThan(MEMORY + 512 * 1024 * 1024);
    expect(readFileSync(hostCgroup("cpu", v2 ? "cpu.max" : "cpu.cfs_quota_us"), "utf8").trim().split(" ")[0]).toBe("100000");
    expect(Number(readFileSync(hostCgroup("pids", "pids.max"), "utf8"))).toBeGreaterThan(0);
  });
});
