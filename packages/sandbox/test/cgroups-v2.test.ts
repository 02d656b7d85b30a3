// The cgroup v2 path (a user's host is most likely v2-only; this one is hybrid with no v2
// controllers, so runc and the kernel cannot be exercised here). A directory plays the unified
// tree with the files the kernel would provide; the test checks what the driver writes and chowns,
// and how it reads stats back.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxCgroup, detectCgroupVersion } from "../src/namespaces/cgroups.js";

let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "berth-cg2-"));
  writeFileSync(join(root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n");
  writeFileSync(join(root, "cgroup.subtree_control"), "");
  // What the kernel creates inside the box as soon as the directory exists.
  const box = join(root, "berth", "sb1", "box");
  mkdirSync(box, { recursive: true });
  for (const f of ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads", "memory.max"]) writeFileSync(join(box, f), "");
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("cgroup v2", () => {
  it("is detected by cgroup.controllers at the root", () => {
    expect(detectCgroupVersion(root)).toBe(2);
    expect(detectCgroupVersion(join(root, "berth"))).toBe(1);
  });

  it("enables controllers top-down, puts the limits on the parent, and delegates only the box", async () => {
    const cg = new SandboxCgroup("sb1", undefined, root);
    expect(cg.version).toBe(2);
    expect(cg.runcPath).toBe("/berth/sb1/box");
    await cg.create({ memoryBytes: 256 * 1024 * 1024, cpus: 1.5, pids: 100, diskBytes: 1 << 30 }, 100000, 100000);

    const read = (...p: string[]) => readFileSync(join(root, ...p), "utf8");
    for (const dir of [[], ["berth"], ["berth", "sb1"]]) expect(read(...dir, "cgroup.subtree_control")).toBe("+memory +pids +cpu");
    expect(read("berth", "sb1", "memory.max")).toBe(String(256 * 1024 * 1024));
    expect(read("berth", "sb1", "memory.swap.max")).toBe("0");
    expect(read("berth", "sb1", "cpu.max")).toBe("150000 100000");
    expect(read("berth", "sb1", "pids.max")).toBe("100");

    const owner = (...p: string[]) => statSync(join(root, ...p)).uid;
    expect(owner("berth", "sb1", "box")).toBe(100000);
    for (const f of ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"]) expect(owner("berth", "sb1", "box", f)).toBe(100000);
    // The box's own limit files stay root's, and the parent stays root's altogether.
    expect(owner("berth", "sb1", "box", "memory.max")).toBe(0);
    expect(owner("berth", "sb1")).toBe(0);
  });

  it("reads stats, OOM kills and limit events from the parent (v2 counts the whole subtree there; .local, the sandbox's own limit)", async () => {
    const cg = new SandboxCgroup("sb1", 2, root);
    const parent = join(root, "berth", "sb1");
    writeFileSync(join(parent, "memory.current"), "12345678\n");
    writeFileSync(join(parent, "pids.current"), "7\n");
    writeFileSync(join(parent, "cpu.stat"), "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n");
    writeFileSync(join(parent, "memory.events"), "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n");
    // One of the two OOMs was the sandbox's own limit (local to the parent), one a container's below it.
    writeFileSync(join(parent, "memory.events.local"), "low 0\nhigh 0\nmax 1\noom 1\noom_kill 0\n");
    writeFileSync(join(parent, "pids.events"), "max 3\n");
    expect(await cg.stats()).toEqual({ memoryBytes: 12345678, pids: 7, cpuUsageNs: 2_500_000, oomKills: 2, memoryLimitHits: 1, pidsLimitHits: 3 });
    expect(await cg.oomKills()).toBe(2);
    expect(cg.existingDirs()).toEqual([parent]);
  });
});
