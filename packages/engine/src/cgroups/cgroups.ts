/**
 * Control groups: one directory per container, the limits written into its files, the container's
 * PID 1 written into cgroup.procs. Two layouts exist and both are handled:
 *   v1 (this course's hosts are hybrid): one tree per controller, /sys/fs/cgroup/memory/berth/<id> ...
 *   v2 (unified): one tree, /sys/fs/cgroup/berth/<id>, controllers enabled via cgroup.subtree_control.
 * Every write is recorded, so the recipe can show the exact file and value.
 */
import fs from "node:fs";
import path from "node:path";
import { readCgroupStats, type CgroupStats } from "./stats";

export interface Limits {
  memory?: number; // bytes
  memorySwap?: number; // bytes of memory+swap, -1 = unlimited
  nanoCpus?: number; // 1e9 = one CPU
  cpuQuota?: number;
  cpuPeriod?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  pidsLimit?: number;
  devices?: string[]; // devices-cgroup rules allowed on top of the default list ("c 1:3 rwm"; --device)
}

export interface CgroupWrite {
  file: string;
  value: string;
}

export type CgroupVersion = 1 | 2;

export function detectCgroupVersion(base = "/sys/fs/cgroup"): CgroupVersion {
  return fs.existsSync(path.join(base, "cgroup.controllers")) ? 2 : 1;
}

const V1_CONTROLLERS = ["memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer"] as const;
/** Hierarchies joined only to count (`docker stats`): where one cannot be made (not delegated), the container goes on without it. */
const V1_COUNTING_ONLY = ["cpuacct", "blkio"];

export class Cgroup {
  readonly writes: CgroupWrite[] = [];
  /** What could not be written and why it is still safe (the recipe shows these as steps). */
  readonly notes: string[] = [];
  dirs: string[];

  constructor(
    readonly version: CgroupVersion,
    readonly id: string,
    readonly base = "/sys/fs/cgroup",
    readonly parent = "berth-engine",
  ) {
    this.dirs = version === 2 ? [path.join(base, parent, id)] : V1_CONTROLLERS.filter((c) => fs.existsSync(path.join(base, c))).map((c) => path.join(base, c, parent, id));
  }

  /** The path a learner would `cat` for a controller ("memory", "pids" ...). */
  dir(controller: string): string {
    if (this.version === 2) return this.dirs[0]!;
    const d = this.dirs.find((x) => x.includes(`/${controller}/`) || (controller === "cpu" && x.includes("/cpu,cpuacct/")));
    if (!d) throw new Error(`cgroup v1 controller ${controller} is not mounted under ${this.base}`);
    return d;
  }

  private write(file: string, value: string): void {
    fs.writeFileSync(file, value);
    this.writes.push({ file, value });
  }

  create(limits: Limits): void {
    if (this.version === 2) this.prepareV2Parent();
    for (const d of [...this.dirs]) {
      if (this.version === 1 && d.includes("/cpuset/")) this.prepareV1Cpuset(path.dirname(d));
      try {
        fs.mkdirSync(d, { recursive: true });
      } catch (e) {
        const hierarchy = path.relative(this.base, d).split("/")[0]!;
        if (this.version === 2 || !V1_COUNTING_ONLY.includes(hierarchy)) throw e;
        this.dirs = this.dirs.filter((x) => x !== d);
        this.notes.push(`${d}: ${(e as Error).message} (counted in the parent's cgroup instead)`);
      }
    }
    if (this.version === 1) this.applyV1(limits);
    else this.applyV2(limits);
  }

