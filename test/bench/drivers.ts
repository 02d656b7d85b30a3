// The sandbox drivers side by side, in one run: what a learner feels and what the host pays.
//   - create → first prompt: driver.create(), connect, open the terminal, until the shell prints its prompt
//   - `docker run --rm busybox true` inside (the engine answering first; then timed runs)
//   - keystroke echo: one byte typed into the terminal until it comes back
//   - idle memory per sandbox: what the host charges to the sandbox's host cgroup (berth/<id>),
//     a minute's quiet after start (for uml: the guest's RAM as touched, its kernel, the relays)
//
//   npx tsx test/bench/drivers.ts [rounds] [driver,driver...]     (root; default 2 rounds, every registered driver)
// Each driver is reached only through the SandboxDriver interface (createSandboxDriver).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AgentClient, createSandboxDriver, sandboxDriverNames, type SandboxDriver } from "@berth/sandbox";
import { percentile, summary } from "./lib.js";

const rounds = Number(process.argv[2] ?? 2);
const names = (process.argv[3] ?? process.env.BERTH_BENCH_DRIVERS ?? sandboxDriverNames().join(",")).split(",").filter(Boolean);
const DOCKER_RUNS = Number(process.env.BERTH_BENCH_DOCKER_RUNS ?? 5);
const KEYSTROKES = 20;
const IDLE_MS = Number(process.env.BERTH_BENCH_IDLE_MS ?? 20_000);

async function exec(client: AgentClient, script: string, timeoutMs = 300_000) {
  const r = await client.request({ op: "exec", cmd: ["/bin/bash", "-c", script], timeoutMs });
  return { exitCode: r.exitCode, stdout: Buffer.from(r.stdout, "base64").toString("utf8") };
}

function waitFor(client: AgentClient, handle: number, test: (text: string) => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`no match within ${timeoutMs} ms; terminal: ${JSON.stringify(text.slice(-200))}`));
    }, timeoutMs);
    const sub = client.onOutput((h, bytes) => {
      if (h !== handle) return;
      text += bytes.toString("latin1");
      if (test(text)) {
        clearTimeout(timer);
        sub.dispose();
        resolve();
      }
    });
  });
}

/** Host memory charged to the sandbox's host cgroup (v1 memory tree or v2 unified), in bytes. */
function hostCgroupMemory(id: string): number {
  for (const file of [join("/sys/fs/cgroup/memory/berth", id, "memory.usage_in_bytes"), join("/sys/fs/cgroup/berth", id, "memory.current")]) {
    try {
      return Number(readFileSync(file, "utf8").trim());
    } catch {
      // the other layout
    }
  }
  return NaN;
}

interface Figures {
  prompt: number[];
  dockerReady: number[];
  dockerRun: number[];
  echo: number[];
  memory: number[];
}

async function measure(driver: SandboxDriver): Promise<Figures> {
  const f: Figures = { prompt: [], dockerReady: [], dockerRun: [], echo: [], memory: [] };
  for (let i = 0; i < rounds; i++) {
    const id = `bd-${driver.name.slice(0, 4)}-${process.pid.toString(36)}-${i}`;
    const t0 = Date.now();
    await driver.create({ id, hostname: "bench" });
    let link: AgentClient | undefined;
    try {
      const client = (link = await AgentClient.connect(await driver.connect(id), { timeoutMs: 120_000 }));
      const prompted = new Promise<{ handle: number }>((resolve, reject) => {
        client
          .request({ op: "pty.start", key: "main", cols: 80, rows: 24 })
          .then((pty) => waitFor(client, pty.handle, (t) => /[#$] $/.test(t.trimEnd() + " "), 300_000).then(() => resolve(pty)), reject);
      });
      const pty = await prompted;
      f.prompt.push(Date.now() - t0);

      // Keystroke echo: a letter, back from the shell's line editor; Ctrl-U clears it again.
      for (let k = 0; k < KEYSTROKES; k++) {
        const letter = String.fromCharCode(97 + (k % 26));
        const echoed = waitFor(client, pty.handle, (t) => t.includes(letter), 60_000);
        const s = performance.now();
        client.sendInput(pty.handle, Buffer.from(letter));
        await echoed;
        f.echo.push(performance.now() - s);
        const cleared = waitFor(client, pty.handle, () => true, 60_000);
        client.sendInput(pty.handle, Buffer.from("\x15"));
        await cleared.catch(() => {});
      }

      while ((await exec(client, "docker version >/dev/null 2>&1")).exitCode !== 0) await new Promise((r) => setTimeout(r, 200));
      f.dockerReady.push(Date.now() - t0);
      for (let k = 0; k < DOCKER_RUNS; k++) {
        const s = performance.now();
        const r = await exec(client, "docker run --rm busybox true");
        if (r.exitCode !== 0) throw new Error(`docker run failed in ${driver.name}: ${r.stdout}`);
        f.dockerRun.push(performance.now() - s);
      }

      await new Promise((r) => setTimeout(r, IDLE_MS));
      f.memory.push(hostCgroupMemory(id) / 1048576);
    } finally {
      link?.close();
      await driver.destroy(id);
    }
  }
  return f;
}

/** The 1-minute load average: figures taken on a busy 2-core machine say little without it. */
const load1 = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

const results = new Map<string, Figures>();
const loads = new Map<string, { start: number; end: number }>();
for (const name of names) {
  const driver = createSandboxDriver(name, {}, (line) => console.error(line));
  await driver.prepare((line) => console.error(`${name}: ${line}`));
  console.error(`${name}: measuring (${rounds} sandboxes)`);
  const start = load1();
  try {
    results.set(name, await measure(driver));
    loads.set(name, { start, end: load1() });
  } catch (err) {
    console.error(`${name}: ${(err as Error).message}`);
  } finally {
    await driver.close?.();
  }
}

const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
console.log(`\nsandbox drivers, ${rounds} sandbox(es) each, ${DOCKER_RUNS} docker runs, ${KEYSTROKES} keystrokes; load average at the end ${load}`);
for (const [name, f] of results) {
  const l = loads.get(name);
  console.log(`\n${name}${l ? ` (load average ${l.start.toFixed(1)} at its start, ${l.end.toFixed(1)} at its end)` : ""}`);
  console.log(summary("  create → first prompt", f.prompt));
  console.log(summary("  create → docker answers", f.dockerReady));
  console.log(summary("  docker run --rm busybox true", f.dockerRun));
  console.log(summary("  keystroke echo", f.echo));
  console.log(summary("  idle memory (host cgroup)", f.memory, "MiB"));
}
const row = (label: string, pick: (f: Figures) => number[], unit = "ms") =>
  console.log(`${label.padEnd(34)}${[...results.values()].map((f) => `${percentile(pick(f), 50).toFixed(1)} ${unit}`.padStart(16)).join("")}`);
console.log(`\n${"p50".padEnd(34)}${[...results.keys()].map((n) => n.padStart(16)).join("")}`);
row("create → first prompt", (f) => f.prompt);
row("docker run --rm busybox true", (f) => f.dockerRun);
row("keystroke echo", (f) => f.echo);
row("idle memory per sandbox", (f) => f.memory, "MiB");
