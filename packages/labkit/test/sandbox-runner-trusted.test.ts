// The sandbox runner gives checks and setups (`trusted: true`) to the driver's execTrusted, as
// grading does, and solutions to the agent, as the learner's shell: what a check sees there
// (Berth's tools, HOME=/, no pid of its own in the sandbox) and what a solution starts (a process
// that keeps running) differ. As root, with a real Berth sandbox.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSandboxRunner, type DisposableRunner } from "../src/runners/index.js";
import { labDriver } from "./lab-sandbox.js";

describe("createSandboxRunner: trusted and untrusted scripts", () => {
  let runner: DisposableRunner;
  beforeAll(async () => {
    runner = await createSandboxRunner(await labDriver(), "runner-trusted");
  });
  afterAll(async () => {
    await runner?.dispose();
  });

  it("a check runs trusted, a solution as the learner's shell, on the same sandbox", async () => {
    // The learner's own bash first in PATH: a solution meets it, a check does not.
    await runner.exec("printf '#!/bin/sh\\necho fake\\n' > /usr/local/bin/bash; chmod +x /usr/local/bin/bash", { timeoutMs: 10_000 });
    expect((await runner.exec("echo real", { timeoutMs: 10_000 })).stdout).toBe("fake\n");
    expect(await runner.exec('echo "$HOME"; ls /sandbox/usr/local/bin/bash', { timeoutMs: 10_000, trusted: true })).toMatchObject({ exitCode: 0, stdout: "/\n/sandbox/usr/local/bin/bash\n" });
    const gone = await runner.exec("rm /sandbox/usr/local/bin/bash; echo removed", { timeoutMs: 10_000, trusted: true });
    expect(gone.stdout).toBe("removed\n");
    // What a solution starts keeps running; what a check starts ends with it.
    await runner.exec("setsid sleep 3127 >/dev/null 2>&1 < /dev/null &", { timeoutMs: 10_000 });
    await runner.exec("setsid sleep 3128 >/dev/null 2>&1 < /dev/null &", { timeoutMs: 10_000, trusted: true });
    expect((await runner.exec("pgrep -fa 'sleep 312[78]' | sed 's/^[0-9]* //'", { timeoutMs: 10_000, trusted: true })).stdout).toBe("sleep 3127\n");
    const late = await runner.exec("sleep 20", { timeoutMs: 500, trusted: true });
    expect(late).toMatchObject({ timedOut: true, exitCode: 137 });
  });
});