  private applyV1(l: Limits): void {
    if (l.memory && l.memory > 0) {
      this.write(path.join(this.dir("memory"), "memory.limit_in_bytes"), String(l.memory));
      const memsw = path.join(this.dir("memory"), "memory.memsw.limit_in_bytes");
      // Docker's default: as much swap as memory (memory-swap = 2 x memory) unless told otherwise.
      const swap = l.memorySwap === undefined || l.memorySwap === 0 ? l.memory * 2 : l.memorySwap;
      if (fs.existsSync(memsw) && swap > 0) this.write(memsw, String(swap));
    }
    const { quota, period } = cpuQuota(l);
    if (quota > 0) {
      this.write(path.join(this.dir("cpu"), "cpu.cfs_period_us"), String(period));
      this.write(path.join(this.dir("cpu"), "cpu.cfs_quota_us"), String(quota));
    }
    if (l.cpuShares && l.cpuShares > 0) this.write(path.join(this.dir("cpu"), "cpu.shares"), String(l.cpuShares));
    // cpuset needs both cpus and mems before a task may join; inherit the parent's unless asked.
    const cpuset = this.dir("cpuset");
    const parentCpuset = path.dirname(cpuset);
    this.write(path.join(cpuset, "cpuset.cpus"), l.cpusetCpus || readTrim(path.join(parentCpuset, "cpuset.cpus")));
    this.write(path.join(cpuset, "cpuset.mems"), readTrim(path.join(parentCpuset, "cpuset.mems")));
    if (l.pidsLimit && l.pidsLimit > 0) this.write(path.join(this.dir("pids"), "pids.max"), String(l.pidsLimit));
    this.restrictDevicesV1(l.devices ?? []);
  }

  /** Deny every device, then allow the ones a container's /dev holds (as Docker's default list). */
  private restrictDevicesV1(extra: string[]): void {
    const devices = this.dirs.find((d) => d.includes("/devices/"));
    if (!devices) return;
    try {
      this.write(path.join(devices, "devices.deny"), "a");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EPERM") throw e;
      // Device rules need CAP_SYS_ADMIN in the host's user namespace, which an engine nested in a
      // sandbox never has. A new v1 devices cgroup starts with a copy of its parent's list, and the
      // parent is the sandbox's, which already allows only harmless devices: the container keeps that.
      this.notes.push(`devices.deny/devices.allow refused (user namespace): ${devices} keeps the list inherited from its parent`);
      return;
    }
    for (const rule of ["c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c *:* m", "b *:* m", ...extra]) {
      this.write(path.join(devices, "devices.allow"), rule);
    }
  }

  private applyV2(l: Limits): void {
    const d = this.dirs[0]!;
    if (l.memory && l.memory > 0) {
      this.write(path.join(d, "memory.max"), String(l.memory));
      const swap = l.memorySwap === undefined || l.memorySwap === 0 ? l.memory * 2 : l.memorySwap;
      if (fs.existsSync(path.join(d, "memory.swap.max"))) this.write(path.join(d, "memory.swap.max"), swap < 0 ? "max" : String(Math.max(0, swap - l.memory)));
    }
    const { quota, period } = cpuQuota(l);
    if (quota > 0) this.write(path.join(d, "cpu.max"), `${quota} ${period}`);
    // cpu.shares 2..262144 map onto cpu.weight 1..10000 (the formula runc and systemd use).
    if (l.cpuShares && l.cpuShares > 0) this.write(path.join(d, "cpu.weight"), String(Math.round(1 + ((l.cpuShares - 2) * 9999) / 262142)));
    if (l.cpusetCpus) this.write(path.join(d, "cpuset.cpus"), l.cpusetCpus);
    if (l.pidsLimit && l.pidsLimit > 0) this.write(path.join(d, "pids.max"), String(l.pidsLimit));
  }

