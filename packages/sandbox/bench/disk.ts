// What each sandbox's own disk (src/namespaces/disk.ts) adds to create() and destroy(): the disk's
// steps alone (sparse file, mkfs.ext4, loop mount; unmount), interleaved with whole create() and
// destroy() calls on the same machine, and the host bytes a fresh 4 GiB disk takes.
//
//   npx tsx packages/sandbox/bench/disk.ts [rounds]     (root; default 5 rounds)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNamespacesDriver, DEFAULT_LIMITS } from "../src/index.js";
import { createSandboxDisk, sandboxDiskDir, sandboxDiskHostBytes } from "../src/namespaces/disk.js";
import { runHostCommand } from "../src/namespaces/host-command.js";

const rounds = Number(process.argv[2] ?? 5);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
const f = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms`;

const driver = createNamespacesDriver({ engine: false });
await driver.prepare();
const diskCreate: number[] = [];
const diskRemove: number[] = [];
const create: number[] = [];
const destroy: number[] = [];
let hostBytes = 0;
for (let i = 0; i < rounds; i++) {
  const dir = mkdtempSync(join(tmpdir(), "berth-bench-disk-"));
  const t0 = performance.now();
  await createSandboxDisk(dir, DEFAULT_LIMITS.diskBytes);
  diskCreate.push(performance.now() - t0);
  hostBytes = await sandboxDiskHostBytes(dir);
  const t1 = performance.now();
  await runHostCommand("umount", [sandboxDiskDir(dir)]);
  diskRemove.push(performance.now() - t1);
  rmSync(dir, { recursive: true, force: true });

  const id = `bdisk-${process.pid.toString(36)}-${i}`;
  const t2 = performance.now();
  await driver.create({ id, hostname: "bench" });
  create.push(performance.now() - t2);
  const t3 = performance.now();
  await driver.destroy(id);
  destroy.push(performance.now() - t3);
}
await driver.close();
console.log(`disk steps in create() (4 GiB sparse file, mkfs.ext4, mount): ${f(diskCreate)}`);
console.log(`disk steps in destroy() (umount, loop device freed):          ${f(diskRemove)}`);
console.log(`whole create() (engine off), for scale:                        ${f(create)}`);
console.log(`whole destroy():                                               ${f(destroy)}`);
console.log(`a fresh 4 GiB disk takes ${(hostBytes / 1024 / 1024).toFixed(1)} MiB on the host`);
