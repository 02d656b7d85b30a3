// The labs in real Berth sandboxes (@berth/sandbox's namespaces driver: runc, a user namespace,
// the agent's exec): what `labkit test` does by default. As root; the first prepare() builds the
// base root filesystem (about 30 s), later runs take seconds.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SandboxDriver } from "@berth/sandbox";
import { loadLabs, prepareScript, testLab } from "../src/index.js";
import { createSandboxRunner, namespacesDriver, type DisposableRunner } from "../src/runners/index.js";

const LABS_DIR = path.resolve(import.meta.dirname, "../../../labs");

describe("createSandboxRunner", () => {
  let driver: SandboxDriver;
  let runner: DisposableRunner;
  beforeAll(async () => {
    const d = await namespacesDriver();
    expect(d, "@berth/sandbox exports createNamespacesDriver").toBeDefined();
    driver = d!;
    await driver.prepare();
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
    const slow = await runner.exec("sleep 20", { timeoutMs: 500 });
    expect(slow.timedOut).toBe(true);
    expect(slow.exitCode).not.toBe(0);
  });
});

describe("the workshop's labs in real sandboxes", async () => {
  const { labs } = await loadLabs(LABS_DIR);
  for (const id of ["namespaces-by-hand", "cgroups-by-hand"]) {
    it(`${id} passes labkit test`, async () => {
      const driver = (await namespacesDriver())!;
      await driver.prepare();
      const runner = await createSandboxRunner(driver, id);
      try {
        const report = await testLab(labs.find((l) => l.id === id)!, runner);
        expect(report.checks.flatMap((c) => c.problems.map((p) => `${c.checkId}: ${p}`))).toEqual([]);
        expect(report.ok).toBe(true);
      } finally {
        await runner.dispose();
      }
      // A lab takes 25-40 s here alone, the first one also prepares the driver; a loaded machine doubles that.
    }, 180_000);
  }
});
