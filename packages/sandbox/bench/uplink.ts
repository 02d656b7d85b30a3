// What the uplink costs and gives: create() and destroy() with and without it (driver option
// `uplink: false`), interleaved so both see the same machine load; and, with it, the time to a
// first HTTP answer from Debian's archive inside a fresh sandbox.
//
//   npx tsx packages/sandbox/bench/uplink.ts [rounds]     (root; default 5 rounds)
import { execFileSync, spawn } from "node:child_process";
import { AgentClient, createNamespacesDriver } from "../src/index.js";
import { attachUplink, claimSlot, detachUplink } from "../src/namespaces/network.js";

const rounds = Number(process.argv[2] ?? 5);
const ARCHIVE = "http://deb.debian.org/debian/dists/bookworm/Release";
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

const drivers = { with: createNamespacesDriver({ engine: false }), without: createNamespacesDriver({ engine: false, uplink: false }) };
await drivers.with.prepare();
await drivers.without.prepare();
const create = { with: [] as number[], without: [] as number[] };
const destroy = { with: [] as number[], without: [] as number[] };
const firstFetch: number[] = [];
for (let i = 0; i < rounds; i++) {
  for (const kind of ["with", "without"] as const) {
    const id = `bup-${kind[0]}-${process.pid.toString(36)}-${i}`;
    const t0 = performance.now();
    await drivers[kind].create({ id, hostname: "bench" });
    create[kind].push(performance.now() - t0);
    if (kind === "with") {
      const c = await AgentClient.connect(await drivers.with.connect(id));
      const r = await c.request({ op: "exec", cmd: ["curl", "-s", "-o", "/dev/null", "-m", "20", "-w", "%{http_code}", ARCHIVE], timeoutMs: 30_000 });
      if (Buffer.from(r.stdout, "base64").toString() === "200") firstFetch.push(performance.now() - t0);
      c.close();
    }
    const t1 = performance.now();
    await drivers[kind].destroy(id);
    destroy[kind].push(performance.now() - t1);
  }
}
const f = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms`;
console.log(`create() with uplink:    ${f(create.with)}`);
console.log(`create() without uplink: ${f(create.without)}`);
console.log(`destroy() with uplink:    ${f(destroy.with)}`);
console.log(`destroy() without uplink: ${f(destroy.without)}`);
// The uplink's own steps alone (veth, addresses, route, rule) on a bare network namespace.
const attach: number[] = [];
const detach: number[] = [];
for (let i = 0; i < rounds; i++) {
  const holder = spawn("unshare", ["--net", "sleep", "30"], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 100));
  const slot = await claimSlot(`/nonexistent/bench-${process.pid}-${i}`, "bench");
  try {
    const t0 = performance.now();
    await attachUplink(holder.pid!, slot);
    attach.push(performance.now() - t0);
  } finally {
    const t1 = performance.now();
    await detachUplink(slot);
    detach.push(performance.now() - t1);
    holder.kill();
  }
}
console.log(`attachUplink() alone: ${f(attach)}; detachUplink(): ${f(detach)}`);
console.log(`load average: ${execFileSync("cat", ["/proc/loadavg"], { encoding: "utf8" }).trim()}`);
console.log(firstFetch.length ? `archive answering (HTTP 200) from the start of create(): ${f(firstFetch)}` : "archive: not reachable from this machine");
