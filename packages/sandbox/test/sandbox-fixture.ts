// Shared by the sandbox tests: a driver on the real state dir (the base rootfs is built once and
// cached there), unique ids, and small ways to run commands and watch a terminal.
import { readFileSync } from "node:fs";
import { AgentClient, createNamespacesDriver, type NamespacesDriver, type SandboxDriver, type SandboxSpec } from "../src/index.js";
import { execText } from "../src/testsuite/driver-conformance.js";

export function testDriver(): NamespacesDriver {
  return createNamespacesDriver();
}

/** Short (the agent socket path must fit in 107 bytes) and unique per run. */
export function testId(name: string): string {
  return `t-${name}-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
}

/** Runs a shell command line in the sandbox and decodes the output (tests only: the product keeps bytes). */
export const sh = execText;

/**
 * A new sandbox with its agent connected, once the engine inside answers the docker CLI (the engine
 * starts after the agent). For tests of the engine in a sandbox; destroy(id) after.
 */
export async function sandboxWithEngine(driver: NamespacesDriver, id: string, hostname: string): Promise<AgentClient> {
  await driver.prepare();
  await driver.create({ id, hostname });
  const client = await AgentClient.connect(await driver.connect(id));
  for (const t0 = Date.now(); ; ) {
    if ((await sh(client, "docker version >/dev/null 2>&1")).exitCode === 0) return client;
    if (Date.now() - t0 > 30_000) throw new Error(`the engine did not answer: ${(await sh(client, "cat /var/log/berth-engine.log")).stdout}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sandboxes made side by side, each with its agent connected; the clients in the order given. */
export async function connectedSandboxes(driver: SandboxDriver, specs: SandboxSpec[]): Promise<AgentClient[]> {
  await Promise.all(specs.map((spec) => driver.create(spec)));
  return Promise.all(specs.map(async (spec) => AgentClient.connect(await driver.connect(spec.id))));
}

/** The other half of connectedSandboxes, for afterAll: what a failed beforeAll never made is skipped. */
export async function endSandboxes(driver: SandboxDriver | undefined, ids: string[], clients: (AgentClient | undefined)[]): Promise<void> {
  for (const c of clients) c?.close();
  await Promise.all(ids.map((id) => driver?.destroy(id).catch(() => {})));
}

export function terminal(client: AgentClient, handle: number) {
  const parts: Buffer[] = [];
  const sub = client.onOutput((h, bytes) => {
    if (h === handle) parts.push(bytes);
  });
  return {
    text: () => Buffer.concat(parts).toString("utf8"),
    async waitFor(pattern: string | RegExp, timeoutMs = 5000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = Buffer.concat(parts).toString("utf8");
        if (typeof pattern === "string" ? text.includes(pattern) : pattern.test(text)) return text;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(pattern)}; terminal shows ${JSON.stringify(text.slice(-400))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    dispose: () => sub.dispose(),
  };
}

/** Resident memory of every process in the sandbox, from the host's /proc. */
export function sandboxRss(hostPids: number[]): number {
  let total = 0;
  for (const pid of hostPids) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // Exited meanwhile.
    }
  }
  return total;
}

export function hostMounts(): string {
  return readFileSync("/proc/self/mounts", "utf8");
}
