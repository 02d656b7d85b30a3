/**
 * `docker stats`: one sample of a container's cgroup in the Docker API's shape. The CLI computes
 * CPU % from two samples (this one and `precpu_stats`, the one before) against the whole machine's
 * CPU time, and memory use as usage minus inactive file pages, against `limit`.
 */
import os from "node:os";
import { machineMemory, networkStats, systemCpuNs, type CgroupStats } from "../cgroups/stats";
import type { Container } from "./container";

export interface StatsSample {
  read: string;
  cpu_stats: CpuStats;
  [key: string]: unknown;
}

interface CpuStats {
  cpu_usage: { total_usage: number; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage: number;
  online_cpus: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

const ZERO_CPU: CpuStats = { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: 0, online_cpus: 0, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };

/** A sample of a running container; a stopped one has only its name and id (as dockerd answers). */
export function statsSample(c: Container, previous?: StatsSample): StatsSample {
  const now = new Date().toISOString();
  const base = { read: now, preread: previous?.read ?? "0001-01-01T00:00:00Z", name: c.record.Name, id: c.id };
  if (!c.running || !c.cgroup) return { ...base, read: "0001-01-01T00:00:00Z", cpu_stats: ZERO_CPU, precpu_stats: ZERO_CPU, memory_stats: {}, pids_stats: {}, blkio_stats: {} };
  const s: CgroupStats = c.cgroup.stats();
  const cpu: CpuStats = {
    cpu_usage: { total_usage: s.cpu.totalNs, usage_in_kernelmode: s.cpu.kernelNs, usage_in_usermode: s.cpu.userNs },
    system_cpu_usage: systemCpuNs(),
    online_cpus: os.cpus().length,
    throttling_data: { periods: s.cpu.periods, throttled_periods: s.cpu.throttledPeriods, throttled_time: s.cpu.throttledNs },
  };
  // Without a limit of its own a container is bounded by the machine: dockerd shows that figure.
  const machine = machineMemory();
  const limit = s.memory.limit !== null && s.memory.limit < machine ? s.memory.limit : machine;
  const networks = networkStats(c.record.State.Pid);
  return {
    ...base,
    pids_stats: { current: s.pids.current, ...(s.pids.limit !== null ? { limit: s.pids.limit } : {}) },
    blkio_stats: { io_service_bytes_recursive: s.blkio, io_serviced_recursive: [], io_queue_recursive: [], io_service_time_recursive: [], io_wait_time_recursive: [], io_merged_recursive: [], io_time_recursive: [], sectors_recursive: [] },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpu,
    precpu_stats: previous?.cpu_stats ?? ZERO_CPU,
    memory_stats: { usage: s.memory.usage, ...(s.memory.maxUsage ? { max_usage: s.memory.maxUsage } : {}), stats: s.memory.stats, limit },
    ...(Object.keys(networks).length ? { networks } : {}),
  };
}
