// The lab registry from inside sandboxes (src/namespaces/registry-gateway.ts and the agent's
// forwarder): a real docker-registry on the host, two real sandboxes whose localhost:5000 leads to
// it through their own gateway socket. Each learner's names live in their own namespace; lab
// images (library/, berth/) are read-only; and the real docker client (dockerd 20.10) pushes and
// pulls through a gateway as it would through any registry.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import { join } from "node:path";
import { AgentClient, createNamespacesDriver } from "../src/index.js";
import { MAX_CONNECTIONS, mapRepository, registryOwner, unmapRepository } from "../src/namespaces/registry-gateway.js";
import { startRegistryForwarder } from "../../agent/src/registry-forwarder.js";
import { startRegistry, type Registry } from "@berth/registry";
import { startDockerd as startReferenceDockerd } from "../../engine/test/harness.js";

const CLI_28 = "/usr/local/bin/docker";

/**
 * The reference client for pushes and pulls: the engine tests' real dockerd (Debian's 20.10), which
 * always runs in a network namespace of its own. Never start one in the host's namespace: with
 * `--bridge=none` dockerd deletes the host's docker0. `ports`: this host's 127.0.0.1 ports it
 * must reach (a registry, a forwarder), relayed into its namespace.
 */
async function startDockerd(ports: number[]): Promise<{ host: string; stop(): Promise<void> }> {
  return startReferenceDockerd({ forward: ports });
}
import { sh, testId, connectedSandboxes, endSandboxes } from "./sandbox-fixture.js";

let registry: Registry;
let registryRoot: string;
let driver: ReturnType<typeof createNamespacesDriver>;
const idA = testId("rga");
const idB = testId("rgb");
const ownerA = `alice-${process.pid}`;
const ownerB = `bob-${process.pid}`;
let a: AgentClient;
let b: AgentClient;

// Runs inside a sandbox with the sandbox's node: a one-layer image pushed, or a manifest pulled,
// through localhost:5000 with nothing but the distribution API (the engine's own push may not exist yet).
const REG_SCRIPT = `
import { createHash } from "node:crypto";
const [op, name, content] = process.argv.slice(2);
const base = "http://127.0.0.1:5000";
const sha = (b) => "sha256:" + createHash("sha256").update(b).digest("hex");
const MT = "application/vnd.docker.distribution.manifest.v2+json";
async function blob(buf) {
  const digest = sha(buf);
  let r = await fetch(base + "/v2/" + name + "/blobs/uploads/", { method: "POST" });
  if (r.status !== 202) { console.log("upload " + r.status + " " + (await r.text())); process.exit(3); }
  const loc = new URL(r.headers.get("location"), base);
  if (loc.pathname.includes("learners/")) { console.log("leaked location " + loc); process.exit(4); }
  loc.searchParams.set("digest", digest);
  r = await fetch(loc, { method: "PUT", body: buf });
  if (r.status !== 201) { console.log("put " + r.status + " " + (await r.text())); process.exit(3); }
  return { digest, size: buf.length };
}
if (op === "push") {
  const layer = await blob(Buffer.from("layer of " + content));
  const config = await blob(Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: { Labels: { content } }, rootfs: { type: "layers", diff_ids: [layer.digest] } })));
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: MT, config: { mediaType: "application/vnd.docker.container.image.v1+json", ...config }, layers: [{ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", ...layer }] });
  const r = await fetch(base + "/v2/" + name + "/manifests/latest", { method: "PUT", body: manifest, headers: { "content-type": MT } });
  console.log(r.status + " " + (r.status === 201 ? r.headers.get("docker-content-digest") : await r.text()));
} else if (op === "pull") {
  const r = await fetch(base + "/v2/" + name + "/manifests/latest", { headers: { accept: MT } });
  if (r.status !== 200) { console.log(r.status + " " + (await r.text())); process.exit(0); }
  const m = await r.json();
  const c = await (await fetch(base + "/v2/" + name + "/blobs/" + m.config.digest)).json();
  console.log("200 " + c.config.Labels.content);
} else {
  const r = await fetch(base + name);
  console.log(r.status + " " + (await r.text()).trim());
}
`;

