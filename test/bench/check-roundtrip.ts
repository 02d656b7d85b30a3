// Lab format v2 on the server: how long a learner waits for a check and for a quiz (the HTTP round
// trip: request → grading in the sandbox or on the server → recorded → progress back), and what
// automatic checks cost a sandbox while its learner sits on a step with one.
//
// Round trips are measured by curl on the host (`-w %{time_total}`): the client must not share the
// orchestrator's one thread. The auto-check cost is the sandbox's own CPU time (its cgroup, which
// also holds the trusted check processes) and the orchestrator's, in windows of the same length:
// the learner on the step with the auto check (polled every 2 s, the fastest a lab may ask for)
// with a quiet terminal, typing a short command key by key every ~3.3 s, and entering a command
// every second; and the same on a step without one. Last, how soon a check passes without a click
// once the command that solves it is typed (new learners, BENCH_LATENCY_TRIALS of them).
//
//   tsx test/bench/check-roundtrip.ts [requests=40] [window-seconds=30]     (root: real sandboxes)
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { io as connectSocket } from "socket.io-client";
import { getCheck, parseLab } from "@berth/labkit";
import { createNamespacesDriver } from "@berth/sandbox";
import { startOrchestrator } from "../../apps/orchestrator/src/server.js";
import { summary } from "./lib.js";

const N = Number(process.argv[2] ?? 40);
const WINDOW_S = Number(process.argv[3] ?? 30);
const LAB = "v2-fixture";
const labsDir = path.resolve(import.meta.dirname, "../../apps/orchestrator/test/fixtures/labs");
const instance = `cbench${process.pid}`;
const dataDir = mkdtempSync(path.join(os.tmpdir(), "berth-cbench-"));
process.env.BERTH_DATA_DIR = dataDir;
process.env.LOG_LEVEL ??= "warn";
const run = promisify(execFile);

/** This process's CPU time and that of its reaped children (/proc/self/stat utime stime cutime cstime), ns. */
function cpuNs(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = [11, 12, 13, 14].reduce((n, i) => n + Number(f[i]), 0);
  return (ticks * 1e9) / 100; // USER_HZ is 100 on Linux
}

const LATENCY_TRIALS = Number(process.env.BENCH_LATENCY_TRIALS ?? 5);

/**
 * Types `commands` in turn into terminal 1, a key every `keyMs` (all at once when 0), then waits
 * `pauseMs` before the next; until the returned function is called.
 */
function typist(socket: ReturnType<typeof connectSocket>, commands: string[], keyMs: number, pauseMs: number): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const sleep = (ms: number) => new Promise<void>((r) => (timer = setTimeout(r, ms)));
  void (async () => {
    for (let n = 0; !stopped; n++) {
      const command = commands[n % commands.length]!;
      if (keyMs === 0) socket.emit("term:input", { term: "1", data: command });
      else for (const key of command) {
        if (stopped) return;
        socket.emit("term:input", { term: "1", data: key });
        await sleep(keyMs);
      }
      await sleep(pauseMs);
    }
  })();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Runs `measure` while `activity` goes on. */
async function during<T>(activity: () => () => void, measure: () => Promise<T>): Promise<T> {
  const stop = activity();
  try {
    return await measure();
  } finally {
    stop();
  }
}

