/**
 * The Cgroup class on both layouts this host has: the v1 hierarchies and the (controller-less)
 * cgroup2 tree at /sys/fs/cgroup/unified, which still exercises the v2 path: directories,
 * cgroup.procs, cgroup.freeze, removal.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { Cgroup, detectCgroupVersion } from "../src/cgroups/cgroups";

const V2_BASE = "/sys/fs/cgroup/unified";

function sleeper() {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  return child;
}

describe("cgroups", () => {
  it("tells v1 from v2", () => {
    expect(detectCgroupVersion("/sys/fs/cgroup")).toBe(fs.existsSync("/sys/fs/cgroup/cgroup.controllers") ? 2 : 1);
    if (fs.existsSync(`${V2_BASE}/cgroup.controllers`)) expect(detectCgroupVersion(V2_BASE)).toBe(2);
  });

  it.runIf(fs.existsSync(`${V2_BASE}/cgroup.controllers`))("v2: moves a cgroup's processes into a leaf (the no-internal-processes rule, nested)", async () => {
    // Nested in a sandbox the engine's base cgroup holds the sandbox's own processes; before it can
    // enable controllers for containers they must move to base/init.
    const cg = new Cgroup(2, `leaf-${process.pid}`, V2_BASE, "berth-engine-test");
    cg.create({});
    const busy = cg.dirs[0]!;
    const [p1, p2] = [sleeper(), sleeper()];
    try {
      cg.addProcess(p1.pid!);
      cg.addProcess(p2.pid!);
      cg.moveProcessesToLeaf(busy);
      expect(fs.readFileSync(`${busy}/cgroup.procs`, "utf8")).toBe("");
      expect(fs.readFileSync(`${busy}/init/cgroup.procs`, "utf8").trim().split("\n").map(Number).sort()).toEqual([p1.pid, p2.pid].sort());
      expect(cg.writes.slice(-2).map((w) => w.file)).toEqual([`${busy}/init/cgroup.procs`, `${busy}/init/cgroup.procs`]);
    } finally {
      for (const p of [p1, p2]) {
        p.kill("SIGKILL");
        await new Promise((r) => p.once("exit", r));
      }
      fs.rmdirSync(`${busy}/init`);
      cg.remove();
      fs.rmdirSync(`${V2_BASE}/berth-engine-test`);
    }
  });

  it.runIf(fs.existsSync(`${V2_BASE}/cgroup.controllers`))("v2: creates, joins, freezes, thaws and removes", async () => {
    const cg = new Cgroup(2, `test-${process.pid}`, V2_BASE, "berth-engine-test");
    cg.create({});
    const p = sleeper();
    try {
      cg.addProcess(p.pid!);
      expect(cg.pids()).toEqual([p.pid]);
      expect(cg.writes.at(-1)).toEqual({ file: `${V2_BASE}/berth-engine-test/test-${process.pid}/cgroup.procs`, value: String(p.pid) });
      cg.freeze(true);
      for (let i = 0; i < 50 && !/frozen 1/.test(fs.readFileSync(`${cg.dirs[0]}/cgroup.events`, "utf8")); i++) await new Promise((r) => setTimeout(r, 20));
      expect(fs.readFileSync(`${cg.dirs[0]}/cgroup.events`, "utf8")).toMatch(/frozen 1/);
      cg.freeze(false);
      expect(cg.oomKilled()).toBe(false);
    } finally {
      p.kill("SIGKILL");
      await new Promise((r) => p.once("exit", r));
      cg.remove();
      fs.rmdirSync(`${V2_BASE}/berth-engine-test`);
    }
    expect(fs.existsSync(cg.dirs[0]!)).toBe(false);
  });

  it.runIf(!fs.existsSync("/sys/fs/cgroup/cgroup.controllers"))("v1: one directory per controller, limits recorded with their values", async () => {
    const cg = new Cgroup(1, `test-${process.pid}`, "/sys/fs/cgroup", "berth-engine-test");
    cg.create({ memory: 32 << 20, pidsLimit: 7, cpuShares: 256 });
    const p = sleeper();
    try {
      cg.addProcess(p.pid!);
      expect(fs.readFileSync(`${cg.dir("memory")}/memory.limit_in_bytes`, "utf8").trim()).toBe(String(32 << 20));
      expect(fs.readFileSync(`${cg.dir("pids")}/pids.max`, "utf8").trim()).toBe("7");
      expect(cg.writes.map((w) => w.file.split("/").pop())).toEqual(expect.arrayContaining(["memory.limit_in_bytes", "pids.max", "cpu.shares", "cpuset.cpus", "cpuset.mems", "devices.deny"]));
      for (const d of cg.dirs) expect(fs.readFileSync(`${d}/cgroup.procs`, "utf8").trim()).toBe(String(p.pid));
    } finally {
      p.kill("SIGKILL");
      await new Promise((r) => p.once("exit", r));
      cg.remove();
      for (const d of cg.dirs) fs.rmdirSync(d.replace(/\/[^/]+$/, ""));
    }
    for (const d of cg.dirs) expect(fs.existsSync(d)).toBe(false);
  });
});
