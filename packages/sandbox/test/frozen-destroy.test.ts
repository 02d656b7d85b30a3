// A learner can freeze their own processes (chapter 16 teaches the freezer). A frozen process
// cannot die, so destroy() must thaw the sandbox's cgroups first, or the sandbox could never go.
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../src/index.js";
import { sh, testDriver, testId } from "./sandbox-fixture.js";

const driver = testDriver();
const id = testId("frz");
let client: AgentClient | undefined;

beforeAll(async () => {
  await driver.prepare();
  await driver.create({ id, hostname: "frozen" });
  client = await AgentClient.connect(await driver.connect(id));
});

afterAll(async () => {
  client?.close();
  await driver.destroy(id).catch(() => undefined);
});

describe("destroy and the freezer", () => {
  it("removes a sandbox whose learner froze a process in a cgroup of their own", async () => {
    // v1: a child of the sandbox's freezer cgroup; v2: cgroup.freeze in a child of its box.
    const freeze = [
      "set -e",
      "sleep 600 </dev/null >/dev/null 2>&1 &",
      "pid=$!",
      "if [ -d /sys/fs/cgroup/freezer ]; then d=/sys/fs/cgroup/freezer/ice; mkdir -p $d; echo $pid > $d/tasks; echo FROZEN > $d/freezer.state; cat $d/freezer.state;",
      "else d=/sys/fs/cgroup/ice; mkdir -p $d; echo $pid > $d/cgroup.procs; echo 1 > $d/cgroup.freeze; sleep 0.2; grep frozen $d/cgroup.events; fi",
    ].join("\n");
    const r = await sh(client!, freeze);
    expect(r.stdout, r.stderr).toMatch(/FROZEN|FREEZING|frozen 1/);
    client!.close();
    client = undefined;
    const t0 = Date.now();
    await driver.destroy(id);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(existsSync(driver.sandboxDir(id))).toBe(false);
    expect((await driver.list()).some((s) => s.id === id)).toBe(false);
  });
});
