// docker build: Berth's engine against dockerd 20.10's legacy builder, in the same run.
//   1. a cached rebuild of a five-step Dockerfile (busybox), p50/p90 over N runs;
//   2. a cold (--no-cache) build of the multi-stage C example: a gcc stage compiles a static
//      hello, a FROM scratch stage keeps only the binary; and the size `docker images` shows.
// The gcc base image is made the same way on both engines from a Debian minbase root filesystem
// (ADD of the tarball FROM scratch, then apt-get install gcc with --network host), so both
// compile with the same compiler. Needs root and Debian's archive (for apt-get; mmdebstrap too
// when no minbase tarball is lying around).
//
//   npx tsx test/bench/build.ts [runs]
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startBerth, startDockerd, tmpDir, CLI_28, type Daemon } from "../../packages/engine/test/harness";
import { percentile } from "./lib";

const runs = Number(process.argv[2] ?? 10);

function cli(d: Daemon, args: string[], cwd?: string): Promise<{ out: string; code: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(CLI_28, args, { cwd, env: { ...process.env, DOCKER_HOST: d.host, DOCKER_BUILDKIT: "0" }, maxBuffer: 256 << 20, timeout: 1_800_000 }, (err, stdout, stderr) => {
      resolve({ out: `${stdout}${stderr}`, code: err ? 1 : 0, ms: performance.now() - t0 });
    });
  });
}

async function must(d: Daemon, args: string[], cwd?: string) {
  const r = await cli(d, args, cwd);
  if (r.code !== 0) throw new Error(`${d.name}: docker ${args.join(" ")} failed:\n${r.out.slice(-3000)}`);
  return r;
}

function minbaseTarball(work: string): string {
  const dir = "/var/lib/berth/image-builder/debian";
  const found = fs.existsSync(dir) ? fs.readdirSync(dir).find((f) => /^debian-minbase-.*\.tar$/.test(f)) : undefined;
  if (found) return path.join(dir, found);
  const out = path.join(work, "minbase.tar");
  console.error("no minbase tarball here: mmdebstrap --variant=minbase bookworm (about 30 s)");
  execFileSync("mmdebstrap", ["--variant=minbase", "bookworm", out], { stdio: "ignore" });
  return out;
}

const row = (label: string, ours: number[], theirs: number[]) => {
  const f = (v: number[]) => `${(percentile(v, 50) / 1000).toFixed(2)} s / ${(percentile(v, 90) / 1000).toFixed(2)} s`;
  return `| ${label} | ${f(ours)} | ${f(theirs)} | ${(percentile(ours, 50) / percentile(theirs, 50)).toFixed(2)} |`;
};

async function main() {
  const work = tmpDir("bench-build-");
  const [berth, dockerd] = await Promise.all([startBerth(), startDockerd()]);
  const lines: string[] = [];
  try {
    // 1. cached rebuild, five steps
    const five = path.join(work, "five");
    fs.mkdirSync(five);
    fs.writeFileSync(path.join(five, "app.sh"), "echo app\n");
    fs.writeFileSync(path.join(five, "Dockerfile"), 'FROM busybox\nWORKDIR /app\nCOPY app.sh .\nRUN sh app.sh > /built\nCMD ["sh", "app.sh"]\n');
    for (const d of [berth, dockerd]) await must(d, ["build", "-q", "-t", "five", "."], five);
    const cached: Record<string, number[]> = { berth: [], dockerd: [] };
    for (let i = 0; i < runs; i++) {
      for (const d of [berth, dockerd]) {
        const r = await must(d, ["build", "-t", "five", "."], five);
        if ((r.out.match(/Using cache/g) ?? []).length !== 4) throw new Error(`${d.name}: not all steps cached:\n${r.out}`);
        cached[d.name]!.push(r.ms);
      }
    }
    lines.push(row(`cached rebuild, 5 steps (n=${runs})`, cached.berth!, cached.dockerd!));

    // 2. the gcc base, made alike on both (not timed), then the cold multi-stage build (timed)
    const base = path.join(work, "base");
    fs.mkdirSync(base);
    fs.copyFileSync(minbaseTarball(work), path.join(base, "rootfs.tar"));
    fs.writeFileSync(path.join(base, "Dockerfile"), "FROM scratch\nADD rootfs.tar /\nRUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*\nCMD [\"bash\"]\n");
    const t0 = performance.now();
    await Promise.all([berth, dockerd].map((d) => must(d, ["build", "--network", "host", "-q", "-t", "gcc-base", "."], base)));
    console.error(`gcc base images ready in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const c = path.join(work, "c");
    fs.mkdirSync(c);
    fs.writeFileSync(path.join(c, "hello.c"), '#include <stdio.h>\nint main(void) { puts("Hello from a FROM scratch image"); return 0; }\n');
    fs.writeFileSync(path.join(c, "Dockerfile"), 'FROM gcc-base AS build\nWORKDIR /src\nCOPY hello.c .\nRUN gcc -static -O2 -o hello hello.c\nFROM scratch\nCOPY --from=build /src/hello /hello\nCMD ["/hello"]\n');
    const cold: Record<string, number[]> = { berth: [], dockerd: [] };
    const coldRuns = Math.max(3, Math.floor(runs / 3));
    for (let i = 0; i < coldRuns; i++) {
      for (const d of [berth, dockerd]) cold[d.name]!.push((await must(d, ["build", "--no-cache", "-t", "hello-static", "."], c)).ms);
    }
    lines.push(row(`cold multi-stage C build, --no-cache (n=${coldRuns})`, cold.berth!, cold.dockerd!));
    const size = async (d: Daemon) => (await must(d, ["images", "hello-static", "--format", "{{.Size}}"])).out.trim();
    const hello = async (d: Daemon) => (await must(d, ["run", "--rm", "hello-static"])).out.trim();
    lines.push(`| FROM scratch image size (docker images) | ${await size(berth)} | ${await size(dockerd)} | |`);
    lines.push(`| it runs | ${await hello(berth)} | ${await hello(dockerd)} | |`);
  } finally {
    await Promise.all([berth.stop(), dockerd.stop()]);
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log("| docker build (CLI wall time, p50 / p90) | Berth | dockerd 20.10 | ratio p50 |");
  console.log("|---|---|---|---|");
  for (const l of lines) console.log(l);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
