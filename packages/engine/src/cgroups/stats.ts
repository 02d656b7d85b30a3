/**
 * What a container's cgroup has counted: CPU time, memory, pids, block I/O. These are the figures
 * behind `docker stats`, read from the same files a learner can `cat`:
 *
 *   v1: cpuacct/cpuacct.usage (ns), cpuacct.stat (ticks), cpu/cpu.stat (throttling),
 *       memory/memory.usage_in_bytes, memory.max_usage_in_bytes, memory.stat, memory.limit_in_bytes,
 *       pids/pids.current, pids.max, blkio/blkio.throttle.io_service_bytes_recursive
 *   v2: cpu.stat (usage_usec, user_usec, system_usec, nr_periods ...), memory.current, memory.peak,
 *       memory.stat, memory.max, pids.current, pids.max, io.stat
 *
 * A file that is missing (a controller not delegated, as in a nested v2 tree) reads as absent, not
 * as an error: the figure is then 0, as dockerd shows it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { CgroupVersion } from "./cgroups";

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface CgroupStats {
  cpu: { totalNs: number; userNs: number; kernelNs: number; periods: number; throttledPeriods: number; throttledNs: number };
  memory: { usage: number; maxUsage: number; limit: number | null; failcnt: number; stats: Record<string, number> };
  pids: { current: number; limit: number | null };
  blkio: BlkioEntry[];
}

/** USER_HZ: cpuacct.stat counts in these ticks (100 on every Linux this runs on). */
const TICK_NS = 1e9 / 100;

/** `dirs`: the cgroup's directories (v1: one per hierarchy, under `base`/<controller>/). */
export function readCgroupStats(version: CgroupVersion, dirs: string[], base = "/sys/fs/cgroup"): CgroupStats {
  return version === 2 ? readV2(dirs[0] ?? "") : readV1(dirs, base);
}

const read = readCgroupFile;

function readV1(dirs: string[], base: string): CgroupStats {
  const hierarchy = (d: string) => path.relative(base, d).split("/")[0]!.split(",");
  const dir = (controller: string) => dirs.find((d) => hierarchy(d).includes(controller)) ?? "";
  const acct = dir("cpuacct"), cpu = dir("cpu"), mem = dir("memory"), pids = dir("pids"), blkio = dir("blkio");
  const ticks = keyValues(read(path.join(acct, "cpuacct.stat")));
  const throttle = keyValues(read(path.join(cpu, "cpu.stat")));
  return {
    cpu: {
      totalNs: num(read(path.join(acct, "cpuacct.usage"))),
      userNs: (ticks.user ?? 0) * TICK_NS,
      kernelNs: (ticks.system ?? 0) * TICK_NS,
      periods: throttle.nr_periods ?? 0,
      throttledPeriods: throttle.nr_throttled ?? 0,
      throttledNs: throttle.throttled_time ?? 0,
    },
    memory: {
      usage: num(read(path.join(mem, "memory.usage_in_bytes"))),
      maxUsage: num(read(path.join(mem, "memory.max_usage_in_bytes"))),
      limit: limitOf(read(path.join(mem, "memory.limit_in_bytes"))),
      failcnt: num(read(path.join(mem, "memory.failcnt"))),
      stats: keyValues(read(path.join(mem, "memory.stat"))),
    },
    pids: { current: num(read(path.join(pids, "pids.current"))), limit: limitOf(read(path.join(pids, "pids.max"))) },
    blkio: (read(path.join(blkio, "blkio.throttle.io_service_bytes_recursive")) ?? "")
      .split("\n")
      .map((l) => /^(\d+):(\d+) (\w+) (\d+)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => ({ major: Number(m[1]), minor: Number(m[2]), op: m[3]!.toLowerCase(), value: Number(m[4]) })),
  };
}

function readV2(d: string): CgroupStats {
  const cpu = keyValues(read(path.join(d, "cpu.stat")));
  const blkio: BlkioEntry[] = [];
  for (const line of (read(path.join(d, "io.stat")) ?? "").split("\n")) {
    const m = /^(\d+):(\d+) (.*)$/.exec(line.trim());
    if (!m) continue;
    const f = Object.fromEntries(m[3]!.split(" ").map((kv) => kv.split("=")).map(([k, v]) => [k, Number(v)]));
    blkio.push({ major: Number(m[1]), minor: Number(m[2]), op: "read", value: f.rbytes ?? 0 }, { major: Number(m[1]), minor: Number(m[2]), op: "write", value: f.wbytes ?? 0 });
  }
  return {
    cpu: {
      totalNs: (cpu.usage_usec ?? 0) * 1000,
      userNs: (cpu.user_usec ?? 0) * 1000,
      kernelNs: (cpu.system_usec ?? 0) * 1000,
      periods: cpu.nr_periods ?? 0,
      throttledPeriods: cpu.nr_throttled ?? 0,
      throttledNs: (cpu.throttled_usec ?? 0) * 1000,
    },
    memory: {
      usage: num(read(path.join(d, "memory.current"))),
      maxUsage: num(read(path.join(d, "memory.peak"))),
      limit: limitOf(read(path.join(d, "memory.max"))),
      failcnt: keyValues(read(path.join(d, "memory.events"))).max ?? 0,
      stats: keyValues(read(path.join(d, "memory.stat"))),
    },
    pids: { current: num(read(path.join(d, "pids.current"))), limit: limitOf(read(path.join(d, "pids.max"))) },
    blkio,
  };
}

/** The whole machine's CPU time in ns, from /proc/stat's first line, as dockerd computes system_cpu_usage. */
export function systemCpuNs(stat = read("/proc/stat") ?? ""): number {
  const fields = (stat.split("\n")[0] ?? "").trim().split(/\s+/).slice(1, 8).map(Number);
  return fields.reduce((a, b) => a + (b || 0), 0) * TICK_NS;
}

/** /proc/<pid>/net/dev of a container's process: its namespace's interfaces (loopback left out, as dockerd does). */
export function networkStats(pid: number): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  if (!pid) return out;
  for (const line of (read(`/proc/${pid}/net/dev`) ?? "").split("\n").slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === "lo") continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    out[m[1]!] = { rx_bytes: f[0]!, rx_packets: f[1]!, rx_errors: f[2]!, rx_dropped: f[3]!, tx_bytes: f[8]!, tx_packets: f[9]!, tx_errors: f[10]!, tx_dropped: f[11]! };
  }
  return out;
}

/** The memory figure `docker stats` shows a limit against when the container has none: the machine's. */
export function machineMemory(): number {
  return os.totalmem();
}

/** A cgroup file's text, or undefined where the file (or its controller's directory) is not there. */
export function readCgroupFile(file: string | undefined): string | undefined {
  if (!file || !path.isAbsolute(file)) return undefined; // a controller that is not there
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function num(s: string | undefined): number {
  const n = Number((s ?? "").trim());
  return Number.isFinite(n) ? n : 0;
}

/** "max", or v1's "unlimited" (a page-rounded 2^63), means no limit. */
export function limitOf(s: string | undefined): number | null {
  const t = (s ?? "").trim();
  if (!t || t === "max") return null;
  const n = Number(t);
  return !Number.isFinite(n) || n >= 2 ** 62 ? null : n;
}

function keyValues(s: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (s ?? "").split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}
