// The conformance suite every SandboxDriver must pass (after containerd's content/testsuite): what
// the orchestrator and `labkit test` rely on, and nothing about how a driver does it. A driver's
// own test file calls sandboxDriverConformance({ name, makeDriver }); deeper, driver-specific
// tests (mounts, cgroup files) live beside it. Imported as "@berth/sandbox/testsuite" (it needs vitest).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../agent-client.js";
import type { SandboxDriver } from "../driver.js";

export interface ConformanceOptions {
  /** Shown in the test names. */
  name: string;
  /** A new driver instance on the same state each call (the suite uses a second one as "after a restart"). */
  makeDriver(): SandboxDriver;
  /**
   * How many times slower than the namespaces driver this driver runs processes (default 1): the
   * suite's own waits (a fork bomb's run, a check's head start) are stretched by it. A guest
   * kernel that traps every system call (uml) or emulates the CPU (qemu under TCG) needs it.
   */
  timeScale?: number;
}

export interface ExecText {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

/** Runs a shell command line in a sandbox and decodes its output (for tests: the product keeps bytes). */
export async function execText(client: AgentClient, script: string, opts: { timeoutMs?: number; maxOutputBytes?: number } = {}): Promise<ExecText> {
  const r = await client.request({ op: "exec", cmd: ["/bin/bash", "-c", script], ...opts });
  return {
    exitCode: r.exitCode,
    signal: r.signal,
    stdout: Buffer.from(r.stdout, "base64").toString("utf8"),
    stderr: Buffer.from(r.stderr, "base64").toString("utf8"),
    timedOut: r.timedOut,
    durationMs: r.durationMs,
  };
}

export function sandboxDriverConformance(opts: ConformanceOptions): void {
  describe(`SandboxDriver conformance: ${opts.name}`, () => {
    const driver = opts.makeDriver();
    const scale = opts.timeScale ?? 1;
    const tag = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
    const idA = `cf-a-${tag}`;
    const idB = `cf-b-${tag}`;
    const clients: AgentClient[] = [];
    const connect = async (d: SandboxDriver, id: string) => {
      // A namespaces sandbox's handshake timeout: the endpoint's timeScale stretches it (one place).
      const c = await AgentClient.connect(await d.connect(id));
      clients.push(c);
      return c;
    };

    beforeAll(async () => {
      await driver.prepare();
      const [a, b] = await Promise.all([
        driver.create({ id: idA, hostname: "conf-a", limits: { pids: 64 } }),
        driver.create({ id: idB, hostname: "conf-b" }),
      ]);
      expect(a).toMatchObject({ id: idA, hostname: "conf-a", state: "running" });
      expect(b).toMatchObject({ id: idB, hostname: "conf-b", state: "running" });
      expect(a.createdAt).toBeInstanceOf(Date);
    });

    afterAll(async () => {
      for (const c of clients) c.close();
      await Promise.all([driver.destroy(idA), driver.destroy(idB)]);
    });

    it("create() resolves with an agent that answers health with the spec's hostname", async () => {
      const health = await (await connect(driver, idA)).request({ op: "health" });
      expect(health.hostname).toBe("conf-a");
    });

    it("connect() names the driver's timeScale, so every dial stretches its handshake by it", async () => {
      const ep = await driver.connect(idA);
      expect(ep.timeScale ?? 1).toBe(driver.timeScale ?? 1);
    });

    it("list() shows the sandboxes running, also from a fresh driver instance", async () => {
      for (const d of [driver, opts.makeDriver()]) {
        const listed = await d.list();
        expect(listed.find((s) => s.id === idA)).toMatchObject({ hostname: "conf-a", state: "running" });
        expect(listed.find((s) => s.id === idB)).toMatchObject({ hostname: "conf-b", state: "running" });
      }
    });

    it("stats() reads memory, pids and cpu", async () => {
      const stats = await driver.stats(idA);
      expect(stats.memoryBytes).toBeGreaterThan(0);
      expect(stats.pids).toBeGreaterThan(0);
      expect(stats.cpuUsageNs).toBeGreaterThan(0);
    });

    it("sandboxes share no files, processes or hostname", async () => {
      const a = await connect(driver, idA);
      const b = await connect(driver, idB);
      await execText(a, `echo mine > /root/conf-${tag}; exec -a conf-marker-${tag} sleep 300 & disown; true`);
      // "[c]onf" so that the command line of this very script does not match.
      const look = `hostname; ls /root/conf-${tag} 2>/dev/null | wc -l; ps -eo args | grep -c '[c]onf-marker-${tag}'`;
      expect((await execText(a, look)).stdout).toBe("conf-a\n1\n1\n");
      expect((await execText(b, look)).stdout).toBe("conf-b\n0\n0\n");
    });

    it("execTrusted() runs a check on the learner's state, out of sight of the learner, cut at its output cap and its timeout", async () => {
      const a = await connect(driver, idA);
      await execText(a, `echo learner-state > /root/trusted-${tag}`);
      const r = await driver.execTrusted(idA, `cat /root/trusted-${tag}; hostname; echo oops >&2; exit 4`, { timeoutMs: 15_000 * scale });
      expect(r).toMatchObject({ exitCode: 4, timedOut: false, truncated: false });
      expect(r.stdout.toString()).toBe("learner-state\nconf-a\n");
      expect(r.stderr.toString()).toBe("oops\n");

      // A running check has no process the learner can find (or kill).
      const slow = driver.execTrusted(idA, `sleep ${(2.7182 * scale).toFixed(4)} && echo survived`, { timeoutMs: 15_000 * scale });
      await new Promise((res) => setTimeout(res, 800 * scale));
      const pattern = `sleep ${(2.7182 * scale).toFixed(4).replace(".", "[.]")}`;
      expect((await execText(a, `pgrep -f '${pattern}' || pkill -9 -f '${pattern}' || echo none`)).stdout).toBe("none\n");
      expect((await slow).stdout.toString()).toBe("survived\n");

      const big = await driver.execTrusted(idA, "head -c 100000 /dev/zero | tr '\\0' x", { timeoutMs: 15_000 * scale, maxOutputBytes: 1000 });
      expect(big.truncated).toBe(true);
      expect(big.stdout.length).toBe(1000);

      const started = Date.now();
      const late = await driver.execTrusted(idA, "sleep 30", { timeoutMs: 500 });
      expect(late).toMatchObject({ exitCode: null, timedOut: true });
      expect(Date.now() - started).toBeLessThan(10_000 * scale);
    }, 60_000 * scale);

    it("a shell outlives its connection: a new client re-attaches to the same pid and gets the screen back", async () => {
      const first = await connect(driver, idB);
      const pty = await first.request({ op: "pty.start", key: "main", cols: 80, rows: 24 });
      first.sendInput(pty.handle, Buffer.from("echo conf-$((20+22))\n"));
      await waitForOutput(first, pty.handle, "conf-42", 5000 * scale);
      first.close();

      const second = await connect(opts.makeDriver(), idB);
      const replay = waitForOutput(second, pty.handle, "conf-42", 5000 * scale);
      const again = await second.request({ op: "pty.start", key: "main", cols: 80, rows: 24 });
      expect(again).toMatchObject({ reattached: true, pid: pty.pid, handle: pty.handle });
      expect((await replay).subarray(0, 2).toString("latin1")).toBe("\x1bc");
    });

    it("the pids limit holds against a fork bomb", async () => {
      const a = await connect(driver, idA);
      let peak = 0;
      const bomb = execText(a, "sleep 100 & bomb() { bomb | bomb & }; bomb; wait", { timeoutMs: 1500 * scale });
      const watch = (async () => {
        for (let i = 0; i < 6; i++) {
          await new Promise((r) => setTimeout(r, 200 * scale));
          peak = Math.max(peak, (await driver.stats(idA)).pids);
        }
      })();
      expect((await bomb).timedOut).toBe(true);
      await watch;
      expect(peak).toBeGreaterThan(32);
      expect(peak).toBeLessThanOrEqual(64);
      expect((await execText(a, "echo still-here")).stdout).toBe("still-here\n");
    });

    it("destroy() removes it for good and is idempotent", async () => {
      const id = `cf-d-${tag}`;
      await driver.create({ id, hostname: "conf-d" });
      await driver.destroy(id);
      expect((await driver.list()).some((s) => s.id === id)).toBe(false);
      await expect(driver.connect(id)).rejects.toThrow();
      await driver.destroy(id);
    });
  });
}

/** Resolves with everything the handle printed once `text` has appeared. */
function waitForOutput(client: AgentClient, handle: number, text: string, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`timed out waiting for ${JSON.stringify(text)}; got ${JSON.stringify(Buffer.concat(parts).toString("utf8").slice(-300))}`));
    }, timeoutMs);
    const sub = client.onOutput((h, bytes) => {
      if (h !== handle) return;
      parts.push(bytes);
      const all = Buffer.concat(parts);
      if (all.includes(text)) {
        clearTimeout(timer);
        sub.dispose();
        resolve(all);
      }
    });
  });
}
