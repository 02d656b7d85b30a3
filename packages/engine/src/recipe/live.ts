/**
 * Live figures for the X-ray panel, read from the files of the container's own cgroup (the
 * recipe's cgroup.paths), so what the learner sees is what the kernel counts.
 *   v1: memory.usage_in_bytes / memory.limit_in_bytes, cpuacct.usage (ns), pids.current / pids.max
 *   v2: memory.current / memory.max, cpu.stat usage_usec, pids.current / pids.max
 */
import path from "node:path";
import { limitOf, readCgroupFile } from "../cgroups/stats";

export interface LiveFigures {
  /** Milliseconds since the epoch, when read. */
  at: number;
  memory: { usage: number; limit: number | null } | null;
  cpu: { usageNs: number; quota: string | null } | null;
  pids: { current: number; limit: number | null } | null;
}

/** Absent (not 0, as `docker stats` shows it) where the kernel has no such file: the panel says so. */
const read = (file: string | undefined) => readCgroupFile(file)?.trim();

export function readLiveFigures(version: 1 | 2, paths: string[]): LiveFigures {
  const at = Date.now();
  if (version === 2) {
    const d = paths[0];
    if (!d) return { at, memory: null, cpu: null, pids: null };
    const usage = read(path.join(d, "memory.current"));
    const cpuStat = read(path.join(d, "cpu.stat"));
    const usec = cpuStat ? /usage_usec (\d+)/.exec(cpuStat)?.[1] : undefined;
    const pids = read(path.join(d, "pids.current"));
    return {
      at,
      memory: usage !== undefined ? { usage: Number(usage), limit: limitOf(read(path.join(d, "memory.max"))) } : null,
      cpu: usec !== undefined ? { usageNs: Number(usec) * 1000, quota: read(path.join(d, "cpu.max")) ?? null } : null,
      pids: pids !== undefined ? { current: Number(pids), limit: limitOf(read(path.join(d, "pids.max"))) } : null,
    };
  }
  const dir = (controller: string) => paths.find((p) => p.split("/").includes(controller) || p.split("/").some((s) => s.split(",").includes(controller)));
  // cpuacct counts the time, cpu holds the quota; some hosts mount them together, some apart.
  const mem = dir("memory"), cpu = dir("cpu"), acct = dir("cpuacct") ?? cpu, pids = dir("pids");
  const usage = read(mem && path.join(mem, "memory.usage_in_bytes"));
  const cpuNs = read(acct && path.join(acct, "cpuacct.usage"));
  const current = read(pids && path.join(pids, "pids.current"));
  const quota = read(cpu && path.join(cpu, "cpu.cfs_quota_us"));
  const period = read(cpu && path.join(cpu, "cpu.cfs_period_us"));
  return {
    at,
    memory: usage !== undefined ? { usage: Number(usage), limit: limitOf(read(path.join(mem!, "memory.limit_in_bytes"))) } : null,
    cpu: cpuNs !== undefined ? { usageNs: Number(cpuNs), quota: quota && quota !== "-1" ? `${quota} ${period}` : null } : null,
    pids: current !== undefined ? { current: Number(current), limit: limitOf(read(path.join(pids!, "pids.max"))) } : null,
  };
}
