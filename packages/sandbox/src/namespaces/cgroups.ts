// One sandbox's cgroups. Two levels, so that a learner who is root inside cannot lift the limits:
//
//   berth/<id>        limits live here (memory, swap off, cpu, pids, devices); owned by host root,
//                     invisible from inside (the sandbox's cgroup namespace starts one level down)
//   berth/<id>/box    the sandbox's own subtree: runc puts the sandbox in it, it is the root of the
//                     sandbox's cgroup namespace, and it is chowned to the sandbox's root user so a
//                     learner (or the engine) can make child cgroups and move processes into them.
//
// cgroup v1 (this host: one hierarchy per controller under /sys/fs/cgroup/<controller>) and
// cgroup v2 (one unified tree, controllers enabled top-down with cgroup.subtree_control) differ in
// file names and in how delegation works; both paths are here.
import { existsSync, readFileSync } from "node:fs";
import { chown, mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SandboxLimits, SandboxStats } from "../driver.js";

export const CGROUP_ROOT = "/sys/fs/cgroup";
/** All sandboxes live under this cgroup, in every hierarchy. */
export const CGROUP_PARENT = "berth";
const CPU_PERIOD_US = 100_000;

export type CgroupVersion = 1 | 2;

/** v2 only when /sys/fs/cgroup itself is the unified tree; a hybrid host (v2 tree at .../unified, no controllers in it) is v1. */
export function detectCgroupVersion(root = CGROUP_ROOT): CgroupVersion {
  return existsSync(join(root, "cgroup.controllers")) ? 2 : 1;
}

/** Mount points of the v1 hierarchies (one per controller or named hierarchy), plus the hybrid unified tree. */
function v1Hierarchies(): string[] {
  const out: string[] = [];
  for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const [, mountPoint, type] = line.split(" ");
    if (!mountPoint?.startsWith(CGROUP_ROOT + "/")) continue;
    if (type === "cgroup" || type === "cgroup2") out.push(mountPoint);
  }
  return out;
}

/**
 * The device nodes a sandbox may open. Everything else (block devices above all) is refused by the
 * kernel even if a learner manages to make a node for it. v1: written to devices.allow of the
 * parent, which caps every cgroup below it; v2: runc attaches the same list as an eBPF program.
 */
export const ALLOWED_DEVICES: { type: "c" | "b"; major: number | "*"; minor: number | "*"; access: string }[] = [
  // mknod of any node (runc asks for it; making a node needs CAP_MKNOD on the host, which the
  // sandbox never has, and opening one needs r or w below).
  { type: "c", major: "*", minor: "*", access: "m" },
  { type: "b", major: "*", minor: "*", access: "m" },
  { type: "c", major: 1, minor: 3, access: "rwm" }, // null
  { type: "c", major: 1, minor: 5, access: "rwm" }, // zero
  { type: "c", major: 1, minor: 7, access: "rwm" }, // full
  { type: "c", major: 1, minor: 8, access: "rwm" }, // random
  { type: "c", major: 1, minor: 9, access: "rwm" }, // urandom
  { type: "c", major: 5, minor: 0, access: "rwm" }, // tty
  { type: "c", major: 5, minor: 1, access: "rwm" }, // console
  { type: "c", major: 5, minor: 2, access: "rwm" }, // ptmx
  { type: "c", major: 136, minor: "*", access: "rwm" }, // pts
  { type: "c", major: 10, minor: 200, access: "rwm" }, // net/tun
];

export class SandboxCgroup {
  readonly version: CgroupVersion;
  /** Relative to each hierarchy's root. */
  readonly parentPath: string;
  readonly boxPath: string;

  /**
   * `root` is where the cgroup filesystem is mounted; only the v2 path takes another one (its
   * test runs on a directory that plays the unified tree, since this host has none with controllers).
   */
  constructor(
    readonly id: string,
    version?: CgroupVersion,
    readonly root = CGROUP_ROOT,
  ) {
    this.version = version ?? detectCgroupVersion(root);
    this.parentPath = join(CGROUP_PARENT, id);
    this.boxPath = join(this.parentPath, "box");
  }

