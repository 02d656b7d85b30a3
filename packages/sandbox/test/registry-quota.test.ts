// Each learner's storage quota in the lab registry (src/namespaces/registry-quota.ts), with a real
// docker-registry, real sandboxes and the real docker CLI inside them: a push that fits goes
// through, one that would cross the quota is refused with the registry's DENIED error the CLI
// prints ("denied: quota exceeded: N MiB of M MiB used"), an upload streamed without a length is
// cut off at the quota and its partial data removed, and another learner's quota is their own.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentClient, createNamespacesDriver } from "../src/index.js";
import { registryUsage } from "../src/namespaces/registry-quota.js";
import { startRegistry, type Registry } from "@berth/registry";
import { sh, testId, connectedSandboxes, endSandboxes } from "./sandbox-fixture.js";

const MiB = 1024 * 1024;
const QUOTA = 48 * MiB;
const ownerA = `qa${process.pid}`;
const ownerB = `qb${process.pid}`;
const idA = testId("rqa");
const idB = testId("rqb");
let registry: Registry;
let registryRoot: string;
let storageDir: string;
let driver: ReturnType<typeof createNamespacesDriver>;
let a: AgentClient;
let b: AgentClient;

/** An image with `mib` MiB of random (incompressible) data on busybox, pushed as localhost:5000/<name>. */
function pushScript(name: string, mib: number): string {
  return `until docker info >/dev/null 2>&1; do sleep 0.2; done; docker rm -f mk >/dev/null 2>&1; docker run --name mk busybox sh -c 'head -c ${mib}m /dev/urandom > /data.bin' && docker commit mk localhost:5000/${name} >/dev/null && docker rm mk >/dev/null && docker push localhost:5000/${name}`;
}

beforeAll(async () => {
  registryRoot = mkdtempSync(join(tmpdir(), "berth-quota-reg-"));
  registry = await startRegistry({ root: registryRoot });
  storageDir = join(registryRoot, "data");
  driver = createNamespacesDriver({ registryUpstream: registry.url, registryQuota: { storageDir, bytes: QUOTA } });
  await driver.prepare();
  [a, b] = await connectedSandboxes(driver, [{ id: idA, hostname: "quota-a", owner: ownerA }, { id: idB, hostname: "quota-b", owner: ownerB }]);
}, 120_000);

afterAll(async () => {
  await endSandboxes(driver, [idA, idB], [a, b]);
  await driver?.close();
  await registry?.stop();
  if (registryRoot) rmSync(registryRoot, { recursive: true, force: true });
});

describe("registry quota per learner", () => {
  it("takes a push that fits, and refuses one that would cross the quota with a message the docker CLI shows", async () => {
    const first = await sh(a, pushScript("small", 20), { timeoutMs: 120_000 });
    expect(first.exitCode, first.stderr).toBe(0);
    const used = await registryUsage(storageDir, ownerA);
    expect(used).toBeGreaterThan(20 * MiB);
    const second = await sh(a, pushScript("large", 40), { timeoutMs: 120_000 });
    console.log(`registry quota ${QUOTA / MiB} MiB: after a 20 MiB push ${(used / MiB).toFixed(1)} MiB used; a 40 MiB push: ${second.stderr.trim().split("\n").pop()}`);
    expect(second.exitCode).not.toBe(0);
    expect(second.stderr).toMatch(new RegExp(`denied: quota exceeded: ${Math.round(used / MiB)} MiB of ${QUOTA / MiB} MiB used`));
    // Nothing of the refused push stayed in the registry.
    expect(await registryUsage(storageDir, ownerA)).toBeLessThanOrEqual(used + MiB);
    expect(await registryUsage(storageDir, ownerA)).toBeLessThanOrEqual(QUOTA);
    // The first image is still there and whole.
    const pull = await sh(a, "docker rmi localhost:5000/small >/dev/null && docker pull -q localhost:5000/small >/dev/null && docker run --rm localhost:5000/small wc -c /data.bin", { timeoutMs: 60_000 });
    expect(pull.stdout, pull.stderr).toBe(`${20 * MiB} /data.bin\n`);
  }, 300_000);

  it("cuts off an upload streamed without a length at the quota, and removes its partial data", async () => {
    const r = await sh(
      a,
      `head -c 60m /dev/urandom > /tmp/r60
       loc=$(curl -s -i -X POST -H 'Content-Length: 0' localhost:5000/v2/raw/blobs/uploads/ | tr -d '\\r' | awk 'tolower($1)=="location:" {print $2}')
       curl -s -X PATCH -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' --data-binary @/tmp/r60 "localhost:5000$loc"; echo; rm -f /tmp/r60`,
      { timeoutMs: 60_000 },
    );
    const body = JSON.parse(r.stdout.trim()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]!.code).toBe("DENIED");
    expect(body.errors[0]!.message).toMatch(/^quota exceeded: [\d.]+ MiB of 48 MiB used/);
    const uploads = join(storageDir, "docker/registry/v2/repositories/learners", ownerA, "raw/_uploads");
    expect(readdirSync(uploads, { withFileTypes: true }).filter((e) => e.isDirectory())).toEqual([]);
    expect(await registryUsage(storageDir, ownerA)).toBeLessThanOrEqual(QUOTA);
  }, 120_000);

  it("counts per learner: another learner pushes within their own quota", async () => {
    const r = await sh(b, pushScript("theirs", 30), { timeoutMs: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await registryUsage(storageDir, ownerB)).toBeGreaterThan(30 * MiB);
  }, 300_000);
});
