/**
 * Bench: Berth's engine against dockerd + runc, in the same run, with the same docker CLI.
 *   - `docker run --rm busybox true`: p50 and p90 (runs alternate between the engines), and the
 *     same with `--network none` (no veth pair, no bridge)
 *   - the engine's resident memory when idle
 *   - `docker ps -a` with 50 containers
 * Root required. Usage: npx tsx test/bench/engine-run.ts [runs=30]
 */
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { CLI_28, startDockerd, tmpDir, unmountUnder, sleep } from "../../packages/engine/test/harness";

const RUNS = Number(process.argv[2] ?? 30);
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");

function time(host: string, args: string[]): number {
  const t0 = process.hrtime.bigint();
  execFileSync(CLI_28, args, { env: { ...process.env, DOCKER_HOST: host }, stdio: "ignore" });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return Math.round(Number(m?.[1] ?? 0) / 102.4) / 10;
}

async function main() {
  // Our engine as its own process (node with tsx's loader), so its memory is its own.
  const root = tmpDir("berth-bench-");
  const socket = path.join(root, "docker.sock");
  const engine = spawn(process.execPath, ["--import", "tsx", path.join(repo, "packages/engine/src/main.ts"), "--root", path.join(root, "state"), "--socket", socket, "--no-debian"], { stdio: ["ignore", "ignore", "inherit"], cwd: repo });
  for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await sleep(100);
  const berth = `unix://${socket}`;
  const dockerd = await startDockerd();
  try {
    for (const h of [berth, dockerd.host]) for (let i = 0; i < 3; i++) time(h, ["run", "--rm", "busybox", "true"]); // warm up
    await sleep(2000);
    const idle = rssMiB(engine.pid!);
    const loadBefore = fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0];
    const ours: number[] = [], theirs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      ours.push(time(berth, ["run", "--rm", "busybox", "true"]));
      theirs.push(time(dockerd.host, ["run", "--rm", "busybox", "true"]));
    }
    const oursNone: number[] = [], theirsNone: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      oursNone.push(time(berth, ["run", "--rm", "--network", "none", "busybox", "true"]));
      theirsNone.push(time(dockerd.host, ["run", "--rm", "--network", "none", "busybox", "true"]));
    }
    const ps: Record<string, number> = {};
    for (const [name, h] of [["berth", berth], ["dockerd", dockerd.host]] as const) {
      for (let i = 0; i < 50; i++) execFileSync(CLI_28, ["create", "--label", "bench=1", "busybox", "true"], { env: { ...process.env, DOCKER_HOST: h }, stdio: "ignore" });
      const samples = [0, 1, 2, 3, 4].map(() => time(h, ["ps", "-a"]));
      ps[name] = pct(samples, 50);
      const ids = execFileSync(CLI_28, ["ps", "-aq", "--filter", "label=bench=1"], { env: { ...process.env, DOCKER_HOST: h }, encoding: "utf8" }).split("\n").filter(Boolean);
      execFileSync(CLI_28, ["rm", ...ids], { env: { ...process.env, DOCKER_HOST: h }, stdio: "ignore" });
    }
    const result = {
      runs: RUNS,
      run_rm_true_ms: {
        berth: { p50: Math.round(pct(ours, 50)), p90: Math.round(pct(ours, 90)) },
        dockerd: { p50: Math.round(pct(theirs, 50)), p90: Math.round(pct(theirs, 90)) },
        ratio_p50: Math.round((pct(ours, 50) / pct(theirs, 50)) * 100) / 100,
      },
      run_rm_true_network_none_ms: {
        berth: { p50: Math.round(pct(oursNone, 50)), p90: Math.round(pct(oursNone, 90)) },
        dockerd: { p50: Math.round(pct(theirsNone, 50)), p90: Math.round(pct(theirsNone, 90)) },
        ratio_p50: Math.round((pct(oursNone, 50) / pct(theirsNone, 50)) * 100) / 100,
      },
      load_before_after: [loadBefore, fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0]],
      engine_idle_rss_mib: idle,
      engine_rss_after_runs_mib: rssMiB(engine.pid!),
      ps_a_50_containers_ms: { berth: Math.round(ps.berth!), dockerd: Math.round(ps.dockerd!) },
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    engine.kill("SIGTERM");
    await new Promise((r) => engine.once("exit", r));
    await dockerd.stop();
    unmountUnder(root);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
