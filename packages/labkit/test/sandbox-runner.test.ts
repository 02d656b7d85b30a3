// The runner `labkit test` proves labs with: a real Berth sandbox from @berth/sandbox's namespaces
// driver (runc, a user namespace, the agent's exec), one per lab, destroyed by dispose(). As root;
// the first prepare() on a machine builds the base root filesystem (about 30 s), later ones take
// about a second. The workshop's labs themselves are proved in test-lab.test.ts.
import { execFileSync } from "node:child_process";
import { readlinkSync } from "node:fs";
import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SandboxDriver } from "@berth/sandbox";
import { prepareScript } from "../src/index.js";
import { createSandboxRunner, sandboxDriver, type DisposableRunner } from "../src/runners/index.js";
import { labDriver } from "./lab-sandbox.js";

describe("createSandboxRunner", () => {
  let driver: SandboxDriver;
  let runner: DisposableRunner;
  beforeAll(async () => {
    driver = await labDriver();
    runner = await createSandboxRunner(driver, "runner-test");
  });
  afterAll(async () => {
    await runner?.dispose();
  });

  it("runs bash -s with exit codes, stdout, stderr, state kept, and timeouts", async () => {
    expect(await runner.exec("echo out; echo err >&2; echo kept > /root/f; exit 5", { timeoutMs: 10_000 })).toEqual({
      exitCode: 5,
      stdout: "out\n",
      stderr: "err\n",
      timedOut: false,
    });
    expect((await runner.exec(prepareScript("cat; cat /root/f"), { timeoutMs: 10_000 })).stdout).toBe("kept\n");
    const t0 = Date.now();
    const slow = await runner.exec("echo started; sleep 20", { timeoutMs: 500 });
    expect(slow).toMatchObject({ timedOut: true, stdout: "started\n" });
    expect(slow.exitCode).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("is a box of its own: its hostname, namespaces and /root are not the host's", async () => {
    const r = await runner.exec("hostname; readlink /proc/self/ns/uts /proc/self/ns/pid /proc/self/ns/net; echo only-inside > /root/inside", { timeoutMs: 10_000 });
    const [name, uts, pid, net] = r.stdout.trim().split("\n");
    expect(name).toBe("berth-sandbox");
    expect(name).not.toBe(hostname());
    expect(uts).not.toBe(readlinkSync("/proc/self/ns/uts"));
    expect(pid).not.toBe(readlinkSync("/proc/self/ns/pid"));
    expect(net).not.toBe(readlinkSync("/proc/self/ns/net"));
    expect(execFileSync("sh", ["-c", "cat /root/inside 2>/dev/null || echo absent"], { encoding: "utf8" })).toBe("absent\n");
  });

  it("dispose() ends everything the sandbox ran and destroys it", async () => {
    const other = await createSandboxRunner(driver, "runner-dispose");
    await other.exec("setsid -f sleep 3301 </dev/null >/dev/null 2>&1; sleep 0.2", { timeoutMs: 10_000 });
    const hostPid = Number(execFileSync("pgrep", ["-xf", "sleep 3301"], { encoding: "utf8" }).trim());
    expect(hostPid).toBeGreaterThan(1);
    const id = (await driver.list()).map((s) => s.id).find((i) => i.startsWith("labkit-runner-dispose-"));
    expect(id).toBeDefined();
    await other.dispose();
    expect(execFileSync("sh", ["-c", "pgrep -xf 'sleep 3301' || true"], { encoding: "utf8" })).toBe("");
    expect((await driver.list()).map((s) => s.id)).not.toContain(id);
    await expect(other.exec("true", { timeoutMs: 1000 })).rejects.toThrow();
  });
});

describe("sandboxDriver", () => {
  it("makes drivers through @berth/sandbox's factory only, and names the known ones for a typo", () => {
    expect(sandboxDriver("namespaces").name).toBe("namespaces");
    expect(() => sandboxDriver("unshare")).toThrow(/unknown sandbox driver "unshare": use one of namespaces, uml, qemu/);
  });
});
