// The sandbox facts a lab's text and scripts are made with ({{sandbox.cgroup}}, if=cpuset ...) are
// measured in a real sandbox of the orchestrator's driver, not assumed from the host: a VM driver's
// guest runs a kernel of its own (a uml guest is cgroup v2 without cpuset on a v1 host). Here a real
// namespaces sandbox corrects facts that start out wrong, once; a failed measurement leaves the
// facts as they were and is tried again.
import os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespacesDriver } from "@berth/sandbox";
import { LearnerContexts, hostSandboxFacts, type TrustedRun } from "../src/labs/learner-context.js";

const driver = createNamespacesDriver();
const id = `t-facts-${process.pid.toString(36)}`;

beforeAll(async () => {
  await driver.prepare();
  await driver.create({ id, hostname: "facts" });
}, 120_000);

afterAll(async () => {
  await driver.destroy(id).catch(() => {});
});

describe("sandbox facts", () => {
  it("are measured in the first sandbox, once, and replace what was assumed", async () => {
    const host = hostSandboxFacts("namespaces");
    const wrong = { cgroup: host.cgroup === "v1" ? ("v2" as const) : ("v1" as const), arch: "mips", cpuset: "no" as const };
    const contexts = new LearnerContexts(Buffer.alloc(32, 7), wrong);
    let runs = 0;
    const run: TrustedRun = (script) => {
      runs++;
      return driver.execTrusted(id, script, { timeoutMs: 10_000, maxOutputBytes: 4096 });
    };
    await contexts.measureIn(run);
    expect(contexts.facts.cgroup).toBe(host.cgroup);
    expect(contexts.facts.arch).toBe(os.machine());
    expect(contexts.facts.cpuset).toMatch(/^(yes|no)$/);
    await contexts.measureIn(run);
    expect(runs).toBe(1);
  });

  it("keep what they were when the measurement fails, and the next sandbox is asked again", async () => {
    const assumed = hostSandboxFacts("uml");
    const contexts = new LearnerContexts(Buffer.alloc(32, 7), assumed);
    await contexts.measureIn(async () => ({ exitCode: 1, stdout: "cgroup=v1\n" }));
    expect(contexts.facts).toEqual(assumed);
    await contexts.measureIn((script) => driver.execTrusted(id, script, { timeoutMs: 10_000, maxOutputBytes: 4096 }));
    expect(contexts.facts.arch).toBe(os.machine());
  });
});
