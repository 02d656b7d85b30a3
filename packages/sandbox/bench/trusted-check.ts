// What a trusted check costs against the old way (`bash -s` through the agent): the time of a
// check that does nothing (`true`), of one that reads /proc and runs `docker ps`, and where
// berth-check's own time goes (runc state, cgroups, namespaces and mounts).
//
//   npx tsx packages/sandbox/bench/trusted-check.ts [rounds]     (root; default 20 rounds)
import { AgentClient, createNamespacesDriver } from "../src/index.js";

const rounds = Number(process.argv[2] ?? 20);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
const ms = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(0)} ms, p90 ${pct(xs, 90).toFixed(0)} ms`;

const driver = createNamespacesDriver();
await driver.prepare();
const id = `bench-tc-${process.pid.toString(36)}`;
await driver.create({ id, hostname: "bench" });
const client = await AgentClient.connect(await driver.connect(id));
try {
  const agent = async (script: string) => {
    const r = await client.request({ op: "exec", cmd: ["bash", "-s"], stdin: Buffer.from(script).toString("base64"), timeoutMs: 30_000 });
    if (r.exitCode !== 0) throw new Error(`agent exec failed: ${Buffer.from(r.stderr, "base64")}`);
  };
  const trusted = async (script: string) => {
    const r = await driver.execTrusted(id, script, { timeoutMs: 30_000 });
    if (r.exitCode !== 0) throw new Error(`trusted exec failed: ${r.stderr}`);
  };
  await agent("for _ in $(seq 1 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done");
  const work = "for d in /proc/[0-9]*; do cat $d/comm >/dev/null 2>&1; done; docker ps -q >/dev/null";
  for (const [name, script] of [["true", "true"], ["/proc walk + docker ps", work]] as const) {
    const a: number[] = [];
    const t: number[] = [];
    for (let i = 0; i < rounds; i++) {
      let t0 = performance.now();
      await agent(script);
      a.push(performance.now() - t0);
      t0 = performance.now();
      await trusted(script);
      t.push(performance.now() - t0);
    }
    console.log(`${name.padEnd(24)} agent exec: ${ms(a)}   execTrusted: ${ms(t)}`);
  }
} finally {
  client.close();
  await driver.destroy(id);
  await driver.close();
}
