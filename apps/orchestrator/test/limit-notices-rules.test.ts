// The rules behind the limit notices (src/sandboxes/limit-notices.ts), without a sandbox: which
// reading calls for which notice, whose memory limit killed, how often a notice repeats, when a
// disk counts as full, and what a reaped sandbox says. (The real thing: limit-notices.test.ts.)
import { describe, expect, it } from "vitest";
import type { SandboxStats } from "@berth/sandbox";
import { endNotice, formatBytes, limitNotices, NOTICE_REPEAT_MS } from "../src/sandboxes/limit-notices.js";

const MiB = 1024 * 1024;
const limits = { memoryBytes: 512 * MiB, cpus: 1, pids: 256, diskBytes: 4096 * MiB };
const stats = (s: Partial<SandboxStats> = {}): SandboxStats => ({ memoryBytes: 0, pids: 10, cpuUsageNs: 0, oomKills: 0, memoryLimitHits: 0, pidsLimitHits: 0, disk: { usedBytes: 10 * MiB, sizeBytes: 4000 * MiB }, ...s });

describe("limit notices: the rules", () => {
  it("takes a baseline first, then names the limit and its value when a counter grows", () => {
    const first = limitNotices(undefined, stats({ oomKills: 3, memoryLimitHits: 3, pidsLimitHits: 9 }), limits, 0);
    expect(first.notices).toEqual([]); // what happened before we looked is not news
    const oom = limitNotices(first.reading, stats({ oomKills: 4, memoryLimitHits: 4, pidsLimitHits: 9 }), limits, 1000);
    expect(oom.notices).toEqual(["[Berth] A process was killed: your sandbox reached its memory limit of 512 MiB."]);
    const pids = limitNotices(oom.reading, stats({ oomKills: 4, memoryLimitHits: 4, pidsLimitHits: 12 }), limits, 2000);
    expect(pids.notices).toEqual(["[Berth] New processes were refused: your sandbox reached its limit of 256 processes (tasks and threads). End some to start others."]);
  });

  it("tells a container's own --memory limit from the sandbox's", () => {
    const base = limitNotices(undefined, stats(), limits, 0).reading;
    const r = limitNotices(base, stats({ oomKills: 2 }), limits, 1000);
    expect(r.notices).toEqual(["[Berth] 2 processes were killed: a container reached its own memory limit (docker run --memory)."]);
  });

  it("repeats a kind of notice at most every NOTICE_REPEAT_MS, and still takes the counters meanwhile", () => {
    let r = limitNotices(undefined, stats(), limits, 0);
    r = limitNotices(r.reading, stats({ pidsLimitHits: 100 }), limits, 1000);
    expect(r.notices).toHaveLength(1);
    r = limitNotices(r.reading, stats({ pidsLimitHits: 5000 }), limits, 3000);
    expect(r.notices).toEqual([]);
    expect(r.reading.pidsLimitHits).toBe(5000);
    r = limitNotices(r.reading, stats({ pidsLimitHits: 5001 }), limits, 1000 + NOTICE_REPEAT_MS);
    expect(r.notices).toHaveLength(1);
  });

  it("says a disk is full once (under 1%, at least 16 MiB, free) and again only after 5% were free", () => {
    const size = 4000 * MiB;
    const used = (free: number) => stats({ disk: { usedBytes: size - free, sizeBytes: size } });
    let r = limitNotices(undefined, used(1000 * MiB), limits, 0);
    r = limitNotices(r.reading, used(30 * MiB), limits, 1000);
    expect(r.notices).toEqual(["[Berth] Your sandbox's disk is full: it reached its limit of 4 GiB. Delete files (or docker images: docker system prune) to write again."]);
    r = limitNotices(r.reading, used(100 * MiB), limits, 2000 + NOTICE_REPEAT_MS); // 2.5% free: still full
    expect(r.notices).toEqual([]);
    r = limitNotices(r.reading, used(300 * MiB), limits, 3000 + NOTICE_REPEAT_MS);
    expect(r.reading.diskFull).toBe(false);
    r = limitNotices(r.reading, used(1 * MiB), limits, 4000 + 2 * NOTICE_REPEAT_MS);
    expect(r.notices).toHaveLength(1);
    // A sandbox without a disk of its own (made before there were disks) is never "full".
    expect(limitNotices(undefined, stats({ disk: undefined }), limits, 0).reading.diskFull).toBe(false);
  });

  it("says why a sandbox is reaped, with the limit, and nothing for other ends", () => {
    const config = { idleTimeoutMs: 30 * 60_000, maxLifetimeMs: 240 * 60_000 };
    expect(endNotice("idle", config)).toBe("[Berth] This sandbox is shutting down: nobody used it for 30 minutes (the idle limit). Open the lab again for a new one.");
    expect(endNotice("expired", config)).toMatch(/maximum lifetime of 240 minutes/);
    expect(endNotice("lost", config)).toBeUndefined();
    expect([formatBytes(512 * MiB), formatBytes(4096 * MiB), formatBytes(1536 * MiB)]).toEqual(["512 MiB", "4 GiB", "1.5 GiB"]);
  });
});
