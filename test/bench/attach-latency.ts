// The server's share of Open lab: from term:attach to the first text of terminal 1, warm pool, a
// socket.io client in this process (no browser), with and without sandbox:prepare sent first
// (the player sends it before its terminal is laid out: the hand-over, the lab's setup and the
// shell's start then happen while the page works).
//
//   tsx test/bench/attach-latency.ts [trials=6]
import { io } from "socket.io-client";
import { startBerth } from "../e2e/berth.js";
import { percentile } from "./lib.js";
const LAB = process.env.BENCH_LAB ?? "namespaces-by-hand";
const TRIALS = Number(process.argv[2] ?? 6);
// Every trial is a new learner: lift the sign-up throttle for this run.
const berth = await startBerth({ BERTH_WARM_POOL: "2", BERTH_SIGNUPS_PER_IP_HOUR: "10000" });
let n = 0;
async function learner(): Promise<string> {
  const account = { email: `srv${Date.now()}-${n++}@example.org`, password: "bench-password" };
  await fetch(`${berth.url}/api/auth/signup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(account) });
  const r = await fetch(`${berth.url}/api/auth/signin`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(account) });
  return r.headers.get("set-cookie")!.split(";")[0]!;
}
async function poolReady() {
  for (;;) { const h = (await (await fetch(`${berth.url}/healthz`)).json()) as { warmPool: number }; if (h.warmPool >= 2) return; await new Promise((r) => setTimeout(r, 250)); }
}
async function trial(prepare: boolean, gapMs: number): Promise<number> {
  const cookie = await learner();
  const socket = io(berth.url, { transports: ["websocket"], extraHeaders: { cookie } });
  await new Promise<void>((r) => socket.on("connect", () => r()));
  if (prepare) { socket.emit("sandbox:prepare", { labId: LAB }); await new Promise((r) => setTimeout(r, gapMs)); }
  const t0 = performance.now();
  const first = new Promise<number>((r) => socket.on("term:data", (m: { data: ArrayBuffer }) => { if (Buffer.from(m.data).toString().trim() !== "") r(performance.now() - t0); }));
  socket.emit("term:attach", { labId: LAB, term: "1", cols: 100, rows: 30 }, () => {});
  const ms = await first;
  socket.close();
  return ms;
}
const out: string[] = [];
try {
  for (const [label, prepare, gap] of [["attach only", false, 0], ["prepare, attach 150 ms later", true, 150], ["prepare, attach 400 ms later", true, 400]] as const) {
    const s: number[] = [];
    await poolReady(); await trial(prepare, gap);
    for (let i = 0; i < TRIALS; i++) { await poolReady(); s.push(await trial(prepare, gap)); }
    out.push(`${label.padEnd(32)} attach → first text p50 ${percentile(s, 50).toFixed(0)} ms p90 ${percentile(s, 90).toFixed(0)} ms`);
  }
} finally { await berth.stop({ destroySandboxes: true }); }
console.log(out.join("\n"));
