// A LabRunner backed by a real Berth sandbox from @berth/sandbox (the same kind a learner gets):
// one sandbox per lab, its agent's exec op running `bash -s` with the script on stdin.
import { AgentClient, type SandboxDriver } from "@berth/sandbox";
import { randomBytes } from "node:crypto";
import { constants } from "node:os";
import type { DisposableRunner } from "./host-namespaces.js";

/** The namespaces driver, looked up at run time so labkit does not break while it is missing. */
export async function namespacesDriver(): Promise<SandboxDriver | undefined> {
  const mod = (await import("@berth/sandbox")) as Record<string, unknown>;
  const factory = mod.createNamespacesDriver;
  return typeof factory === "function" ? (factory as () => SandboxDriver)() : undefined;
}

export async function createSandboxRunner(driver: SandboxDriver, labId: string): Promise<DisposableRunner> {
  const id = `labkit-${labId}`.slice(0, 50) + `-${randomBytes(3).toString("hex")}`;
  await driver.create({ id, hostname: "berth-sandbox" });
  let client: AgentClient;
  try {
    client = await AgentClient.connect(await driver.connect(id));
  } catch (e) {
    await driver.destroy(id);
    throw e;
  }
  return {
    async exec(script, { timeoutMs }) {
      const r = await client.request({
        op: "exec",
        cmd: ["bash", "-s"],
        stdin: Buffer.from(script).toString("base64"),
        timeoutMs,
      });
      const signalExit = r.signal ? 128 + (constants.signals[r.signal as NodeJS.Signals] ?? 0) : 1;
      return {
        exitCode: r.exitCode ?? signalExit,
        stdout: Buffer.from(r.stdout, "base64").toString("utf8"),
        stderr: Buffer.from(r.stderr, "base64").toString("utf8"),
        timedOut: r.timedOut,
      };
    },
    async dispose() {
      client.close();
      await driver.destroy(id);
    },
  };
}