const berth = await startOrchestrator({
  port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, instance, labsDir, reapIntervalMs: 3_600_000,
  labSecretFile: path.join(dataDir, "lab-variables.key"),
  registry: { enabled: false, root: dataDir, port: 0 },
});
const driver = createNamespacesDriver();
try {
  const email = `cbench${Date.now()}@example.org`;
  const json = { "content-type": "application/json" };
  await fetch(`${berth.url}/api/auth/signup`, { method: "POST", headers: json, body: JSON.stringify({ email, password: "bench-password" }) });
  const signin = await fetch(`${berth.url}/api/auth/signin`, { method: "POST", headers: json, body: JSON.stringify({ email, password: "bench-password" }) });
  const cookie = signin.headers.get("set-cookie")!.split(";")[0]!;
  const { user } = (await signin.json()) as { user: { id: string } };
  const socket = connectSocket(berth.url, { transports: ["websocket"], extraHeaders: { cookie }, reconnection: false });
  await new Promise<void>((resolve, reject) => {
    socket.emit("term:attach", { labId: LAB, term: "1", cols: 80, rows: 24 }, (r: { ok: boolean; error?: string }) => (r.ok ? resolve() : reject(new Error(r.error))));
  });
  const sb = berth.sandboxes.find(user.id, LAB)!;

  /** One POST by curl; its total time in ms (and the status, which must be 200). */
  const curl = async (url: string, body?: unknown, method = "POST"): Promise<number> => {
    const args = ["-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-X", method, "-H", `cookie: ${cookie}`];
    if (body !== undefined) args.push("-H", "content-type: application/json", "--data", JSON.stringify(body));
    // 127.0.0.1, not localhost: curl would try ::1 first, where nothing listens.
    const { stdout } = await run("curl", [...args, `${berth.url.replace("localhost", "127.0.0.1")}${url}`]);
    const [code, seconds] = stdout.trim().split(" ");
    if (code !== "200") throw new Error(`${method} ${url}: HTTP ${code}`);
    return Number(seconds) * 1000;
  };
  const post = (url: string, body?: unknown) =>
    fetch(`${berth.url}${url}`, { method: "POST", headers: { cookie, ...(body ? json : {}) }, body: body ? JSON.stringify(body) : undefined });

  const failing: number[] = [];
  const passing: number[] = [];
  const quizzes: number[] = [];
  for (let i = 0; i < 3; i++) await curl(`/api/labs/${LAB}/checks/made`); // warm up
  for (let i = 0; i < N; i++) failing.push(await curl(`/api/labs/${LAB}/checks/made`));
  const skip = await post(`/api/labs/${LAB}/steps/make/skip`); // solves step 1 (solutions run in the sandbox)
  if (!skip.ok) throw new Error(`skip: ${skip.status} ${await skip.text()}`);
  for (let i = 0; i < N; i++) passing.push(await curl(`/api/labs/${LAB}/checks/made`));
  // What any signed-in request costs here (session lookup, JSON), to read the others against.
  const baseline: number[] = [];
  for (let i = 0; i < N; i++) baseline.push(await curl(`/api/me`, undefined, "GET"));
  for (let i = 0; i < N; i++) {
    const answers = i % 2 === 0 ? { q1: "a", q2: ["b"], q3: "cat" } : { q1: "b", q2: ["a", "c"], q3: "echo" };
    quizzes.push(await curl(`/api/labs/${LAB}/quizzes/basics`, { answers }));
  }

  // The same check script through the trusted exec alone (no HTTP, no database): what grading itself costs.
  const labFile = path.join(labsDir, LAB, "lab.md");
  const script = getCheck(parseLab(readFileSync(labFile, "utf8"), labFile).lab!, "made")!.script;
  const direct: number[] = [];
  const cpu0 = cpuNs();
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await berth.sandboxes.execTrusted(sb, script, 10_000);
    direct.push(performance.now() - t);
  }
  const cpuPerExecMs = (cpuNs() - cpu0) / N / 1e6;

  console.log(`check and quiz round trips (curl on the host, ${N} each, one learner, ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(2)})`);
  console.log(summary("GET /api/me (baseline: any signed-in request)", baseline));
  console.log(summary("check, failing (script in the sandbox)", failing));
  console.log(summary("check, passing", passing));
  console.log(summary("quiz answer (graded on the server)", quizzes));
  console.log(summary("the check script alone (execTrusted)", direct));
  console.log(`${"CPU of one execTrusted (orchestrator + its children)".padEnd(44)} ${cpuPerExecMs.toFixed(1)} ms`);

  /**
   * CPU of the sandbox's cgroup and of this process with its reaped children (the trusted check
   * helper and the script: on a v1 host with cpuacct mounted apart from cpu, their time is not in
   * the sandbox's cpuacct group) over `seconds`, as a share of one CPU.
   */
  const window = async (seconds: number) => {
    const s0 = await driver.stats(sb.id);
    const p0 = cpuNs();
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const s1 = await driver.stats(sb.id);
    const p1 = cpuNs();
    const wallNs = Number(process.hrtime.bigint() - t0);
    return { sandbox: (s1.cpuUsageNs - s0.cpuUsageNs) / wallNs, orchestrator: (p1 - p0) / wallNs };
  };
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;

  /** A new learner on the flag step, quiet for a few seconds, types `touch /root/flag`: ms until the pass is pushed. */
  const passLatency = async (i: number): Promise<number> => {
    const mail = `cbench${Date.now()}-${i}@example.org`;
    await fetch(`${berth.url}/api/auth/signup`, { method: "POST", headers: json, body: JSON.stringify({ email: mail, password: "bench-password" }) });
    const res = await fetch(`${berth.url}/api/auth/signin`, { method: "POST", headers: json, body: JSON.stringify({ email: mail, password: "bench-password" }) });
    const c = res.headers.get("set-cookie")!.split(";")[0]!;
    const as = (url: string, body?: unknown) =>
      fetch(`${berth.url}${url}`, { method: "POST", headers: { cookie: c, ...(body ? json : {}) }, body: body ? JSON.stringify(body) : undefined });
    const s2 = connectSocket(berth.url, { transports: ["websocket"], extraHeaders: { cookie: c }, reconnection: false });
    try {
      await new Promise<void>((resolve, reject) => {
        s2.emit("term:attach", { labId: LAB, term: "1", cols: 80, rows: 24 }, (r: { ok: boolean; error?: string }) => (r.ok ? resolve() : reject(new Error(r.error))));
      });
      if (!(await as(`/api/labs/${LAB}/steps/make/skip`)).ok) throw new Error("skip failed");
      if (!(await as(`/api/labs/${LAB}/quizzes/basics`, { answers: { q1: "b", q2: ["a", "c"], q3: "echo" } })).ok) throw new Error("quiz failed");
      if (!(await as(`/api/labs/${LAB}/steps/flag/enter`)).ok) throw new Error("enter failed");
      await new Promise((r) => setTimeout(r, 4000)); // reading the step: the first polls have run
      const pushed = new Promise<number>((resolve) => s2.on("check:result" as never, () => resolve(performance.now())));
      const typed = performance.now();
      s2.emit("term:input", { term: "1", data: "touch /root/flag\r" });
      return (await Promise.race([pushed, new Promise<number>((_, reject) => setTimeout(() => reject(new Error("no pass within 30 s")), 30_000))])) - typed;
    } finally {
      s2.close();
    }
  };

  // On step 2 the auto check (poll=2s) runs until /root/flag exists: it never will here.
  await berth.sandboxes.exec(sb, "rm -f /root/flag", 5000);
  const enter2 = await post(`/api/labs/${LAB}/steps/flag/enter`);
  if (!enter2.ok) throw new Error(`enter flag: ${enter2.status} ${await enter2.text()}`);
  const before = await berth.db.checkAttempt.count({ where: { userId: user.id, checkId: "flag" } });
  const runs0 = berth.autoChecks.stats.runs;
  const polling = await window(WINDOW_S);
  const runsQuiet = berth.autoChecks.stats.runs - runs0;
  // A learner at work: types a short command key by key (a key every 150 ms), Enter, reads the
  // answer for 2 s; then the next. About one command every 3.3 s.
  const working = () => typist(socket, ["ls /tmp\r", "pwd\r", "ls -l\r", "id\r", "uname -a\r"], 150, 2000);
  // Worst case: a command every second (Up and Enter, again and again).
  const hammering = () => typist(socket, ["true\r"], 0, 1000);
  const runs1 = berth.autoChecks.stats.runs;
  const busy = await during(working, () => window(WINDOW_S));
  const runsBusy = berth.autoChecks.stats.runs - runs1;
  const runs2 = berth.autoChecks.stats.runs;
  const rapid = await during(hammering, () => window(WINDOW_S));
  const runsRapid = berth.autoChecks.stats.runs - runs2;
  const attemptsDuringPolling = (await berth.db.checkAttempt.count({ where: { userId: user.id, checkId: "flag" } })) - before;
  await post(`/api/labs/${LAB}/steps/make/enter`); // a step without auto checks: polling stops
  await new Promise((r) => setTimeout(r, 2500)); // let a run in flight finish
  const idle = await window(WINDOW_S);
  // Typing costs something by itself (the terminal relay, the shell, the commands): the same, no auto check.
  const busyIdle = await during(working, () => window(WINDOW_S));
  const rapidIdle = await during(hammering, () => window(WINDOW_S));

  console.log(`\nautomatic checks: one learner, one auto check polled every 2 s, ${WINDOW_S} s windows (failing polls leave no row: ${attemptsDuringPolling} rows)`);
  const line = (label: string, w: { sandbox: number; orchestrator: number }, runs?: number) =>
    console.log(`${label.padEnd(52)} sandbox ${pct(w.sandbox)}  orchestrator+children ${pct(w.orchestrator)}  sum ${pct(w.sandbox + w.orchestrator)}${runs === undefined ? "" : `  (${runs} check runs)`}`);
  line("on the step with the auto check, terminal quiet", polling, runsQuiet);
  line("the same, typing a command every ~3.3 s", busy, runsBusy);
  line("the same, a command every second", rapid, runsRapid);
  line("on a step without auto checks, terminal quiet", idle);
  line("the same, typing a command every ~3.3 s", busyIdle);
  line("the same, a command every second", rapidIdle);
  type W = { sandbox: number; orchestrator: number };
  const cost = (w: W, base: W) => pct(w.sandbox + w.orchestrator - base.sandbox - base.orchestrator);
  console.log(`${"auto-check cost (sum minus the same without)".padEnd(52)} quiet ${cost(polling, idle)}, typing ${cost(busy, busyIdle)}, a command every second ${cost(rapid, rapidIdle)} of one CPU`);

  // How soon a check passes without a click: a learner types the command that solves the step
  // (after reading the step for a while), and we wait for the server's check:result push.
  const latencies: number[] = [];
  for (let i = 0; i < LATENCY_TRIALS; i++) latencies.push(await passLatency(i));
  console.log(summary("command that solves it → check:result pushed", latencies));
  socket.close();
  socket.close();
} finally {
  await berth.close();
  for (const s of await driver.list()) if (s.id.startsWith(`${instance}-`)) await driver.destroy(s.id);
  rmSync(dataDir, { recursive: true, force: true });
}
