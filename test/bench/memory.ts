// Memory: one idle sandbox (its agent and shell, as the sandbox's cgroup and /proc count them) and
// the orchestrator process with 10 idle sandboxes attached.
//
//   tsx test/bench/memory.ts [sandboxes=10]
import { io } from "socket.io-client";
import { startBerth } from "../e2e/berth.js";
import { treeRssKiB } from "./lib.js";
import { createNamespacesDriver } from "@berth/sandbox";

const COUNT = Number(process.argv[2] ?? 10);
const LAB = process.env.BENCH_LAB ?? "namespaces-by-hand";

async function signup(url: string, i: number): Promise<string> {
  const body = JSON.stringify({ email: `mem${Date.now()}-${i}@example.org`, password: "bench-password" });
  const headers = { "content-type": "application/json" };
  await fetch(`${url}/api/auth/signup`, { method: "POST", headers, body });
  // Sign-up never signs in (its answer must not tell whether the email was taken).
  const res = await fetch(`${url}/api/auth/signin`, { method: "POST", headers, body });
  return res.headers.get("set-cookie")!.split(";")[0]!;
}

const berth = await startBerth({ BERTH_WARM_POOL: "0" });
const sockets: ReturnType<typeof io>[] = [];
try {
  const before = await treeRssKiB(berth.pid());
  const hostnames: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    const cookie = await signup(berth.url, i);
    const socket = io(berth.url, { transports: ["websocket"], extraHeaders: { cookie } });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.on("sandbox:status", (m: { phase: string; message: string }) => {
        if (m.phase === "ready") {
          hostnames.push(m.message);
          resolve();
        }
        if (m.phase === "error") reject(new Error(m.message));
      });
      socket.emit("term:attach", { labId: LAB, term: "1", cols: 120, rows: 30 }, () => {});
    });
  }
  await new Promise((r) => setTimeout(r, 3000)); // let shells settle

  // The orchestrator is tsx's child; the sandboxes are not its descendants (they are detached).
  const orchestratorKiB = await treeRssKiB(berth.pid());
  const driver = createNamespacesDriver();
  const mine = (await driver.list()).filter((sb) => sb.id.startsWith(`${berth.instance}-`) && sb.pid);
  const perSandbox: number[] = [];
  const charged: number[] = [];
  for (const sb of mine) {
    perSandbox.push(await treeRssKiB(sb.pid!));
    charged.push((await driver.stats(sb.id)).memoryBytes / 1024);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const mib = (kib: number) => (kib / 1024).toFixed(1);

  console.log(`\nMemory (RSS)`);
  console.log(`one idle sandbox (tini + agent + bash), median of ${mine.length}: RSS ${mib(median(perSandbox))} MiB, charged to its cgroup ${mib(median(charged))} MiB`);
  console.log(`orchestrator process tree (tsx + node + Next.js), no sandbox: ${mib(before)} MiB`);
  console.log(`orchestrator process tree with ${COUNT} idle sandboxes attached: ${mib(orchestratorKiB)} MiB`);
  console.log(`all ${mine.length} sandboxes, charged to their cgroups: ${mib(charged.reduce((a, b) => a + b, 0))} MiB`);
} finally {
  for (const s of sockets) s.close();
  await berth.stop({ destroySandboxes: true });
}
