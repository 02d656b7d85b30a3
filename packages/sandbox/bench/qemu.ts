// What a qemu sandbox costs and how it feels: create() to a healthy agent, the link's round trip
// (health, exec `true`), a keystroke's echo through a pty, a trusted check, `docker` answering and
// `docker run --rm busybox true` inside, and idle memory (QEMU's RSS on the host, the learner's
// cgroup in the guest). Prints the accelerator with the figures: TCG numbers say nothing about KVM.
//
//   npx tsx packages/sandbox/bench/qemu.ts [rounds]     (root; default 10 rounds of each round trip)
import { readFileSync } from "node:fs";
import { AgentClient, createQemuDriver } from "../src/index.js";

const rounds = Number(process.argv[2] ?? 10);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
const line = (label: string, xs: number[], unit = "ms") => console.log(`${label.padEnd(40)} n=${String(xs.length).padStart(3)}  p50 ${pct(xs, 50).toFixed(1)} ${unit}  p90 ${pct(xs, 90).toFixed(1)} ${unit}`);

/** (The conformance suite's execText imports vitest: a script cannot.) */
async function execText(client: AgentClient, script: string, opts: { timeoutMs?: number } = {}) {
  const r = await client.request({ op: "exec", cmd: ["/bin/bash", "-c", script], ...opts });
  return { exitCode: r.exitCode, stdout: Buffer.from(r.stdout, "base64").toString(), stderr: Buffer.from(r.stderr, "base64").toString() };
}

const driver = createQemuDriver();
const id = `bq-${process.pid.toString(36)}`;
await driver.prepare((l) => console.log(l));
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ")[0];
console.log(`accelerator ${await driver.accelerator()}, load average ${load()} at start`);
const t0 = performance.now();
await driver.create({ id, hostname: "bench" });
const createMs = performance.now() - t0;
const client = await AgentClient.connect(await driver.connect(id));
try {
  console.log(`create() → agent healthy                  ${(createMs / 1000).toFixed(1)} s`);
  const health: number[] = [];
  const exec: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let t = performance.now();
    await client.request({ op: "health" });
    health.push(performance.now() - t);
    t = performance.now();
    await client.request({ op: "exec", cmd: ["/bin/true"] });
    exec.push(performance.now() - t);
  }
  line("health round trip", health);
  line("exec /bin/true round trip", exec);

  // A keystroke's echo: one byte into the pty, until it comes back.
  const pty = await client.request({ op: "pty.start", key: "bench", cols: 80, rows: 24 });
  let waiting: ((b: Buffer) => void) | undefined;
  const sub = client.onOutput((h, bytes) => h === pty.handle && waiting?.(bytes));
  await new Promise((r) => setTimeout(r, 3000)); // the prompt
  const echo: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const got = new Promise<void>((resolve) => (waiting = (b) => b.includes("x") && resolve()));
    const t = performance.now();
    client.sendInput(pty.handle, Buffer.from("x"));
    await got;
    echo.push(performance.now() - t);
  }
  sub.dispose();
  line("keystroke echo (pty)", echo);

  const checks: number[] = [];
  for (let i = 0; i < Math.min(rounds, 5); i++) {
    const t = performance.now();
    await driver.execTrusted(id, "test -d /root && echo ok", { timeoutMs: 60_000 });
    checks.push(performance.now() - t);
  }
  line("trusted check (execTrusted)", checks);

  const tDocker = performance.now();
  while ((await execText(client, "docker version >/dev/null 2>&1")).exitCode !== 0) {
    if (performance.now() - tDocker > 300_000) throw new Error("docker did not answer within 300 s");
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log(`docker answering, after create()           ${((performance.now() - tDocker) / 1000).toFixed(1)} s`);
  const runs: number[] = [];
  for (let i = 0; i < Math.min(rounds, 5); i++) {
    const t = performance.now();
    const r = await execText(client, "docker run --rm busybox true", { timeoutMs: 300_000 });
    if (r.exitCode !== 0) throw new Error(`docker run failed: ${r.stderr}`);
    runs.push(performance.now() - t);
  }
  line("docker run --rm busybox true", runs);

  await new Promise((r) => setTimeout(r, 5000));
  const view = (await driver.hostView(id))!;
  const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${view.qemuPid}/status`, "utf8"))![1]) / 1024;
  const stats = await driver.stats(id);
  console.log(`idle: QEMU RSS on the host ${rss.toFixed(0)} MiB, the learner's cgroup in the guest ${(stats.memoryBytes / 2 ** 20).toFixed(0)} MiB (engine running)`);
  console.log(`load average ${load()} at the end`);
} finally {
  client.close();
  await driver.destroy(id);
}