  /** What runc gets as linux.cgroupsPath. */
  get runcPath(): string {
    return "/" + this.boxPath;
  }

  /** Creates both levels, writes the limits on the parent, and hands the box to the sandbox's root (hostUid). */
  async create(limits: SandboxLimits, hostUid: number, hostGid: number): Promise<void> {
    if (this.version === 2) await this.createV2(limits, hostUid, hostGid);
    else await this.createV1(limits, hostUid, hostGid);
  }

  private async createV1(limits: SandboxLimits, uid: number, gid: number): Promise<void> {
    for (const h of v1Hierarchies()) {
      if (h === join(CGROUP_ROOT, "unified")) continue; // hybrid: runc places the sandbox there itself
      const controller = h.slice(CGROUP_ROOT.length + 1);
      await mkdirCgroup(h, this.parentPath, controller === "cpuset");
      const parent = join(h, this.parentPath);
      switch (controller) {
        case "memory": {
          const bytes = String(limits.memoryBytes);
          await writeFile(join(parent, "memory.limit_in_bytes"), bytes);
          // memory+swap equal to memory: no swap. (The file exists only with swap accounting on.)
          if (existsSync(join(parent, "memory.memsw.limit_in_bytes"))) await writeFile(join(parent, "memory.memsw.limit_in_bytes"), bytes);
          await writeFile(join(parent, "memory.swappiness"), "0").catch(() => {});
          break;
        }
        case "pids":
          await writeFile(join(parent, "pids.max"), String(limits.pids));
          break;
        case "cpu":
          await writeFile(join(parent, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
          await writeFile(join(parent, "cpu.cfs_quota_us"), String(Math.round(limits.cpus * CPU_PERIOD_US)));
          break;
        case "devices":
          await writeFile(join(parent, "devices.deny"), "a");
          for (const d of ALLOWED_DEVICES) await writeFile(join(parent, "devices.allow"), `${d.type} ${d.major}:${d.minor} ${d.access}`);
          break;
      }
      await mkdirCgroup(h, this.boxPath, controller === "cpuset");
      await chownTree(join(h, this.boxPath), uid, gid);
    }
  }

  private async createV2(limits: SandboxLimits, uid: number, gid: number): Promise<void> {
    const enable = "+memory +pids +cpu";
    await mkdir(join(this.root, CGROUP_PARENT), { recursive: true });
    await writeFile(join(this.root, "cgroup.subtree_control"), enable);
    await writeFile(join(this.root, CGROUP_PARENT, "cgroup.subtree_control"), enable);
    const parent = join(this.root, this.parentPath);
    await mkdir(parent, { recursive: true });
    await writeFile(join(parent, "memory.max"), String(limits.memoryBytes));
    await writeFile(join(parent, "memory.swap.max"), "0").catch(() => {});
    await writeFile(join(parent, "pids.max"), String(limits.pids));
    await writeFile(join(parent, "cpu.max"), `${Math.round(limits.cpus * CPU_PERIOD_US)} ${CPU_PERIOD_US}`);
    await writeFile(join(parent, "cgroup.subtree_control"), enable);
    const box = join(this.root, this.boxPath);
    await mkdir(box, { recursive: true });
    // Delegation as the kernel documents it: the directory and these three files. The box's own
    // interface files (memory.max ...) stay root-owned, and the parent caps them anyway.
    // (v2's "no internal processes" rule: to enable controllers for children, a learner first moves
    // the box's processes into a leaf, e.g. mkdir /sys/fs/cgroup/init; this is what docker-in-docker does.)
    await chown(box, uid, gid);
    for (const f of ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"]) await chown(join(box, f), uid, gid);
  }

  async stats(): Promise<SandboxStats> {
    const [usage, limitEvents] = await Promise.all([this.usage(), this.limitEvents()]);
    return { ...usage, ...limitEvents };
  }

  private async usage(): Promise<Pick<SandboxStats, "memoryBytes" | "pids" | "cpuUsageNs">> {
    if (this.version === 2) {
      const dir = join(this.root, this.parentPath);
      const cpuStat = await readFile(join(dir, "cpu.stat"), "utf8");
      const usec = Number(/^usage_usec (\d+)/m.exec(cpuStat)?.[1] ?? 0);
      return {
        memoryBytes: await readNumber(join(dir, "memory.current")),
        pids: await readNumber(join(dir, "pids.current")),
        cpuUsageNs: usec * 1000,
      };
    }
    return {
      memoryBytes: await readNumber(join(CGROUP_ROOT, "memory", this.parentPath, "memory.usage_in_bytes")),
      pids: await readNumber(join(CGROUP_ROOT, "pids", this.parentPath, "pids.current")),
      cpuUsageNs: await readNumber(join(CGROUP_ROOT, "cpuacct", this.parentPath, "cpuacct.usage")),
    };
  }

  /**
   * The counters that say a limit acted (the orchestrator turns their increments into notices in
   * the learner's terminal). All only ever grow, except that v1's OOM kill sum loses the kills of a
   * child cgroup that was removed (a container that ended): a reader compares with what it saw last.
   *
   * Which limit killed: the sandbox's own (memory at berth/<id>) or a container's `--memory` below
   * it. v2 records an OOM against the cgroup whose limit was hit: memory.events.local "oom" at the
   * parent. v1 has no such counter (and on this kernel the parent's failcnt stays 0): a kill in a
   * cgroup with no lower limit of its own on the way up to the parent is the sandbox's.
   *
   * The pids limit: where the kernel records a refused fork differs by version (the cgroup whose
   * limit was hit on older kernels; since 6.9 the forking task's cgroup on v1, measured here: the
   * box, and hierarchically on v2), so v1 sums the subtree, as for OOM kills.
   */
  async limitEvents(): Promise<Pick<SandboxStats, "oomKills" | "memoryLimitHits" | "pidsLimitHits">> {
    const field = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? 0);
    if (this.version === 2) {
      const dir = join(this.root, this.parentPath);
      const local = await readFile(join(dir, "memory.events.local"), "utf8").catch(() => "");
      const events = await readFile(join(dir, "memory.events"), "utf8").catch(() => "");
      return {
        oomKills: field(events, "oom_kill"),
        // (kernels before 5.2 have no .local: then the subtree's count, a container's OOMs included)
        memoryLimitHits: field(local || events, "oom"),
        pidsLimitHits: field(await readFile(join(dir, "pids.events"), "utf8").catch(() => ""), "max"),
      };
    }
    const memory = join(CGROUP_ROOT, "memory", this.parentPath);
    const limitOf = async (dir: string) => Number((await readFile(join(dir, "memory.limit_in_bytes"), "utf8").catch(() => "")).trim()) || Infinity;
    const sandboxLimit = await limitOf(memory);
    let oomKills = 0;
    let sandboxKills = 0;
    const walkMemory = async (dir: string, limitedBelow: boolean): Promise<void> => {
      const limited = limitedBelow || (dir !== memory && (await limitOf(dir)) < sandboxLimit);
      const kills = field(await readFile(join(dir, "memory.oom_control"), "utf8").catch(() => ""), "oom_kill");
      oomKills += kills;
      if (!limited) sandboxKills += kills;
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walkMemory(join(dir, e.name), limited);
    };
    await walkMemory(memory, false);
    let pidsLimitHits = 0;
    const walkPids = async (dir: string): Promise<void> => {
      pidsLimitHits += field(await readFile(join(dir, "pids.events"), "utf8").catch(() => ""), "max");
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walkPids(join(dir, e.name));
    };
    await walkPids(join(CGROUP_ROOT, "pids", this.parentPath));
    return { oomKills, memoryLimitHits: sandboxKills, pidsLimitHits };
  }

  /**
   * Memory-cgroup OOM kills so far. v2's memory.events at the parent counts the whole subtree; v1
   * counts a kill only in the victim's own cgroup, so the subtree is summed.
   */
  async oomKills(): Promise<number> {
    const count = (text: string) => Number(/^oom_kill (\d+)/m.exec(text)?.[1] ?? 0);
    if (this.version === 2) return count(await readFile(join(this.root, this.parentPath, "memory.events"), "utf8"));
    let total = 0;
    const walk = async (dir: string): Promise<void> => {
      total += count(await readFile(join(dir, "memory.oom_control"), "utf8").catch(() => ""));
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(join(dir, e.name));
    };
    await walk(join(CGROUP_ROOT, "memory", this.parentPath));
    return total;
  }

  /** Every hierarchy directory of this sandbox that still exists (a clean destroy leaves none). */
  existingDirs(): string[] {
    const roots = this.version === 2 ? [this.root] : v1Hierarchies();
    return roots.map((r) => join(r, this.parentPath)).filter((d) => existsSync(d));
  }

  /** Thaws whatever the learner froze in the subtree (see thawTree). */
  async thaw(): Promise<void> {
    for (const dir of this.existingDirs()) await thawTree(dir);
  }

  /**
   * Removes the whole subtree, deepest first (learners may have made children). runc normally has
   * killed everything already; if its state was lost (host reboot, a deleted runc root), whatever
   * is still listed in the subtree is killed here first.
   */
  async remove(): Promise<void> {
    await this.thaw();
    for (let round = 0; round < 20; round++) {
      const pids = new Set<number>();
      for (const dir of this.existingDirs()) await collectProcs(dir, pids);
      if (pids.size === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const dir of this.existingDirs()) await rmdirTree(dir);
  }
}

/**
 * Thaws every frozen cgroup in the sandbox's subtree (a learner may have frozen one, as chapter
 * 16 teaches): a frozen process cannot die, so runc's delete and the kill below would wait forever.
 */
export async function thawTree(dir: string): Promise<void> {
  for (const [file, thawed] of [["freezer.state", "THAWED"], ["cgroup.freeze", "0"]] as const) {
    if (existsSync(join(dir, file))) await writeFile(join(dir, file), thawed).catch(() => {});
  }
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await thawTree(join(dir, e.name));
}

async function collectProcs(dir: string, into: Set<number>): Promise<void> {
  const text = await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
  for (const line of text.split("\n")) if (line.trim()) into.add(Number(line));
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await collectProcs(join(dir, e.name), into);
}

async function readNumber(path: string): Promise<number> {
  return Number((await readFile(path, "utf8")).trim());
}

/** mkdir -p for a cgroup path; in the v1 cpuset hierarchy a new cgroup starts with no cpus and mems and must inherit them. */
async function mkdirCgroup(hierarchy: string, rel: string, isCpuset: boolean): Promise<void> {
  let dir = hierarchy;
  for (const part of rel.split("/")) {
    const parent = dir;
    dir = join(dir, part);
    // (two creates at once both make berth/ the first time: the loser's EEXIST is fine)
    if (!existsSync(dir)) await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
    if (isCpuset) {
      for (const f of ["cpuset.cpus", "cpuset.mems"]) {
        if ((await readFile(join(dir, f), "utf8")).trim() === "") await writeFile(join(dir, f), (await readFile(join(parent, f), "utf8")).trim());
      }
    }
  }
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await chown(dir, uid, gid);
  for (const f of await readdir(dir, { withFileTypes: true })) {
    if (f.isFile()) await chown(join(dir, f.name), uid, gid).catch(() => {});
  }
}

async function rmdirTree(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) await rmdirTree(join(dir, e.name));
  }
  // A cgroup can be busy for a moment after its last process died.
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || attempt >= 50) throw new Error(`could not remove cgroup ${dir}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
