// A learner is root in their sandbox and may turn on the agent that serves it. These tests do, in
// a real sandbox: squat the path the host used to dial, signal the agent and the engine to open
// Node's inspector, and stop the agent while the host keeps typing into it.
import { lstatSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../src/index.js";
import { sh, terminal, testDriver, testId } from "./sandbox-fixture.js";

const driver = testDriver();
const id = testId("hostile");
let client: AgentClient;

beforeAll(async () => {
  await driver.prepare();
  await driver.create({ id, hostname: "hostile" });
  client = await AgentClient.connect(await driver.connect(id));
});

afterAll(async () => {
  // A test that failed half-way may leave the agent stopped: let it go before the teardown.
  const agent = await agentHostPid().catch(() => undefined);
  if (agent) process.kill(agent, "SIGCONT");
  client?.close();
  await driver.destroy(id);
  await driver.close();
});

/** The agent's pid on the host: the child of the sandbox's PID 1 (tini). */
async function agentHostPid(): Promise<number> {
  const info = (await driver.list()).find((s) => s.id === id);
  if (!info?.pid) throw new Error(`sandbox ${id} has no pid`);
  const children = readFileSync(`/proc/${info.pid}/task/${info.pid}/children`, "utf8").trim().split(/\s+/).map(Number);
  const agent = children.find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("/opt/berth/agent.mjs"));
  if (!agent) throw new Error("no agent process under the sandbox's tini");
  return agent;
}

/** Whether anything in the sandbox listens on TCP port 9229 (Node's inspector), from its own /proc/net. */
const INSPECTOR_LISTENING = "cat /proc/net/tcp /proc/net/tcp6 | awk '$2 ~ /:240D$/ && $4 == \"0A\"' | wc -l";

describe("a hostile sandbox", () => {
  it("cannot replace or redirect the socket the host dials: it is not in the sandbox at all", async () => {
    const ep = await driver.connect(id);
    expect(ep.socketPath.startsWith(driver.sandboxDir(id) + "/")).toBe(true);
    const st = lstatSync(ep.socketPath);
    expect(st.isSocket()).toBe(true);
    expect(st.uid).toBe(0);
    expect(st.mode & 0o077).toBe(0);
    // Inside: no socket of the agent's to replace; the learner squats the old path with a listener
    // of their own (which would be sent the token) ...
    const squat = await sh(
      client,
      [
        "ls -A /run/berth | wc -l",
        // The agent's listening fd is close-on-exec: what it starts does not inherit it.
        "readlink /proc/$$/fd/3 | grep -c socket",
        "rm -f /tmp/squatted",
        `(node -e 'require("net").createServer(() => require("fs").writeFileSync("/tmp/squatted", "x")).listen("/run/berth/agent.sock")' >/dev/null 2>&1 &)`,
        "for i in $(seq 50); do test -S /run/berth/agent.sock && break; sleep 0.1; done; test -S /run/berth/agent.sock && echo squatting",
      ].join("; "),
    );
    expect(squat.stdout).toBe("0\n0\nsquatting\n");
    // ... and the host still reaches the real agent, which the squatter never hears of.
    const again = await AgentClient.connect(await driver.connect(id), { timeoutMs: 3000 });
    try {
      expect((await again.request({ op: "health" })).hostname).toBe("hostile");
    } finally {
      again.close();
    }
    expect((await sh(client, "sleep 0.3; cat /tmp/squatted 2>/dev/null || echo untouched")).stdout).toBe("untouched\n");
  });

  it("cannot open the inspector of the agent or the engine with SIGUSR1 (and the check can see one)", async () => {
    // The engine starts after the first health answer; wait for its socket.
    const up = await sh(client, "for i in $(seq 200); do test -S /var/run/docker.sock && break; sleep 0.1; done; pgrep -f '^/usr/bin/node /opt/berth/agent.mjs' | wc -l; pgrep -f '^/usr/bin/node /opt/berth/engine.mjs' | wc -l");
    expect(up.stdout).toBe("1\n1\n");
    const r = await sh(client, `kill -USR1 $(pgrep -f '^/usr/bin/node /opt/berth/agent.mjs') $(pgrep -f '^/usr/bin/node /opt/berth/engine.mjs'); sleep 1.5; ${INSPECTOR_LISTENING}`);
    expect(r.stdout).toBe("0\n");
    expect((await client.request({ op: "health" })).hostname).toBe("hostile");
    expect(readFileSync(`${driver.sandboxDir(id)}/agent.log`, "utf8")).toMatch(/ignored SIGUSR1/);
    // The control: a node process without the listener does open it, and the check sees that.
    const control = await sh(client, `node -e 'setInterval(() => {}, 1000)' >/dev/null 2>&1 & c=$!; sleep 0.5; kill -USR1 $c; sleep 1.5; ${INSPECTOR_LISTENING}; kill $c`);
    expect(control.stdout).toBe("1\n");
  });

  it("stops its agent: input queued in the host stays bounded, what is dropped is reported, nothing throws", async () => {
    const warnings: string[] = [];
    // No rate limit on this link, so it is the queue cap that must hold.
    const link = await AgentClient.connect(await driver.connect(id), { onWarning: (m) => warnings.push(m), inputBytesPerSecond: Number.MAX_SAFE_INTEGER, inputBurstBytes: Number.MAX_SAFE_INTEGER });
    try {
      const pty = await link.request({ op: "pty.start", key: "stopper", cols: 80, rows: 24 });
      const term = terminal(link, pty.handle);
      // From inside: the shell's parent is the agent.
      link.sendInput(pty.handle, Buffer.from("echo stopping-$((6*7)); sleep 0.5; kill -STOP $PPID\n"));
      await term.waitFor("stopping-42");
      await new Promise((r) => setTimeout(r, 300));
      term.dispose();
      const rssBefore = process.memoryUsage.rss();
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let maxQueued = 0;
      let dropped = 0;
      const total = 200 * 1024 * 1024;
      for (let sent = 0; sent < total; sent += chunk.length) {
        if (!link.sendInput(pty.handle, chunk).sent) dropped += chunk.length;
        maxQueued = Math.max(maxQueued, link.queuedBytes);
        // Let the socket write between chunks, as a stream of websocket messages would.
        if (sent % (4 * 1024 * 1024) === 0) await new Promise((r) => setImmediate(r));
      }
      const rssGrowth = process.memoryUsage.rss() - rssBefore;
      expect(maxQueued).toBeLessThanOrEqual(1024 * 1024);
      expect(dropped).toBeGreaterThan(190 * 1024 * 1024);
      expect(link.droppedInputBytes).toBe(dropped);
      expect(rssGrowth).toBeLessThan(64 * 1024 * 1024);
      expect(warnings.join("\n")).toMatch(/not reading/);
      // The orchestrator's link (default limits) holds the same line.
      const flood = Array.from({ length: 64 }, () => client.sendInput(pty.handle, chunk));
      // 4 MiB offered, at most the 2 MiB burst accepted: at least half of it is refused.
      expect(flood.filter((r) => !r.sent).length).toBeGreaterThanOrEqual(32);
      expect(client.queuedBytes).toBeLessThanOrEqual(1024 * 1024);
      process.kill(await agentHostPid(), "SIGCONT");
      await link.request({ op: "pty.kill", handle: pty.handle });
    } finally {
      process.kill(await agentHostPid(), "SIGCONT");
      link.close();
    }
    expect((await client.request({ op: "health" })).hostname).toBe("hostile");
  });
});
