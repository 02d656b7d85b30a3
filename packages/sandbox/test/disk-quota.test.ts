// A sandbox's disk quota (src/namespaces/disk.ts) on real loop devices, ext4 and runc: writing past
// it fails with ENOSPC inside (in the root filesystem and in the engine's /var/lib/berth), the
// host's disk holds at most the quota, a neighbour is unaffected, the mount comes back after it was
// taken away, and destroy() leaves no loop device, mount or file.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { AgentClient, createNamespacesDriver } from "../src/index.js";
import { loopDevicesOf, sandboxDiskHostBytes } from "../src/namespaces/disk.js";
import { hostMounts, sh, testDriver, testId, connectedSandboxes, endSandboxes } from "./sandbox-fixture.js";

const MiB = 1024 * 1024;
const QUOTA = 256 * MiB;
const driver = testDriver();
const idA = testId("dqa");
const idB = testId("dqb");
let a: AgentClient;
let b: AgentClient;

beforeAll(async () => {
  await driver.prepare();
  [a, b] = await connectedSandboxes(driver, [{ id: idA, hostname: "quota-a", limits: { diskBytes: QUOTA } }, { id: idB, hostname: "quota-b" }]);
}, 120_000);

afterAll(async () => {
  await endSandboxes(driver, [idA, idB], [a, b]);
});

describe("disk quota", () => {
  it("refuses writes past the quota with ENOSPC, in /, /var/lib/berth and /run/berth, and the host's disk holds at most the quota", async () => {
    const dir = driver.sandboxDir(idA);
    // The learner's df sees the quota (the overlay reports its upper filesystem).
    const df = await sh(a, "df -B1 --output=size / | tail -1");
    expect(Number(df.stdout.trim())).toBeLessThanOrEqual(QUOTA);
    expect(Number(df.stdout.trim())).toBeGreaterThan(QUOTA * 0.8);

    const fill = await sh(a, "dd if=/dev/zero of=/root/fill bs=1M count=400 2>&1; echo rc=$?", { timeoutMs: 60_000 });
    expect(fill.stdout).toMatch(/No space left on device/);
    expect(fill.stdout).toMatch(/rc=1\n$/);
    // The engine's state and /run/berth (the only other writable host directory) are on the same disk: full too.
    for (const dir of ["/var/lib/berth", "/run/berth"]) {
      const more = await sh(a, `dd if=/dev/zero of=${dir}/more bs=1M count=16 2>&1; echo rc=$?`);
      expect(more.stdout, dir).toMatch(/No space left on device/);
    }

    const hostBytes = await sandboxDiskHostBytes(dir);
    console.log(`disk quota ${QUOTA / MiB} MiB: learner wrote until ENOSPC; the image holds ${(hostBytes / MiB).toFixed(1)} MiB on the host`);
    expect(hostBytes).toBeGreaterThan(QUOTA * 0.8); // the write really went there
    expect(hostBytes).toBeLessThanOrEqual(QUOTA);
    // And nothing of it landed next to the image, in the sandbox's directory on the host's disk.
    const outside = execFileSync("du", ["-sb", "--exclude=disk.img", "--exclude=disk", "--exclude=rootfs", dir], { encoding: "utf8" });
    expect(Number(outside.split("\t")[0])).toBeLessThan(16 * MiB);

    const stats = await driver.stats(idA);
    expect(stats.disk!.sizeBytes).toBeLessThanOrEqual(QUOTA);
    expect(stats.disk!.usedBytes).toBeGreaterThan(stats.disk!.sizeBytes * 0.95);
    expect(stats.limits!.diskBytes).toBe(QUOTA);
  });

  it("leaves the neighbour alone: it writes as usual, and its image is sparse", async () => {
    const r = await sh(b, "dd if=/dev/zero of=/root/ok bs=1M count=64 2>&1 && sync && echo ok");
    expect(r.stdout).toMatch(/ok\n$/);
    const stats = await driver.stats(idB);
    expect(stats.disk!.sizeBytes).toBeGreaterThan(3.5 * 1024 * MiB); // the 4 GiB default
    // A 4 GiB disk with 64 MiB written takes about that on the host, not 4 GiB.
    expect(await sandboxDiskHostBytes(driver.sandboxDir(idB))).toBeLessThan(160 * MiB);
  });

  it("puts the disk's mount back when a new driver prepares, on the same loop device (the sandbox still uses it)", async () => {
    const dir = driver.sandboxDir(idB);
    const image = join(dir, "disk.img");
    const [loop] = await loopDevicesOf(image);
    expect(loop).toMatch(/^\/dev\/loop\d+$/);
    // Taken away on the host (the overlay keeps the filesystem alive meanwhile).
    execFileSync("umount", ["-l", join(dir, "disk")]);
    expect(hostMounts()).not.toContain(` ${join(dir, "disk")} `);
    await createNamespacesDriver().prepare();
    expect(hostMounts()).toContain(`${loop} ${join(dir, "disk")} ext4`);
    expect(await loopDevicesOf(image)).toEqual([loop]); // never a second device on one ext4
    // The same filesystem: what the sandbox writes now shows in the host's mount.
    await sh(b, "echo after > /root/after-remount");
    expect(existsSync(join(dir, "disk", "upper", "root", "after-remount"))).toBe(true);
  });

  it("destroy() removes the mount, the loop device and the image", async () => {
    const dir = driver.sandboxDir(idA);
    const image = join(dir, "disk.img");
    expect(statSync(image).isFile()).toBe(true);
    expect(await loopDevicesOf(image)).toHaveLength(1);
    a.close();
    await driver.destroy(idA);
    expect(existsSync(dir)).toBe(false);
    expect(hostMounts()).not.toContain(dir);
    expect(execFileSync("losetup", ["-a"], { encoding: "utf8" })).not.toContain(image);
  });
});
