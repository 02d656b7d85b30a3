/**
 * Limits and isolation hold: the memory limit OOM-kills, --pids-limit stops a fork bomb, CPU limits
 * land in the cgroup files, capabilities match Docker's default set, and the recipe tells the truth.
 */
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker, request, startBerth } from "./harness";

let berth: Awaited<ReturnType<typeof startBerth>>;

beforeAll(async () => {
  berth = await startBerth();
});
afterAll(async () => {
  await berth?.stop();
});

async function recipe(name: string) {
  const r = await request(berth.socket, "GET", `/berth/containers/${name}/recipe`);
  expect(r.status).toBe(200);
  return JSON.parse(r.body);
}

describe("limits", () => {
  it("a memory hog is OOM-killed at its limit and State.OOMKilled is set", async () => {
    const run = await docker(berth, ["run", "--name", "hog", "--memory", "16m", "--memory-swap", "16m", "busybox", "sh", "-c", "x=a; while true; do x=$x$x; done"]);
    expect(run.code).toBe(137);
    const state = await docker(berth, ["inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog"]);
    expect(state.stdout.trim()).toBe("true 137");
    // A container that stays under its limit is not marked.
    const fine = await docker(berth, ["run", "--name", "fine", "--memory", "16m", "busybox", "true"]);
    expect(fine.code).toBe(0);
    expect((await docker(berth, ["inspect", "-f", "{{.State.OOMKilled}}", "fine"])).stdout.trim()).toBe("false");
    await docker(berth, ["rm", "hog", "fine"]);
  });

  it("a fork bomb hits --pids-limit and the engine stays responsive", async () => {
    const run = await docker(berth, ["run", "-d", "--name", "bomb", "--pids-limit", "20", "busybox", "sh", "-c", "(f(){ f | f & }; f) 2>/dev/null; sleep 30"]);
    expect(run.code).toBe(0);
    const r = await recipe("bomb");
    const pidsDir = r.cgroup.version === 1 ? r.cgroup.paths.find((p: string) => p.includes("/pids/")) : r.cgroup.paths[0];
    // Wait until the bomb has run into the wall: the kernel counts refused forks in pids.events.
    let refused = 0;
    for (let i = 0; i < 50 && refused === 0; i++) {
      await new Promise((res) => setTimeout(res, 100));
      refused = Number(/max (\d+)/.exec(fs.readFileSync(`${pidsDir}/pids.events`, "utf8"))?.[1] ?? 0);
    }
    expect(refused).toBeGreaterThan(0);
    expect(Number(fs.readFileSync(`${pidsDir}/pids.current`, "utf8"))).toBeLessThanOrEqual(20);
    const ps = await docker(berth, ["ps", "--filter", "name=bomb", "--format", "{{.Names}}"]);
    expect(ps.stdout.trim()).toBe("bomb");
    const rm = await docker(berth, ["rm", "-f", "bomb"]);
    expect(rm.code).toBe(0);
  });

  it("writes --memory, --cpus, --cpu-shares, --cpuset-cpus, --pids-limit into the cgroup", async () => {
    const run = await docker(berth, ["run", "-d", "--name", "limited", "--memory", "64m", "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "33", "busybox", "sleep", "60"]);
    expect(run.code).toBe(0);
    const r = await recipe("limited");
    const writes = Object.fromEntries(r.cgroup.writes.map((w: { file: string; value: string }) => [w.file.split("/").pop(), w.value]));
    if (r.cgroup.version === 1) {
      expect(writes["memory.limit_in_bytes"]).toBe(String(64 << 20));
      expect(writes["cpu.cfs_quota_us"]).toBe("50000");
      expect(writes["cpu.cfs_period_us"]).toBe("100000");
      expect(writes["cpu.shares"]).toBe("512");
      expect(writes["cpuset.cpus"]).toBe("0");
      expect(writes["pids.max"]).toBe("33");
      // The files on disk hold the values, and the container's PID 1 is in every hierarchy.
      const memDir = r.cgroup.paths.find((p: string) => p.includes("/memory/"));
      expect(fs.readFileSync(`${memDir}/memory.limit_in_bytes`, "utf8").trim()).toBe(String(64 << 20));
      for (const p of r.cgroup.paths) expect(fs.readFileSync(`${p}/cgroup.procs`, "utf8").split("\n")).toContain(String(r.hostPid));
    } else {
      expect(writes["memory.max"]).toBe(String(64 << 20));
      expect(writes["cpu.max"]).toBe("50000 100000");
      expect(writes["pids.max"]).toBe("33");
    }
    const inside = await docker(berth, ["exec", "limited", "cat", "/proc/self/status"]);
    expect(inside.stdout).toMatch(/Cpus_allowed_list:\s+0\n/);
    await docker(berth, ["rm", "-f", "limited"]);
    // Its cgroup is gone with it.
    for (const p of r.cgroup.paths) expect(fs.existsSync(p)).toBe(false);
  });
});

describe("isolation", () => {
  it("keeps Docker's default capabilities, honours --cap-drop and --cap-add", async () => {
    const capEff = async (...flags: string[]) => {
      const r = await docker(berth, ["run", "--rm", ...flags, "busybox", "grep", "CapEff", "/proc/self/status"]);
      expect(r.code).toBe(0);
      return BigInt(`0x${r.stdout.trim().split(/\s+/)[1]}`);
    };
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    expect(await capEff()).toBe(0xa80425fbn);
    expect(await capEff("--cap-drop", "NET_RAW")).toBe(0xa80405fbn);
    expect(await capEff("--cap-add", "SYS_ADMIN")).toBe(0xa80425fbn | (1n << 21n));
    expect(await capEff("--cap-drop", "ALL")).toBe(0n);
    const bad = await docker(berth, ["run", "--rm", "--cap-add", "NOPE", "busybox", "true"]);
    expect(bad.code).toBe(125);
    // --privileged: every capability the engine itself holds (run-options.test.ts has more).
    expect(await capEff("--privileged")).toBe(BigInt(`0x${/CapBnd:\s*([0-9a-f]+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))![1]}`));
  });

  it("gives each container its own namespaces, a loopback, a read-only /sys and --read-only", async () => {
    const run = await docker(berth, ["run", "-d", "--name", "iso", "busybox", "sleep", "60"]);
    expect(run.code).toBe(0);
    const r = await recipe("iso");
    for (const type of ["pid", "mnt", "uts", "ipc", "net"]) {
      const ns = r.namespaces.find((n: { type: string }) => n.type === type);
      expect(ns, type).toBeDefined();
      expect(`${type}:[${ns.inode}]`).not.toBe(fs.readlinkSync(`/proc/self/ns/${type}`));
      expect(fs.readlinkSync(`/proc/${r.hostPid}/ns/${type}`)).toBe(`${type}:[${ns.inode}]`);
    }
    expect(r.rootfs.command).toMatch(/^mount -t overlay overlay -o lowerdir=.*,upperdir=.*,workdir=/);
    expect(r.mounts.map((m: { destination: string }) => m.destination)).toEqual(expect.arrayContaining(["/", "/proc", "/dev", "/dev/pts", "/sys"]));
    const net = await docker(berth, ["exec", "iso", "cat", "/proc/net/dev"]);
    expect(net.stdout).toContain("lo:");
    expect(net.stdout).not.toMatch(/eth0|veth|docker0/);
    const sys = await docker(berth, ["exec", "iso", "touch", "/sys/x"]);
    expect(sys.code).not.toBe(0);
    await docker(berth, ["rm", "-f", "iso"]);
    const ro = await docker(berth, ["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    expect(ro.code).toBe(1);
    expect(ro.stderr).toMatch(/Read-only file system/);
  });
});
