// What a uml guest offers besides its kernel, as a namespaces sandbox does: the lab registry at
// localhost:5000 (and as the engine's mirror) through a gateway of its own, debian:bookworm from
// the shared store without building or downloading it, and its disk in stats(). One guest, a real
// docker-registry on a scratch directory. Minutes: the guest boots, and the engine runs in it.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startRegistry, type Registry } from "@berth/registry";
import { AgentClient, createUmlDriver } from "../src/index.js";
import { GATEWAY_REGISTRY_PORT } from "../src/namespaces/network.js";
import { sh, testId } from "./sandbox-fixture.js";

vi.setConfig({ testTimeout: 300_000, hookTimeout: 900_000 });

const id = testId("umls");
const owner = "umls-owner";
const DISK = 256 * 1024 * 1024;
let registryRoot: string;
let registry: Registry;
let driver: ReturnType<typeof createUmlDriver>;
let client: AgentClient;

beforeAll(async () => {
  registryRoot = mkdtempSync(join(tmpdir(), "berth-umls-reg-"));
  registry = await startRegistry({ root: registryRoot });
  driver = createUmlDriver({ registryUpstream: registry.url });
  await driver.prepare();
  await driver.create({ id, hostname: "umls", owner, limits: { diskBytes: DISK } });
  client = await AgentClient.connect(await driver.connect(id), { timeoutMs: 30_000 });
  // The engine starts after the agent's first answer.
  for (const t0 = Date.now(); ; ) {
    if ((await sh(client, "docker version >/dev/null 2>&1", { timeoutMs: 60_000 })).exitCode === 0) break;
    if (Date.now() - t0 > 300_000) throw new Error(`the engine did not answer: ${(await sh(client, "tail -20 /var/log/berth-engine.log")).stdout}`);
    await new Promise((r) => setTimeout(r, 500));
  }
});

afterAll(async () => {
  client?.close();
  await driver?.destroy(id).catch(() => {});
  await driver?.close();
  await registry?.stop();
  if (registryRoot) rmSync(registryRoot, { recursive: true, force: true });
});

describe("uml: the lab registry", () => {
  it("answers at localhost:5000; a push lands in the learner's own namespace and pulls back", async () => {
    const r = await sh(
      client,
      [
        "curl -s -o /dev/null -w '%{http_code}\\n' http://localhost:5000/v2/",
        "docker tag busybox localhost:5000/app:v1 && docker push localhost:5000/app:v1 >/dev/null && echo pushed",
        "docker rmi localhost:5000/app:v1 >/dev/null && docker pull localhost:5000/app:v1 >/dev/null && echo pulled",
        "curl -s http://localhost:5000/v2/_catalog",
      ].join("\n"),
      { timeoutMs: 240_000 },
    );
    expect(r.stdout).toMatch(/^200\npushed\npulled\n\{"repositories":\["app"\]\}/);
    // Upstream it is the owner's: learners/<owner>/app.
    const catalog = await (await fetch(`${registry.url}/v2/_catalog`)).json();
    expect(catalog.repositories).toContain(`learners/${owner}/app`);
  });

  it("keeps lab images read-only: a push to library/ is refused", async () => {
    const r = await sh(client, "docker tag busybox localhost:5000/library/busybox:mine && docker push localhost:5000/library/busybox:mine 2>&1; echo rc=$?", { timeoutMs: 120_000 });
    expect(r.stdout).toMatch(/denied|403|forbidden/i);
    expect(r.stdout).toMatch(/rc=[1-9]/);
  });

  it("the host's end answers only the guest's own address", async () => {
    const meta = JSON.parse(readFileSync(join(driver.sandboxDir(id), "meta.json"), "utf8")) as { uplink: { gateway: string } };
    // From the host (its source address is the gateway's own, not the guest's): closed unanswered.
    const got = await new Promise<string>((resolve) => {
      const s = net.connect({ host: meta.uplink.gateway, port: GATEWAY_REGISTRY_PORT });
      let data = "";
      s.on("connect", () => s.write("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"));
      s.on("data", (b) => (data += b));
      s.on("close", () => resolve(data));
      s.on("error", () => resolve(data));
    });
    expect(got).toBe("");
  });
});

describe("uml: debian:bookworm", () => {
  it("runs from the shared store, listed beside busybox, its layer read-only", async () => {
    const r = await sh(
      client,
      "docker run --rm debian:bookworm cat /etc/debian_version; docker images --format '{{.Repository}}:{{.Tag}}' | sort | tr '\\n' ' '; echo; touch /opt/berth-images/x 2>&1 | grep -c 'Read-only'",
      { timeoutMs: 240_000 },
    );
    const [version, images, readOnly] = r.stdout.split("\n");
    expect(version).toMatch(/^12\.\d+$/);
    expect(images).toContain("debian:bookworm");
    expect(images).toContain("busybox:latest");
    expect(readOnly).toBe("1");
  });
});

describe("uml: stats", () => {
  it("report the sandbox's disk, and what a learner writes to it", async () => {
    const before = await driver.stats(id);
    expect(before.disk).toBeDefined();
    // ext4 keeps some of the file for itself
    expect(before.disk!.sizeBytes).toBeGreaterThan(DISK * 0.85);
    expect(before.disk!.sizeBytes).toBeLessThanOrEqual(DISK);
    const w = await sh(client, "dd if=/dev/zero of=/var/lib/berth/fill bs=1M count=32 conv=fsync status=none; echo $?", { timeoutMs: 120_000 });
    expect(w.stdout).toBe("0\n");
    const after = await driver.stats(id);
    expect(after.disk!.usedBytes - before.disk!.usedBytes).toBeGreaterThanOrEqual(30 * 1024 * 1024);
    await sh(client, "rm -f /var/lib/berth/fill");
  });
});