async function reg(c: AgentClient, id: string, ...args: string[]): Promise<string> {
  const r = await sh(c, `node /tmp/reg.mjs ${args.map((x) => `'${x}'`).join(" ")}`, { timeoutMs: 30_000 });
  if (r.stderr) throw new Error(`reg.mjs in ${id}: ${r.stderr}`);
  return r.stdout.trim();
}

beforeAll(async () => {
  registryRoot = mkdtempSync(join(tmpdir(), "berth-gw-reg-"));
  registry = await startRegistry({ root: registryRoot });
  driver = createNamespacesDriver({ registryUpstream: registry.url });
  await driver.prepare();
  [a, b] = await connectedSandboxes(driver, [{ id: idA, hostname: "reg-a", owner: ownerA }, { id: idB, hostname: "reg-b", owner: ownerB }]);
  for (const id of [idA, idB]) writeFileSync(join(driver.sandboxDir(id), "rootfs", "tmp", "reg.mjs"), REG_SCRIPT, { mode: 0o644 });
}, 120_000);

afterAll(async () => {
  await endSandboxes(driver, [idA, idB], [a, b]);
  await driver?.close();
  await registry?.stop();
  if (registryRoot) rmSync(registryRoot, { recursive: true, force: true });
});

describe("registry names", () => {
  it("maps a learner's names into their namespace and leaves lab images alone", () => {
    expect(mapRepository("app", "alice")).toEqual({ upstream: "learners/alice/app", readOnly: false });
    expect(mapRepository("learners/bob/app", "alice")).toEqual({ upstream: "learners/alice/learners/bob/app", readOnly: false });
    expect(mapRepository("library/nginx", "alice")).toEqual({ upstream: "library/nginx", readOnly: true });
    expect(mapRepository("berth/clock", "alice")).toEqual({ upstream: "berth/clock", readOnly: true });
    for (const bad of ["../x", "App", "a//b", "/a", "a/", "a%2fb"]) expect(mapRepository(bad, "alice")).toHaveProperty("error");
    expect(unmapRepository("learners/alice/app", "alice")).toBe("app");
    expect(unmapRepository("learners/bob/app", "alice")).toBeUndefined();
    expect(unmapRepository("library/nginx", "alice")).toBe("library/nginx");
    // Sandbox ids are not always valid components: made valid, and never merged with another id.
    expect(registryOwner("t-rga-abc")).toBe("t-rga-abc");
    expect(registryOwner("Lab.One")).not.toBe(registryOwner("lab.one"));
    expect(registryOwner("Lab.One")).toMatch(/^[a-z0-9]+(?:[-._][a-z0-9]+)*$/);
  });

  it("refuses an owner that is not a valid name component", async () => {
    await expect(driver.create({ id: testId("rgbad"), hostname: "bad", owner: "Not/Valid" })).rejects.toThrow(/invalid owner/);
  });
});

