// Does the engine keep answering while it works? A `docker build` whose RUN step leaves a big layer
// (3000 files of 10 KB and one of 40 MB): while it builds, another client runs `docker ps -a` in a
// loop, as a learner's second terminal or the X-ray feed would. Berth's engine (in this process,
// so its event loop's worst delay is measured too) and dockerd 20.10, in the same run.
//
//   npx tsx test/bench/busy-engine.ts [runs]
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { startBerth, startDockerd, tmpDir, CLI_28, type Daemon } from "../../packages/engine/test/harness";
import { percentile } from "./lib";

const runs = Number(process.argv[2] ?? 3);

function cli(d: Daemon, args: string[], cwd?: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    execFile(CLI_28, args, { cwd, env: { ...process.env, DOCKER_HOST: d.host, DOCKER_BUILDKIT: "0" }, maxBuffer: 64 << 20, timeout: 600_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`${d.name}: docker ${args.join(" ")}: ${stderr}`));
      else resolve(performance.now() - t0);
    });
  });
}

const ctx = tmpDir("berth-bench-busy-");
const berth = await startBerth();
const dockerd = await startDockerd();
type Row = { build: number[]; psWorst: number[]; psP50: number[]; loopMax: number[] };
const rows = new Map<string, Row>([berth, dockerd].map((d) => [d.name, { build: [], psWorst: [], psP50: [], loopMax: [] }]));
try {
  for (let i = 0; i < runs; i++) {
    for (const d of [berth, dockerd]) {
      // A different last line each time: no build cache.
      fs.writeFileSync(path.join(ctx, "Dockerfile"), `FROM busybox\nRUN mkdir /many && i=0; while [ $i -lt 3000 ]; do head -c 10000 /dev/urandom > /many/$i; i=$((i+1)); done; head -c 40000000 /dev/urandom > /big; echo ${d.name}-${i}\n`);
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      const ps: number[] = [];
      let building = true;
      const poll = (async () => {
        while (building) ps.push(await cli(d, ["ps", "-a"]));
      })();
      const build = await cli(d, ["build", "-q", "-t", `busy:${i}`, "."], ctx);
      building = false;
      await poll;
      loop.disable();
      const r = rows.get(d.name)!;
      r.build.push(build);
      r.psWorst.push(Math.max(...ps));
      r.psP50.push(percentile(ps, 50));
      r.loopMax.push(loop.max / 1e6);
      await cli(d, ["rmi", `busy:${i}`]);
    }
  }
  const f = (v: number[]) => `${percentile(v, 50).toFixed(0)} (${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)})`;
  console.log(`${runs} runs, p50 (min-max) in ms`);
  console.log("| | Berth | dockerd 20.10 |\n|---|---|---|");
  const b = rows.get(berth.name)!, k = rows.get(dockerd.name)!;
  console.log(`| build | ${f(b.build)} | ${f(k.build)} |`);
  console.log(`| slowest \`docker ps -a\` during the build | ${f(b.psWorst)} | ${f(k.psWorst)} |`);
  console.log(`| median \`docker ps -a\` during the build | ${f(b.psP50)} | ${f(k.psP50)} |`);
  console.log(`| Berth's event loop, worst delay | ${f(b.loopMax)} | |`);
} finally {
  await dockerd.stop();
  await berth.stop();
  fs.rmSync(ctx, { recursive: true, force: true });
}
