// The LabRunner labkit proves labs with: a real Berth sandbox from @berth/sandbox (the same kind a
// learner gets, made by whichever SandboxDriver the caller picked), one sandbox per lab. Checks and setup run as grading runs them (the driver's execTrusted: trusted
// tools, out of the learner's reach); solutions through the agent's exec op, as the learner's own
// shell would run them (`bash -s` with the script on stdin), so what they start keeps running.
import { AgentClient, createSandboxDriver, DEFAULT_SANDBOX_DRIVER, type SandboxDriver, type SandboxDriverOptions } from "@berth/sandbox";
import { randomBytes } from "node:crypto";
import { constants } from "node:os";
import type { LabRunner } from "../test-lab.js";

/** A LabRunner that owns a sandbox: dispose() destroys it. */
export interface DisposableRunner extends LabRunner {
  dispose(): Promise<void>;
}

/**
 * A driver by name (`labkit test --driver uml`), through @berth/sandbox's factory: labkit reaches
 * every driver only through the SandboxDriver interface. Unknown names throw with the known ones.
 * `registryUpstream` (the lab registry, http://127.0.0.1:<port>) gives each sandbox the gateway a
 * learner's has, so labs whose solutions pull images can be proved.
 */
export function sandboxDriver(name: string, opts: SandboxDriverOptions = {}, onWarning?: (line: string) => void): SandboxDriver {
  return createSandboxDriver(name, opts, onWarning);
}

/** The default driver (namespaces), as the orchestrator makes learners' sandboxes. */
export function namespacesDriver(opts: SandboxDriverOptions = {}): SandboxDriver {
  return sandboxDriver(DEFAULT_SANDBOX_DRIVER, opts);
}

/** What a check may print (as the orchestrator's grading keeps). */
const OUTPUT_LIMIT = 16 * 1024;

/**
 * `idPrefix` starts the sandbox's id (default "labkit"): the orchestrator passes its instance's
 * prefix so that a sandbox left by a crash mid-proof is ended by its recovery at the next start.
 */
export async function createSandboxRunner(driver: SandboxDriver, labId: string, opts: { idPrefix?: string } = {}): Promise<DisposableRunner> {
  const id = `${opts.idPrefix ?? "labkit"}-${labId}`.slice(0, 50) + `-${randomBytes(3).toString("hex")}`;
  await driver.create({ id, hostname: "berth-sandbox" });
  let client: AgentClient;
  try {
    // The endpoint carries the driver's timeScale: the client stretches its handshake by it.
    client = await AgentClient.connect(await driver.connect(id));
  } catch (e) {
    await driver.destroy(id);
    throw e;
  }
  return {
    async exec(script, { timeoutMs, trusted }) {
      if (trusted) {
        const t = await driver.execTrusted(id, script, { timeoutMs, maxOutputBytes: OUTPUT_LIMIT });
        return {
          exitCode: t.exitCode ?? 137,
          stdout: t.stdout.toString("utf8"),
          stderr: t.stderr.toString("utf8"),
          timedOut: t.timedOut,
        };
      }
      const r = await client.request({
        op: "exec",
        cmd: ["bash", "-s"],
        stdin: Buffer.from(script).toString("base64"),
        // A lab's timeouts are written for a namespaces sandbox; a slower driver (a guest kernel)
        // says by how much (execTrusted above stretches its own).
        // (never past the agent's own cap on one exec, 10 minutes)
        timeoutMs: Math.min(600_000, Math.round(timeoutMs * (driver.timeScale ?? 1))),
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


