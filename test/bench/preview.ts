// The web preview's cost: throughput and per-request latency of a page served by busybox httpd in
// a learner's sandbox, fetched by curl on the host through /preview/... (orchestrator → agent
// tunnel → 127.0.0.1:8080), against the same server fetched by curl inside the sandbox (no
// tunnel), in the same run. curl, not fetch, on the host: the client must not share the
// orchestrator's one thread (a browser does not either).
//
//   tsx test/bench/preview.ts [MiB=64] [requests=200]      (root: it starts real sandboxes)
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { io as connectSocket } from "socket.io-client";
import { createNamespacesDriver } from "@berth/sandbox";
import { startOrchestrator } from "../../apps/orchestrator/src/server.js";
import { summary } from "./lib.js";

const MIB = Number(process.argv[2] ?? 64);
const N = Number(process.argv[3] ?? 200);
const LAB = "namespaces-by-hand";
const instance = `pbench${process.pid}`;
const dataDir = mkdtempSync(path.join(os.tmpdir(), "berth-pbench-"));
process.env.BERTH_DATA_DIR = dataDir;
process.env.LOG_LEVEL ??= "warn";

const berth = await startOrchestrator({ port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, instance, reapIntervalMs: 3_600_000 });
const driver = createNamespacesDriver();
try {
  const account = JSON.stringify({ email: `pbench${Date.now()}@example.org`, password: "bench-password" });
  await fetch(`${berth.url}/api/auth/signup`, { method: "POST", headers: { "content-type": "application/json" }, body: account });
  // Sign-up never signs in (its answer must not tell whether the email was taken).
  const res = await fetch(`${berth.url}/api/auth/signin`, { method: "POST", headers: { "content-type": "application/json" }, body: account });
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  const { user } = (await res.json()) as { user: { id: string } };
  const socket = connectSocket(berth.url, { transports: ["websocket"], extraHeaders: { cookie }, reconnection: false });
  await new Promise<void>((resolve, reject) => {
    socket.emit("term:attach", { labId: LAB, term: "1", cols: 80, rows: 24 }, (r: { ok: boolean; error?: string }) => (r.ok ? resolve() : reject(new Error(r.error))));
  });
  const sb = berth.sandboxes.find(user.id, LAB)!;
  const sh = async (script: string) => {
    const r = await berth.sandboxes.exec(sb, script, 120_000, 1024 * 1024);
    if (r.exitCode !== 0) throw new Error(r.stderr.toString("utf8"));
    return r.stdout.toString("utf8");
  };
  await sh(`mkdir -p /root/site && echo '<h1>hello</h1>' > /root/site/index.html && head -c ${MIB}M /dev/zero > /root/site/big.bin
setsid busybox httpd -f -p 8080 -h /root/site </dev/null >/dev/null 2>&1 &
for i in $(seq 50); do grep -q ':1F90 00000000:0000 0A' /proc/net/tcp && break; sleep 0.1; done`);

  const entry = await fetch(`${berth.url}/preview/${LAB}/8080/`, { headers: { cookie }, redirect: "manual" });
  const base = `${berth.url}${entry.headers.get("location")!}`;

  console.log(`web preview: ${MIB} MiB download, ${N} small requests (busybox httpd in the sandbox)`);
  // Async, so the orchestrator in this process keeps serving while curl runs.
  const curl = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      execFile("curl", ["-s", ...args], { maxBuffer: 16 * 1024 * 1024 }, (err, out) => (err ? reject(err) : resolve(out)));
    });
  for (let run = 1; run <= 3; run++) {
    const [size, speed] = (await curl(["-o", "/dev/null", "-w", "%{size_download} %{speed_download}", `${base}big.bin`])).split(" ").map(Number);
    if (size !== MIB * 1024 * 1024) throw new Error(`got ${size} bytes`);
    const direct = Number(await sh(`curl -s -o /dev/null -w '%{speed_download}' http://127.0.0.1:8080/big.bin`)) / (1024 * 1024);
    console.log(`  run ${run}: curl through the preview ${(speed! / (1024 * 1024)).toFixed(0)} MiB/s   curl inside the sandbox ${direct.toFixed(0)} MiB/s`);
  }

  const args = Array.from({ length: N }, () => ["-o", "/dev/null", `${base}index.html`]).flat();
  const samples = (await curl(["-w", "%{time_total}\n", ...args])).trim().split("\n").map((x) => Number(x) * 1000);
  console.log(summary("  small page, curl through the preview", samples));
  const urls = Array.from({ length: N }, () => "-o /dev/null http://127.0.0.1:8080/index.html").join(" ");
  const direct = (await sh(`curl -s -w '%{time_total}\\n' ${urls}`)).trim().split("\n").map((x) => Number(x) * 1000);
  console.log(summary("  small page, curl inside the sandbox", direct));

  const t0 = performance.now();
  await Promise.all(Array.from({ length: 20 }, () => fetch(`${base}index.html`).then((r) => r.arrayBuffer())));
  console.log(`  20 requests at once through the preview: ${(performance.now() - t0).toFixed(0)} ms in all`);
  socket.close();
} finally {
  await berth.close();
  for (const s of (await driver.list()).filter((s) => s.id.startsWith(`${instance}-`))) await driver.destroy(s.id);
  rmSync(dataDir, { recursive: true, force: true });
}
