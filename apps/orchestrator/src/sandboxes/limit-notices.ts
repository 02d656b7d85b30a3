// When a limit acts, the learner is told, in their terminal, which limit and its value: a process
// the kernel killed at the memory limit, forks refused at the pids limit, a full disk, a sandbox
// reaped. The kernel says nothing in the shell for the first three ("Killed", or "fork: retry:
// Resource temporarily unavailable", or "No space left on device" at best), and a reaped
// sandbox just goes away.
//
// The SandboxManager reads each live sandbox's stats every LIMIT_WATCH_MS and passes them here
// with the last reading; the counters only grow, so an increase is an event. Notices of one kind
// are repeated at most every NOTICE_REPEAT_MS (a fork bomb hits the pids limit thousands of times).
import type { SandboxLimits, SandboxStats } from "@berth/sandbox";

export const LIMIT_WATCH_MS = 2000;
export const NOTICE_REPEAT_MS = 30_000;

type Kind = "memory" | "pids" | "disk";

export interface LimitReading {
  oomKills: number;
  memoryLimitHits: number;
  pidsLimitHits: number;
  diskFull: boolean;
  /** When each kind of notice was last given (ms). */
  noticed: Partial<Record<Kind, number>>;
}

const MiB = 1024 * 1024;

/** 512 MiB, 4 GiB, 1.5 GiB. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${+(bytes / (1024 * MiB)).toFixed(1)} GiB`;
  return `${Math.round(bytes / MiB)} MiB`;
}

/** Full: less than 1% (at least 16 MiB) left; no longer full once 5% are free again. */
function diskFull(disk: SandboxStats["disk"], wasFull: boolean): boolean {
  if (!disk || disk.sizeBytes <= 0) return false;
  const free = disk.sizeBytes - disk.usedBytes;
  return wasFull ? free < disk.sizeBytes * 0.05 : free < Math.max(16 * MiB, disk.sizeBytes * 0.01);
}

/**
 * The notices that this reading calls for, compared with the last one (undefined: the first look
 * at this sandbox, which only sets the baseline, but a disk that is full already is said).
 */
export function limitNotices(prev: LimitReading | undefined, stats: SandboxStats, limits: SandboxLimits, now = Date.now()): { reading: LimitReading; notices: string[] } {
  const reading: LimitReading = {
    oomKills: stats.oomKills ?? 0,
    memoryLimitHits: stats.memoryLimitHits ?? 0,
    pidsLimitHits: stats.pidsLimitHits ?? 0,
    diskFull: diskFull(stats.disk, prev?.diskFull ?? false),
    noticed: { ...prev?.noticed },
  };
  const notices: string[] = [];
  const say = (kind: Kind, text: string) => {
    const last = reading.noticed[kind];
    if (last !== undefined && now - last < NOTICE_REPEAT_MS) return;
    reading.noticed[kind] = now;
    notices.push(`[Berth] ${text}`);
  };
  if (prev) {
    // (v1 sums the kills over the subtree: a container's cgroup that was removed takes its count with it)
    const killed = reading.oomKills - prev.oomKills;
    if (killed > 0) {
      const who = killed === 1 ? "A process was killed" : `${killed} processes were killed`;
      if (reading.memoryLimitHits > prev.memoryLimitHits) say("memory", `${who}: your sandbox reached its memory limit of ${formatBytes(limits.memoryBytes)}.`);
      else say("memory", `${who}: a container reached its own memory limit (docker run --memory).`);
    }
    if (reading.pidsLimitHits > prev.pidsLimitHits) say("pids", `New processes were refused: your sandbox reached its limit of ${limits.pids} processes (tasks and threads). End some to start others.`);
  }
  if (reading.diskFull && !prev?.diskFull) say("disk", `Your sandbox's disk is full: it reached its limit of ${formatBytes(limits.diskBytes)}. Delete files (or docker images: docker system prune) to write again.`);
  return { reading, notices };
}

/** What to tell the learner's terminals when their sandbox ends, by the reason it ended for. */
export function endNotice(reason: string, limits: { idleTimeoutMs: number; maxLifetimeMs: number }): string | undefined {
  const minutes = (ms: number) => `${Math.round(ms / 60_000)} minutes`;
  switch (reason) {
    case "idle":
      return `[Berth] This sandbox is shutting down: nobody used it for ${minutes(limits.idleTimeoutMs)} (the idle limit). Open the lab again for a new one.`;
    case "expired":
      return `[Berth] This sandbox is shutting down: it reached its maximum lifetime of ${minutes(limits.maxLifetimeMs)}. Open the lab again for a new one.`;
    default:
      return undefined;
  }
}
