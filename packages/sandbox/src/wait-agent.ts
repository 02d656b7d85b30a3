// Every driver's create() ends the same way: poll the new sandbox's agent socket until the agent
// answers `health`, and give up early when the sandbox (container, guest, VM) is gone. One loop for
// all three drivers, so a fix to the wait reaches each of them. Also their one probe of a UNIX socket.
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { AgentClient } from "./agent-client.js";
import type { AgentEndpoint } from "./driver.js";

export interface WaitForAgentOptions {
  /** Give up after this long (ms). */
  timeoutMs: number;
  /** One connect + health attempt may take this long (ms); a slow guest needs more. */
  attemptTimeoutMs: number;
  /** Pause between attempts (ms). */
  intervalMs: number;
  /** Null while the sandbox runs; else why it is gone (thrown as the error). */
  gone(): Promise<string | null> | string | null;
}

export async function waitForAgentHealth(ep: AgentEndpoint, opts: WaitForAgentOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: Error | undefined;
  while (Date.now() < deadline) {
    if (existsSync(ep.socketPath)) {
      try {
        const client = await AgentClient.connect(ep, { timeoutMs: opts.attemptTimeoutMs });
        try {
          await client.request({ op: "health" });
          return;
        } finally {
          client.close();
        }
      } catch (err) {
        last = err as Error;
      }
    }
    const why = await opts.gone();
    if (why) throw new Error(why);
    await new Promise((r) => setTimeout(r, opts.intervalMs));
  }
  throw new Error(`the agent did not answer health within ${opts.timeoutMs} ms${last ? ` (${last.message})` : ""}`);
}

/** Whether something accepts connections on a UNIX socket now (a registry gateway, a mux). */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (alive: boolean) => {
      s.destroy();
      resolve(alive);
    };
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
    s.setTimeout(1000, () => done(false));
  });
}