  private prepareV2Parent(): void {
    const parent = path.join(this.base, this.parent);
    fs.mkdirSync(parent, { recursive: true });
    const available = readTrim(path.join(this.base, "cgroup.controllers")).split(" ");
    const wanted = ["cpu", "cpuset", "memory", "pids"].filter((c) => available.includes(c));
    for (const dir of [this.base, parent]) {
      const enabled = readTrim(path.join(dir, "cgroup.subtree_control")).split(" ");
      const missing = wanted.filter((c) => !enabled.includes(c));
      if (!missing.length) continue;
      // All in one write. Alone, cpu or pids (threaded controllers) would be accepted in a cgroup
      // that holds processes and make it a threaded subtree's root: memory could then never be
      // enabled there and every new child would be "domain invalid" (joining one fails with
      // EOPNOTSUPP). With memory in the same write the kernel refuses it all with EBUSY instead.
      const line = missing.map((c) => `+${c}`).join(" ");
      const control = path.join(dir, "cgroup.subtree_control");
      try {
        this.write(control, line);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EBUSY") {
          // v2's "no internal processes" rule: a cgroup that holds processes cannot hand controllers
          // to children. The host's root cgroup is exempt, but nested in a sandbox our base is the
          // sandbox's own cgroup (its cgroup namespace root), where tini, the agent and we live.
          // Move them into a leaf first, as docker-in-docker does, then enable again.
          this.moveProcessesToLeaf(dir);
          try {
            this.write(control, line);
            continue;
          } catch {
            /* one at a time below */
          }
        }
        // Some controller is not delegated to us: enable what can be, domain controllers first
        // (the limit that needs a missing one fails later, clearly).
        for (const c of [...missing].sort((a, b) => Number(a !== "memory") - Number(b !== "memory"))) {
          try {
            this.write(control, `+${c}`);
          } catch {
            /* not ours to enable */
          }
        }
      }
    }
  }

  /** Moves every process of `dir` into `dir/init` (v2), so that `dir` may enable controllers. */
  moveProcessesToLeaf(dir: string, leaf = "init"): void {
    const target = path.join(dir, leaf);
    fs.mkdirSync(target, { recursive: true });
    // A process may fork while we move: go round until the cgroup is empty (bounded).
    for (let round = 0; round < 10; round++) {
      const pids = readTrim(path.join(dir, "cgroup.procs")).split("\n").filter(Boolean);
      if (pids.length === 0) return;
      for (const pid of pids) {
        try {
          this.write(path.join(target, "cgroup.procs"), pid);
        } catch {
          /* exited meanwhile */
        }
      }
    }
  }

  private prepareV1Cpuset(parent: string): void {
    fs.mkdirSync(parent, { recursive: true });
    const root = path.dirname(parent);
    for (const f of ["cpuset.cpus", "cpuset.mems"]) {
      if (!readTrim(path.join(parent, f))) fs.writeFileSync(path.join(parent, f), readTrim(path.join(root, f)));
    }
  }

  /** Put a process (the container's PID 1, seen from the host) into every hierarchy. */
  addProcess(pid: number): void {
    for (const d of this.dirs) this.write(path.join(d, "cgroup.procs"), String(pid));
  }

  /** `docker pause`: the freezer stops every task of the cgroup where it stands. */
  freeze(frozen: boolean): void {
    if (this.version === 2) this.write(path.join(this.dirs[0]!, "cgroup.freeze"), frozen ? "1" : "0");
    else this.write(path.join(this.dir("freezer"), "freezer.state"), frozen ? "FROZEN" : "THAWED");
  }

  /** True if the kernel's OOM killer killed something in this cgroup. */
  oomKilled(): boolean {
    try {
      const file = this.version === 2 ? path.join(this.dirs[0]!, "memory.events") : path.join(this.dir("memory"), "memory.oom_control");
      const m = /oom_kill (\d+)/.exec(fs.readFileSync(file, "utf8"));
      return !!m && Number(m[1]) > 0;
    } catch {
      return false;
    }
  }

  /**
   * `docker update`: new limits into a live cgroup. Only memory, CPU and pids (what update may
   * change); on v1 memory and memory+swap are written in the order the kernel accepts (the limit
   * may never exceed memsw).
   */
  update(l: Limits): void {
    if (this.version === 2) {
      const d = this.dirs[0]!;
      if (l.memory !== undefined) this.write(path.join(d, "memory.max"), l.memory > 0 ? String(l.memory) : "max");
      if (l.memory !== undefined && fs.existsSync(path.join(d, "memory.swap.max"))) {
        const swap = l.memorySwap === undefined || l.memorySwap === 0 ? l.memory * 2 : l.memorySwap;
        this.write(path.join(d, "memory.swap.max"), swap < 0 || l.memory <= 0 ? "max" : String(Math.max(0, swap - l.memory)));
      }
      const { quota, period } = cpuQuota(l);
      if (l.nanoCpus !== undefined || l.cpuQuota !== undefined) this.write(path.join(d, "cpu.max"), quota > 0 ? `${quota} ${period}` : `max ${period || 100000}`);
      if (l.cpuShares) this.write(path.join(d, "cpu.weight"), String(Math.round(1 + ((l.cpuShares - 2) * 9999) / 262142)));
      if (l.cpusetCpus) this.write(path.join(d, "cpuset.cpus"), l.cpusetCpus);
      if (l.pidsLimit !== undefined) this.write(path.join(d, "pids.max"), l.pidsLimit > 0 ? String(l.pidsLimit) : "max");
      return;
    }
    if (l.memory !== undefined) {
      const mem = this.dir("memory");
      const memFile = path.join(mem, "memory.limit_in_bytes");
      const swFile = path.join(mem, "memory.memsw.limit_in_bytes");
      const limit = l.memory > 0 ? l.memory : -1;
      const swap = l.memory <= 0 ? -1 : l.memorySwap === undefined || l.memorySwap === 0 ? l.memory * 2 : l.memorySwap;
      const hasSwap = fs.existsSync(swFile);
      const currentSwap = hasSwap ? Number(readTrim(swFile)) : 0;
      const raising = swap < 0 || swap > currentSwap;
      if (hasSwap && raising) this.write(swFile, String(swap));
      this.write(memFile, String(limit));
      if (hasSwap && !raising) this.write(swFile, String(swap));
    }
    if (l.nanoCpus !== undefined || l.cpuQuota !== undefined) {
      const { quota, period } = cpuQuota(l);
      if (quota > 0) this.write(path.join(this.dir("cpu"), "cpu.cfs_period_us"), String(period));
      this.write(path.join(this.dir("cpu"), "cpu.cfs_quota_us"), quota > 0 ? String(quota) : "-1");
    }
    if (l.cpuShares) this.write(path.join(this.dir("cpu"), "cpu.shares"), String(l.cpuShares));
    if (l.cpusetCpus) this.write(path.join(this.dir("cpuset"), "cpuset.cpus"), l.cpusetCpus);
    if (l.pidsLimit !== undefined) this.write(path.join(this.dir("pids"), "pids.max"), l.pidsLimit > 0 ? String(l.pidsLimit) : "max");
  }

  /** CPU, memory, pids and block I/O as counted so far (src/cgroups/stats.ts). */
  stats(): CgroupStats {
    return readCgroupStats(this.version, this.dirs, this.base);
  }

  pids(): number[] {
    try {
      return readTrim(path.join(this.version === 2 ? this.dirs[0]! : this.dir("pids"), "cgroup.procs")).split("\n").filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  remove(): void {
    for (const d of this.dirs) {
      for (let i = 0; i < 50; i++) {
        try {
          fs.rmdirSync(d);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOENT") break;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); // tasks still exiting
        }
      }
    }
  }
}

function cpuQuota(l: Limits): { quota: number; period: number } {
  if (l.nanoCpus && l.nanoCpus > 0) return { period: 100000, quota: Math.round((l.nanoCpus * 100000) / 1e9) };
  if (l.cpuQuota && l.cpuQuota > 0) return { period: l.cpuPeriod || 100000, quota: l.cpuQuota };
  return { quota: 0, period: 0 };
}

function readTrim(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return "";
  }
}
