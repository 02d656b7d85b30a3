// Accounts and slow clients under the default settings: how long a sign-up takes for a new email
// and for a taken one (they must look alike), what 50 wrong passwords in a row get, and when 50
// half-sent requests are closed by the server.
//
//   tsx test/bench/accounts.ts
import { mkdtempSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { startOrchestrator } from "../../apps/orchestrator/src/server.js";
import { percentile } from "./lib.js";

process.env.BERTH_DATA_DIR = mkdtempSync(path.join(os.tmpdir(), "berth-bench-acct-"));
const berth = await startOrchestrator({
  port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, registry: { enabled: false, root: "", port: 0 },
  instance: `bacct${process.pid}`, authLimits: { signupsPerIpPerHour: 100_000, signinFreeFailuresPerAccount: 5, signinFreeFailuresPerIp: 20 },
});
const post = async (url: string, body: unknown) => {
  const t0 = performance.now();
  const res = await fetch(berth.url + url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  await res.text();
  return { status: res.status, ms: performance.now() - t0 };
};
try {
  await post("/api/auth/signup", { email: "taken@example.org", password: "bench-password" });
  const fresh: number[] = [];
  const taken: number[] = [];
  for (let i = 0; i < 30; i++) {
    fresh.push((await post("/api/auth/signup", { email: `new${i}@example.org`, password: "bench-password" })).ms);
    taken.push((await post("/api/auth/signup", { email: "taken@example.org", password: "bench-password" })).ms);
  }
  const fmt = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(1)} ms, p90 ${percentile(xs, 90).toFixed(1)} ms`;
  console.log(`sign-up, new email:   ${fmt(fresh)}`);
  console.log(`sign-up, taken email: ${fmt(taken)}`);

  const statuses = new Map<number, number>();
  const t0 = performance.now();
  for (let i = 0; i < 50; i++) {
    const { status } = await post("/api/auth/signin", { email: "taken@example.org", password: `guess ${i}` });
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  }
  console.log(`50 wrong passwords in ${((performance.now() - t0) / 1000).toFixed(2)} s: ${[...statuses].map(([s, n]) => `${n}× ${s}`).join(", ")}`);

  const port = Number(new URL(berth.url).port);
  const start = Date.now();
  const closedAfter = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      new Promise<[string, number]>((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => s.write(i % 2 ? "GET / HTTP/1.1\r\nHost: x\r\n" : "POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"));
        s.on("data", () => undefined);
        s.on("close", () => resolve([i % 2 ? "headers unfinished" : "body unfinished", Date.now() - start]));
      }),
    ),
  );
  for (const kind of ["headers unfinished", "body unfinished"]) {
    const ms = closedAfter.filter(([k]) => k === kind).map(([, t]) => t);
    console.log(`25 half-sent requests (${kind}): closed by the server after ${(Math.min(...ms) / 1000).toFixed(1)}–${(Math.max(...ms) / 1000).toFixed(1)} s`);
  }
} finally {
  await berth.close();
}