describe("the registry gateway in a sandbox", () => {
  it("serves localhost:5000 through a read-only socket the sandbox cannot replace", async () => {
    const r = await sh(a, "curl -s -o /dev/null -w '%{http_code}\\n' http://localhost:5000/v2/; ls -l /run/berth-gw/; touch /run/berth-gw/x 2>&1; rm -f /run/berth-gw/registry.sock 2>&1");
    expect(r.stdout).toMatch(/^200\n/);
    expect(r.stdout).toContain("registry.sock");
    expect(r.stdout).toMatch(/Read-only file system/);
    expect(existsSync(join(driver.sandboxDir(idA), "gw", "registry.sock"))).toBe(true);
  });

  it("two sandboxes push localhost:5000/app with different content; each pulls back its own", async () => {
    const [pa, pb] = await Promise.all([reg(a, idA, "push", "app", "from A"), reg(b, idB, "push", "app", "from B")]);
    expect(pa).toMatch(/^201 sha256:/);
    expect(pb).toMatch(/^201 sha256:/);
    expect(pa).not.toBe(pb);
    expect(await reg(a, idA, "pull", "app")).toBe("200 from A");
    expect(await reg(b, idB, "pull", "app")).toBe("200 from B");
    // Upstream: one repository per owner.
    const upstream = (await (await fetch(`${registry.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(upstream.repositories).toEqual(expect.arrayContaining([`learners/${ownerA}/app`, `learners/${ownerB}/app`]));
  });

  it("the same with the sandbox's own docker: push localhost:5000/web from two sandboxes, each pulls back its own", async () => {
    const ready = async (c: AgentClient) => {
      for (let i = 0; i < 200 && (await sh(c, "docker version >/dev/null 2>&1; echo $?")).stdout !== "0\n"; i++) await new Promise((r) => setTimeout(r, 100));
    };
    await Promise.all([ready(a), ready(b)]);
    const build = (c: AgentClient, who: string) =>
      sh(c, `docker rm -f mk >/dev/null 2>&1; docker run --name mk busybox sh -c 'echo ${who} > /who' && docker commit mk localhost:5000/web >/dev/null && docker rm mk >/dev/null && docker push localhost:5000/web`, { timeoutMs: 60_000 });
    const [pa, pb] = await Promise.all([build(a, "made-in-A"), build(b, "made-in-B")]);
    expect(pa.stdout, pa.stderr).toMatch(/latest: digest: sha256:/);
    expect(pb.stdout, pb.stderr).toMatch(/latest: digest: sha256:/);
    for (const [c, who] of [[a, "made-in-A"], [b, "made-in-B"]] as const) {
      await sh(c, "docker rmi localhost:5000/web >/dev/null");
      const r = await sh(c, "docker pull -q localhost:5000/web >/dev/null && docker run --rm localhost:5000/web cat /who", { timeoutMs: 60_000 });
      expect(r.stdout, r.stderr).toBe(`${who}\n`);
    }
    const denied = await sh(a, "docker tag busybox localhost:5000/library/busybox && docker push localhost:5000/library/busybox", { timeoutMs: 60_000 });
    expect(denied.exitCode).not.toBe(0);
    expect(denied.stderr).toMatch(/denied: library\/ holds the lab's images and is read-only/);
  }, 180_000);

  it("shows each learner only their own names (and the lab's) in _catalog and tag lists", async () => {
    await reg(b, idB, "push", "bobs-secret", "B only");
    const catA = await reg(a, idA, "get", "/v2/_catalog");
    expect(catA).toMatch(/^200 /);
    const listA = JSON.parse(catA.slice(4)).repositories as string[];
    expect(listA).toContain("app");
    expect(listA).not.toContain("bobs-secret");
    expect(catA).not.toContain("learners");
    expect(JSON.parse((await reg(b, idB, "get", "/v2/_catalog")).slice(4)).repositories).toEqual(expect.arrayContaining(["app", "bobs-secret"]));
    expect(await reg(a, idA, "get", "/v2/app/tags/list")).toBe('200 {"name":"app","tags":["latest"]}');
    // Paging over the filtered list.
    const page = await sh(b, "curl -s -D - 'http://localhost:5000/v2/_catalog?n=1'");
    expect(page.stdout).toMatch(/Link: <\/v2\/_catalog\?last=[^&]+&n=1>; rel="next"/i);
  });

  it("assignOwner re-points a running sandbox's gateway (a warm sandbox handed to a learner)", async () => {
    const carol = `carol-${process.pid}`;
    await driver.assignOwner(idA, carol);
    try {
      // Carol starts with nothing of her own; what she pushes lands in her namespace upstream.
      expect(await reg(a, idA, "pull", "app")).toMatch(/^404 /);
      expect(await reg(a, idA, "push", "app", "from carol")).toMatch(/^201 sha256:/);
      const upstream = (await (await fetch(`${registry.url}/v2/_catalog`)).json()) as { repositories: string[] };
      expect(upstream.repositories).toContain(`learners/${carol}/app`);
      await expect(driver.assignOwner(idA, "Not A Name")).rejects.toThrow(/invalid owner/);
    } finally {
      await driver.assignOwner(idA, ownerA);
    }
    expect(await reg(a, idA, "pull", "app")).toBe("200 from A");
  });

  it("cannot reach another learner's repository by naming its upstream path", async () => {
    expect(await reg(a, idA, "pull", `learners/${ownerB}/bobs-secret`)).toMatch(/^404 /);
    expect(await reg(a, idA, "pull", "bobs-secret")).toMatch(/^404 /);
    // Not even by digest through a mount: the source is mapped into A's own namespace.
    const r = await sh(a, `curl -s -o /dev/null -w '%{http_code}' -X POST 'http://localhost:5000/v2/stolen/blobs/uploads/?mount=sha256:${"0".repeat(64)}&from=learners/${ownerB}/bobs-secret'`);
    expect(r.stdout).toBe("202"); // an ordinary new upload, not a 201 mount
  });

  it("refuses pushes to library/ and berth/ with a message (lab images are read-only)", async () => {
    for (const name of ["library/app", "berth/clock"]) {
      const out = await reg(a, idA, "push", name, "overwrite");
      expect(out).toMatch(/^upload 403 /);
      expect(out).toMatch(/DENIED/);
      expect(out).toMatch(/read-only/);
    }
    const del = await sh(a, "curl -s -w ' %{http_code}' -X DELETE http://localhost:5000/v2/library/busybox/manifests/latest");
    expect(del.stdout).toMatch(/ 403$/);
    expect(await reg(a, idA, "get", "/v2/../../etc/passwd")).toMatch(/^404 /);
  });

  it("holds at most MAX_CONNECTIONS connections per sandbox (the gateway lives in the orchestrator's process)", async () => {
    const script = `const net = require("net"); const socks = []; let ok = 0, closed = 0;
for (let i = 0; i < ${MAX_CONNECTIONS + 36}; i++) { const s = net.connect(5000, "127.0.0.1"); socks.push(s);
  s.on("data", (d) => { if (String(d).startsWith("HTTP/1.1 200")) ok++; }); s.on("close", () => closed++); s.on("error", () => {}); }
setTimeout(() => { for (const s of socks) if (!s.destroyed) s.write("GET /v2/ HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"); }, 1500);
setTimeout(() => { console.log(ok + " " + closed); socks.forEach((s) => s.destroy()); }, 5000);`;
    writeFileSync(join(driver.sandboxDir(idA), "rootfs", "tmp", "flood.cjs"), script);
    const r = await sh(a, "node /tmp/flood.cjs", { timeoutMs: 20_000 });
    const [ok, closed] = r.stdout.trim().split(" ").map(Number);
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBeLessThanOrEqual(MAX_CONNECTIONS);
    expect(closed).toBeGreaterThanOrEqual(36);
    // And it serves again once they are gone.
    expect((await sh(a, "sleep 0.5; curl -s -o /dev/null -w '%{http_code}' http://localhost:5000/v2/")).stdout).toBe("200");
  });

  it("keeps working after the orchestrator restarts: a new driver serves existing sandboxes again", async () => {
    await driver.close();
    expect((await sh(a, "curl -s -o /dev/null -w '%{http_code}' http://localhost:5000/v2/")).stdout).not.toBe("200");
    const again = createNamespacesDriver({ registryUpstream: registry.url });
    await again.prepare();
    try {
      expect(await reg(a, idA, "pull", "app")).toBe("200 from A");
    } finally {
      await again.close();
      await driver.prepare().catch(() => {});
    }
  });
});

describe("the real docker client through a gateway", () => {
  let dockerd: Awaited<ReturnType<typeof startDockerd>> | undefined;
  let fwd: ReturnType<typeof startRegistryForwarder> | undefined;
  afterAll(async () => {
    fwd?.close();
    await dockerd?.stop();
  });

  it("dockerd 20.10 pushes and pulls a learner's image, and is denied library/", async () => {
    // dockerd stands in for the engine in the sandbox: the same forwarder, to A's gateway socket.
    fwd = startRegistryForwarder({ socketPath: join(driver.sandboxDir(idA), "gw", "registry.sock"), port: 0 });
    const port = await fwd.listening();
    dockerd = await startDockerd([port]);
    const env = { ...process.env, DOCKER_HOST: dockerd.host };
    // Asynchronous: the forwarder dockerd talks to lives in this process's event loop.
    const run = (args: string[]) =>
      new Promise<{ code: number; out: string }>((resolve) =>
        execFile(CLI_28, args, { env, encoding: "utf8", timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` })),
      );
    const ref = `127.0.0.1:${port}/realapp:v1`;
    expect((await run(["tag", "busybox:latest", ref])).code).toBe(0);
    const push = await run(["push", ref]);
    expect(push.out).toMatch(/v1: digest: sha256:[0-9a-f]{64}/);
    expect((await run(["rmi", ref])).code).toBe(0);
    const pull = await run(["pull", ref]);
    expect(pull.out).toMatch(/Downloaded newer image|Image is up to date/);
    // Inside the sandbox it is A's realapp; upstream it is in A's namespace.
    expect(await reg(a, idA, "get", "/v2/realapp/tags/list")).toBe('200 {"name":"realapp","tags":["v1"]}');
    expect(await reg(b, idB, "get", "/v2/realapp/tags/list")).toMatch(/^404 /);
    expect((await run(["tag", "busybox:latest", `127.0.0.1:${port}/library/busybox:latest`])).code).toBe(0);
    const denied = await run(["push", `127.0.0.1:${port}/library/busybox:latest`]);
    expect(denied.code).not.toBe(0);
    expect(denied.out).toMatch(/denied: library\/ holds the lab's images and is read-only/);
  }, 120_000);
});

