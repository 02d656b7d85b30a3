// debian:bookworm inside a learner's sandbox, offline: prepare() built it once on the host and every
// sandbox sees it read-only at /opt/berth-images; the engine inside links its layer instead of
// copying it. One sandbox for the whole file; commands go through the agent's exec.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { AgentClient } from "../src/index.js";
import { sh, testDriver, testId } from "./sandbox-fixture.js";

const driver = testDriver();
const id = testId("deb");
let client: AgentClient;
let createMs = 0;
let debianUsableMs = 0;
let firstRun = "";

beforeAll(async () => {
  await driver.prepare();
  const t0 = Date.now();
  await driver.create({ id, hostname: "debian-lab" });
  createMs = Date.now() - t0;
  client = await AgentClient.connect(await driver.connect(id));
  // The first `docker run debian:bookworm` as a learner would type it, as early as the engine answers:
  // it must either find the image or wait for its import, never fail with "not found".
  for (;;) {
    const r = await sh(client, "docker version >/dev/null 2>&1 || exit 100; docker run --rm debian:bookworm cat /etc/debian_version 2>&1", { timeoutMs: 20_000 });
    if (r.exitCode !== 100 || Date.now() - t0 > 20_000) {
      firstRun = r.stdout;
      break;
    }
    await new Promise((r2) => setTimeout(r2, 50));
  }
  debianUsableMs = Date.now() - t0;
  console.log(`sandbox create() ${createMs} ms; debian:bookworm ran ${debianUsableMs} ms after create() began`);
}, 60_000);

afterAll(async () => {
  client?.close();
  await driver.destroy(id);
});

describe("debian:bookworm in a sandbox", () => {
  it("runs `docker run --rm debian:bookworm cat /etc/debian_version` (12.x), first time and again", async () => {
    expect(firstRun).toMatch(/^12\.\d+\n$/);
    const r = await sh(client, "docker run --rm debian:bookworm cat /etc/debian_version");
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^12\.\d+\n$/);
    // Files look root-owned inside (the layer is shifted to the sandbox's uid range on the host).
    const owner = await sh(client, "docker run --rm debian:bookworm stat -c '%U:%G %a' /etc/shadow /usr/bin/passwd");
    expect(owner.stdout).toBe("root:shadow 640\nroot:root 4755\n");
    expect(createMs).toBeLessThan(5000);
  });

  it("lists debian:bookworm and busybox:latest in `docker images`", async () => {
    const r = await sh(client, "docker images --format '{{.Repository}}:{{.Tag}}' | sort");
    expect(r.stdout.split("\n")).toEqual(expect.arrayContaining(["busybox:latest", "debian:bookworm"]));
  });

  it("keeps the shared image data read-only: writes fail, a remount fails, a container's write stays its own", async () => {
    const layer = (await sh(client, "readlink /var/lib/berth/engine/image/layers/sha256/* | grep /opt/berth-images")).stdout.trim();
    expect(layer).toMatch(/^\/opt\/berth-images\/image\/layers\/sha256\/[0-9a-f]{64}$/);
    const r = await sh(
      client,
      [
        `echo x > ${layer}/etc/debian_version 2>/dev/null && echo WROTE-LAYER`,
        "touch /opt/berth-images/x 2>/dev/null && echo WROTE-STORE",
        "touch /var/lib/berth/engine/image/layers/sha256/*/etc/x 2>/dev/null && echo WROTE-THROUGH-LINK",
        // Root in the sandbox may flip its own bind to rw; the read-only overlay below still refuses.
        "mount -o remount,rw,bind /opt/berth-images 2>/dev/null; touch /opt/berth-images/x 2>/dev/null && echo WROTE-AFTER-REMOUNT",
        "mount -o remount,rw /opt/berth-images 2>/dev/null && echo REMOUNTED-SUPERBLOCK",
        "docker run --rm debian:bookworm sh -c 'echo mine > /etc/debian_version && cat /etc/debian_version'",
        `cat ${layer}/etc/debian_version`,
      ].join("; "),
    );
    expect(r.stdout).toMatch(/^mine\n12\.\d+\n$/);
    // And on the host, the shared store is untouched.
    const hostDir = JSON.parse(readFileSync(join(driver.sandboxDir(id), "meta.json"), "utf8")).sharedImages as string;
    expect(readFileSync(join(hostDir, layer.replace("/opt/berth-images/", ""), "etc", "debian_version"), "utf8")).toMatch(/^12\.\d+\n$/);
  });

  it("costs a sandbox kilobytes of disk, not a copy of the image", async () => {
    const kib = Number(execFileSync("du", ["-sk", join(driver.sandboxDir(id), "disk", "data", "engine", "image")], { encoding: "utf8" }).split("\t")[0]);
    console.log(`debian:bookworm costs this sandbox ${kib} KiB of disk (the engine's whole image dir, busybox's own layer included)`);
    expect(kib).toBeLessThan(4096);
  });

  it("`docker rmi` drops the sandbox's link only; `docker pull` brings the image back from the shared store", async () => {
    const r = await sh(
      client,
      "docker rmi debian:bookworm debian:12 >/dev/null && docker images --format '{{.Repository}}:{{.Tag}}' | grep -c debian; docker pull debian:bookworm >/dev/null && docker run --rm debian:bookworm cat /etc/debian_version",
    );
    expect(r.stdout).toMatch(/^0\n12\.\d+\n$/);
  });
});
