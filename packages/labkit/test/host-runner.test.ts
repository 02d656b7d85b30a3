// The unshare sandbox labkit tests labs in when @berth/sandbox is not used. Real namespaces, root.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHostNamespacesRunner, type DisposableRunner } from "../src/runners/index.js";

/** The runners' host cgroups: under the memory hierarchy on v1, at the top on v2. */
const cgroupParent = existsSync("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
const labkitCgroups = () => readdirSync(cgroupParent).filter((d) => d.startsWith("labkit-"));

describe("createHostNamespacesRunner", () => {
  let runner: DisposableRunner;
  beforeAll(async () => {
    runner = await createHostNamespacesRunner();
  });
  afterAll(async () => {
    await runner?.dispose();
  });
  const run = (script: string, timeoutMs = 10_000) => runner.exec(script, { timeoutMs });

  it("is a separate box: own hostname, PID 1, network, empty /root and /tmp", async () => {
    const r = await run("hostname; readlink /proc/1/ns/pid; ip -o link | wc -l; ls -A /root /tmp | wc -l; echo err >&2; exit 3");
    const [name, , links, files] = r.stdout.trim().split("\n");
    expect(name).toBe("berth-sandbox");
    expect(name).not.toBe(hostname());
    expect(links).toBe("1"); // loopback only
    expect(files).toBe("3"); // the two "dir:" headers and a blank line: both empty
    expect(r).toMatchObject({ exitCode: 3, stderr: "err\n", timedOut: false });
    const outside = await run("readlink /proc/self/ns/uts");
    expect(outside.stdout.trim()).not.toBe((await import("node:fs")).readlinkSync("/proc/self/ns/uts"));
  });

  it("keeps state between calls, including detached processes", async () => {
    await run("echo kept > /root/state; setsid -f sleep 300 </dev/null >/dev/null 2>&1");
    const r = await run("cat /root/state; pgrep -x sleep | wc -l");
    expect(r.stdout).toBe("kept\n2\n"); // the init's own sleep and ours
    expect(existsSync("/root/state") && (await import("node:fs")).readFileSync("/root/state", "utf8") === "kept\n").toBe(false);
  });

  it("gives the sandbox a cgroup subtree of its own", async () => {
    const r = await run("ls /sys/fs/cgroup; cat /proc/self/cgroup | grep -c ':/$'");
    expect(r.stdout).toMatch(/memory|cgroup\.controllers/);
    const v1 = existsSync("/sys/fs/cgroup/memory/cgroup.procs");
    if (v1) {
      await run("mkdir /sys/fs/cgroup/memory/inside-only");
      expect(existsSync("/sys/fs/cgroup/memory/inside-only")).toBe(false);
      const mine = readdirSync("/sys/fs/cgroup/memory").filter((d) => d.startsWith("labkit-"));
      expect(mine.some((d) => existsSync(`/sys/fs/cgroup/memory/${d}/inside-only`))).toBe(true);
    }
  });

  it("stops a script at its timeout", async () => {
    const t0 = Date.now();
    const r = await run("echo started; sleep 30", 500);
    expect(r.timedOut).toBe(true);
    expect(r.stdout).toBe("started\n");
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("dispose kills everything inside and removes its cgroups", async () => {
    const other = await createHostNamespacesRunner();
    await other.exec("setsid -f sleep 301 </dev/null >/dev/null 2>&1; sleep 0.2", { timeoutMs: 5000 });
    const hostPid = Number(execFileSync("pgrep", ["-xf", "sleep 301"], { encoding: "utf8" }).trim());
    expect(hostPid).toBeGreaterThan(1);
    expect(existsSync(`/proc/${hostPid}`)).toBe(true);
    const before = labkitCgroups().length;
    await other.dispose();
    expect(existsSync(`/proc/${hostPid}`)).toBe(false);
    const after = labkitCgroups().length;
    expect(after).toBe(before - 1);
    await expect(other.exec("true", { timeoutMs: 1000 })).rejects.toThrow(/disposed/);
  });
});
