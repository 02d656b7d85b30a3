// What the engine in every sandbox costs: create() time, time until `docker` answers, and idle
// memory, for sandboxes with and without the engine (driver option `engine: false`).
//
//   npx tsx packages/sandbox/bench/engine-overhead.ts [rounds]     (root; default 5 rounds)
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AgentClient, createNamespacesDriver, type NamespacesDriver } from "../src/index.js";

const rounds = Number(process.argv[2] ?? 5);

async function run(client: AgentClient, script: string): Promise<{ exitCode: number | null; stdout: string }> {
  const r = await client.request({ op: "exec", cmd: ["/bin/bash", "-c", script], timeoutMs: 30_000 });
  return { exitCode: r.exitCode, stdout: Buffer.from(r.stdout, "base64").toString("utf8") };
}

function rssOf(id: string): number {
  let total = 0;
  for (const pid of readFileSync(join("/sys/fs/cgroup/pids/berth", id, "box", "cgroup.procs"), "utf8").trim().split("\n")) {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    if (m) total += Number(m[1]) * 1024;
  }
  return total;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

async function measure(driver: NamespacesDriver, engine: boolean) {
  const create: number[] = [], ready: number[] = [], memory: number[] = [], rss: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const id = `bench-${engine ? "e" : "n"}-${process.pid.toString(36)}-${i}`;
    const t0 = Date.now();
    await driver.create({ id, hostname: "bench" });
    create.push(Date.now() - t0);
    const client = await AgentClient.connect(await driver.connect(id));
    try {
      if (engine) {
        while ((await run(client, "docker version >/dev/null 2>&1")).exitCode !== 0) await new Promise((r) => setTimeout(r, 50));
        ready.push(Date.now() - t0);
      }
      await new Promise((r) => setTimeout(r, 3000)); // let start-up garbage settle
      memory.push((await driver.stats(id)).memoryBytes);
      rss.push(rssOf(id));
    } finally {
      client.close();
      await driver.destroy(id);
    }
  }
  const mib = (b: number) => (b / 1048576).toFixed(1);
  console.log(
    `${engine ? "with engine   " : "without engine"}: create() p50 ${pct(create, 50)} ms (max ${Math.max(...create)})` +
      (engine ? `; docker answers ${pct(ready, 50)} ms after create() began` : "") +
      `; idle cgroup memory p50 ${mib(pct(memory, 50))} MiB; RSS p50 ${mib(pct(rss, 50))} MiB`,
  );
}

const plain = createNamespacesDriver({ engine: false });
const withEngine = createNamespacesDriver();
await withEngine.prepare();
await measure(plain, false);
await measure(withEngine, true);