describe("docker pull of a lab image inside a sandbox", () => {
  it("pulls library/<name> from the lab registry for a short name (needs the engine's mirror support)", async (ctx) => {
    const engineSrc = join(import.meta.dirname, "..", "..", "engine", "src");
    let supported = false;
    try {
      supported = execFileSync("grep", ["-rl", "BERTH_REGISTRY_MIRROR", engineSrc], { encoding: "utf8" }).trim() !== "";
    } catch {
      // grep: no match
    }
    if (!supported) return ctx.skip("the engine does not read BERTH_REGISTRY_MIRROR yet (H2)");
    // A lab image put upstream by the host (as setup does): busybox pushed by dockerd straight to the registry.
    const dockerd = await startDockerd([Number(registry.address.split(":").pop())]);
    try {
      const env = { ...process.env, DOCKER_HOST: dockerd.host };
      // Asynchronous: the relay into dockerd's namespace lives in this process's event loop.
      const run = promisify(execFile);
      await run(CLI_28, ["tag", "busybox:latest", `${registry.address}/library/labbox:latest`], { env });
      await run(CLI_28, ["push", `${registry.address}/library/labbox:latest`], { env, timeout: 60_000 });
    } finally {
      await dockerd.stop();
    }
    const r = await sh(a, "docker pull labbox && docker run --rm labbox echo pulled", { timeoutMs: 60_000 });
    expect(`${r.stdout}${r.stderr}`).toMatch(/pulled\n/);
    expect(readFileSync(join(driver.sandboxDir(idA), "bundle", "config.json"), "utf8")).toContain("BERTH_REGISTRY_MIRROR=http://127.0.0.1:5000");
  }, 120_000);
});
