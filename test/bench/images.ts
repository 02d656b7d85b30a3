// Moving images: push, pull, save and load of the same kind of image (busybox plus one layer of
// 40 MB of random bytes, which gzip cannot shrink; then busybox plus 3000 files of 10 KB, where
// the cost is per file), Berth's engine and dockerd 20.10 in the same run, through one
// docker-registry (@berth/registry). Each engine pushes its own image cold, then
// again (every blob already there); each pulls the other's image; each saves its image and the
// other loads it.
//
//   npx tsx test/bench/images.ts [runs]
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startRegistry } from "@berth/registry";
import { startEngine } from "../../packages/engine/src/engine";
import { startDockerd, tmpDir, unmountUnder, CLI_28, type Daemon } from "../../packages/engine/test/harness";
import { percentile } from "./lib";

const runs = Number(process.argv[2] ?? 3);

function cli(host: string, args: string[]): Promise<{ out: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    execFile(CLI_28, args, { env: { ...process.env, DOCKER_HOST: host }, maxBuffer: 64 << 20, timeout: 600_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`docker ${args.join(" ")}: ${stderr}`));
      else resolve({ out: stdout, ms: performance.now() - t0 });
    });
  });
}

const root = tmpDir("berth-bench-images-");
const t0 = performance.now();
const reg = await startRegistry({ root: path.join(root, "registry") });
const regStart = performance.now() - t0;
const socket = path.join(root, "berth.sock");
const engine = await startEngine({ root: path.join(root, "state"), socket, network: { enabled: false }, registryMirror: reg.url });
const berth = `unix://${socket}`;
const dockerd: Daemon = await startDockerd({ forward: [reg.port] });
const rows: [string, number[], number[]][] = [];
const add = (label: string, ours: number, theirs: number) => {
  let row = rows.find((r) => r[0] === label);
  if (!row) rows.push((row = [label, [], []]));
  row[1].push(ours);
  row[2].push(theirs);
};

try {
  // The same busybox on both sides (dockerd pulls ours), so only the big layer differs.
  await cli(berth, ["tag", "busybox", `${reg.address}/library/busybox`]);
  await cli(berth, ["push", `${reg.address}/library/busybox`]);
  await cli(dockerd.host, ["pull", `${reg.address}/library/busybox`]);
  await cli(dockerd.host, ["tag", `${reg.address}/library/busybox`, "busybox"]);
  const kinds = [
    { label: "40 MB layer", tag: "big", script: "head -c 40000000 /dev/urandom > /big" },
    { label: "3000 files", tag: "many", script: "mkdir /many && i=0; while [ $i -lt 3000 ]; do head -c 10000 /dev/urandom > /many/$i; i=$((i+1)); done" },
  ];
  for (let i = 0; i < runs; i++) {
    for (const kind of kinds) {
      const mine = `${reg.address}/bench/ours-${kind.tag}:${i}`;
      const theirs = `${reg.address}/bench/theirs-${kind.tag}:${i}`;
      const make = async (host: string, name: string) => {
        await cli(host, ["run", "--name", `bench-${i}`, "busybox", "sh", "-c", kind.script]);
        const c = await cli(host, ["commit", `bench-${i}`, name]);
        await cli(host, ["rm", `bench-${i}`]);
        return c.ms;
      };
      const k = `(${kind.label})`;
      add(`commit ${k}`, await make(berth, mine), await make(dockerd.host, theirs));
      add(`push, cold ${k}`, (await cli(berth, ["push", mine])).ms, (await cli(dockerd.host, ["push", theirs])).ms);
      add(`push again, all blobs there ${k}`, (await cli(berth, ["push", mine])).ms, (await cli(dockerd.host, ["push", theirs])).ms);
      add(`pull the other's image ${k}`, (await cli(berth, ["pull", theirs])).ms, (await cli(dockerd.host, ["pull", mine])).ms);
      const a = path.join(root, "ours.tar");
      const b = path.join(root, "theirs.tar");
      add(`save ${k}`, (await cli(berth, ["save", "-o", a, mine])).ms, (await cli(dockerd.host, ["save", "-o", b, theirs])).ms);
      await cli(berth, ["rmi", theirs]);
      await cli(dockerd.host, ["rmi", mine]);
      add(`load the other's archive ${k}`, (await cli(berth, ["load", "-i", b])).ms, (await cli(dockerd.host, ["load", "-i", a])).ms);
      for (const f of [a, b]) fs.rmSync(f, { force: true });
    }
  }
  console.log(`docker-registry start: ${regStart.toFixed(0)} ms; ${runs} runs, p50 (min-max) in ms`);
  console.log(`| | Berth | dockerd 20.10 |`);
  console.log(`|---|---|---|`);
  const f = (v: number[]) => `${percentile(v, 50).toFixed(0)} (${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)})`;
  for (const [label, o, t] of rows) console.log(`| ${label} | ${f(o)} | ${f(t)} |`);
} finally {
  await dockerd.stop();
  await engine.close();
  await reg.stop();
  unmountUnder(root);
  fs.rmSync(root, { recursive: true, force: true });
}
