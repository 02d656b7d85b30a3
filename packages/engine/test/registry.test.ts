// Push and pull through a real registry (Debian's docker-registry, started by @berth/registry),
// by our engine and by a real dockerd, with the same CLI: the same digests and image ids on both
// sides, dockerd's progress stream, dockerd's errors for a missing tag or repository, docker.io
// names through the mirror, and a clear error without one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { startRegistry, type Registry } from "@berth/registry";
import { startEngine, type Engine } from "../src/engine";
import { docker, startDockerd, tmpDir, unmountUnder, type Daemon } from "./harness";

let reg: Registry;
let root: string;
let engine: Engine;
let berth: string; // DOCKER_HOST of our engine
let dockerd: Daemon;
let addr: string;

beforeAll(async () => {
  root = tmpDir("berth-registry-");
  reg = await startRegistry({ root: path.join(root, "registry") });
  addr = reg.address;
  const socket = path.join(root, "docker.sock");
  engine = await startEngine({ root: path.join(root, "state"), socket, network: { enabled: false }, registryMirror: reg.url });
  berth = `unix://${socket}`;
  dockerd = await startDockerd({ forward: [reg.port] });
});

afterAll(async () => {
  await dockerd?.stop();
  await engine?.close();
  await reg?.stop();
  unmountUnder(root);
  fs.rmSync(root, { recursive: true, force: true });
});

const ok = async (host: Daemon | string, args: string[]) => {
  const r = await docker(host, args, { timeout: 60_000 });
  if (r.code !== 0) throw new Error(`docker ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
};

/** The raw JSON lines of a pull, with the chunk-dependent Downloading/Extracting lines dropped. */
async function rawPull(socket: string, image: string, tag: string): Promise<string[]> {
  const http = await import("node:http");
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.request({ socketPath: socket, method: "POST", path: `/v1.41/images/create?fromImage=${encodeURIComponent(image)}&tag=${tag}` }, (res) => {
      let s = "";
      res.on("data", (c: Buffer) => (s += c.toString()));
      res.on("end", () => resolve(s));
    });
    req.on("error", reject);
    req.end();
  });
  return body.split(/\r?\n/).filter((l) => l && !/"status":"(Downloading|Extracting)"/.test(l));
}

describe("push and pull through docker-registry", () => {
  let pushedDigest: string;
  let appId: string;

  it("our engine pushes (Pushed, then Layer already exists; tag: digest: size:) and records the RepoDigest", async () => {
    await ok(berth, ["run", "--name", "reg-src", "busybox", "sh", "-c", "echo pushed > /pushed; rm /etc/shadow; rm -rf /var/spool; mkdir -p /var/spool/fresh"]);
    await ok(berth, ["commit", "-c", 'CMD ["cat", "/pushed"]', "reg-src", `${addr}/teach/app:1`]);
    await ok(berth, ["rm", "reg-src"]);
    appId = (await ok(berth, ["image", "inspect", "-f", "{{.Id}}", `${addr}/teach/app:1`])).trim();
    const first = await ok(berth, ["push", `${addr}/teach/app:1`]);
    expect(first).toContain(`The push refers to repository [${addr}/teach/app]`);
    expect(first.match(/: Pushed$/gm)?.length).toBe(2);
    const m = /^1: digest: (sha256:[0-9a-f]{64}) size: (\d+)$/m.exec(first);
    expect(m).not.toBeNull();
    pushedDigest = m![1]!;
    const again = await ok(berth, ["push", `${addr}/teach/app:1`]);
    expect(again.match(/: Layer already exists$/gm)?.length).toBe(2);
    expect(again).toContain(`1: digest: ${pushedDigest} size: ${m![2]}`);
    const digests = JSON.parse(await ok(berth, ["image", "inspect", "-f", "{{json .RepoDigests}}", `${addr}/teach/app:1`])) as string[];
    expect(digests).toEqual([`${addr}/teach/app@${pushedDigest}`]);
    // The registry has it under that digest.
    const res = await fetch(`${reg.url}/v2/teach/app/manifests/1`, { headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" } });
    expect(res.headers.get("docker-content-digest")).toBe(pushedDigest);
  });

  it("dockerd pulls what we pushed: same image id, layers, config; it runs, deletions included", async () => {
    const out = await ok(dockerd, ["pull", `${addr}/teach/app:1`]);
    expect(out).toContain(`Digest: ${pushedDigest}`);
    const fmt = "{{.Id}} {{json .RootFS.Layers}} {{json .Config.Cmd}} {{json .Config.Env}}";
    expect(await ok(dockerd, ["image", "inspect", "-f", fmt, `${addr}/teach/app:1`])).toBe(await ok(berth, ["image", "inspect", "-f", fmt, `${addr}/teach/app:1`]));
    expect((await ok(dockerd, ["image", "inspect", "-f", "{{.Id}}", `${addr}/teach/app:1`])).trim()).toBe(appId);
    expect(await ok(dockerd, ["run", "--rm", `${addr}/teach/app:1`])).toBe("pushed\n");
    expect(await ok(dockerd, ["run", "--rm", `${addr}/teach/app:1`, "sh", "-c", "ls /etc/shadow 2>&1; ls /var/spool"])).toBe("ls: /etc/shadow: No such file or directory\nfresh\n");
  });

  it("our engine pulls it back after rmi: same digest and id, progress stream as dockerd's", async () => {
    await ok(berth, ["rmi", `${addr}/teach/app:1`]);
    await ok(dockerd, ["rmi", `${addr}/teach/app:1`]);
    // Both engines have busybox's layer already? Ours does; give dockerd the same start.
    const ours = await rawPull(engine.socket, `${addr}/teach/app`, "1");
    const theirs = await rawPull(dockerd.socket, `${addr}/teach/app`, "1");
    const statuses = (lines: string[]) => lines.map((l) => JSON.parse(l) as { status: string }).map((m) => m.status);
    expect(ours.join("\n")).toContain(`"status":"Pull complete"`);
    expect(statuses(ours)).toContain("Pull complete");
    expect(ours.at(-2)).toBe(`{"status":"Digest: ${pushedDigest}"}`);
    expect(ours.at(-1)).toBe(`{"status":"Status: Downloaded newer image for ${addr}/teach/app:1"}`);
    // dockerd has no busybox layer from our engine, so it downloads both; compare the shape of
    // the layer it shares with ours (the top one) and the closing lines byte for byte.
    // (dockerd coalesces progress updates, so it may drop "Verifying Checksum" or "Waiting".)
    const topId = (JSON.parse(ours.find((x) => x.includes("Pull complete"))!) as { id: string }).id;
    const top = (lines: string[]) => lines.filter((l) => l.includes(`"id":"${topId}"`) && !/Verifying Checksum|Waiting/.test(l));
    expect(top(ours)).toEqual([
      `{"status":"Pulling fs layer","progressDetail":{},"id":"${topId}"}`,
      `{"status":"Download complete","progressDetail":{},"id":"${topId}"}`,
      `{"status":"Pull complete","progressDetail":{},"id":"${topId}"}`,
    ]);
    // Each line dockerd sent for that layer is one of ours, in the same order.
    const theirTop = top(theirs);
    expect(top(ours).filter((l) => theirTop.includes(l))).toEqual(theirTop);
    expect(ours.slice(-2)).toEqual(theirs.slice(-2));
    expect(ours[0]).toBe(theirs[0]);
    expect((await ok(berth, ["image", "inspect", "-f", "{{.Id}}", `${addr}/teach/app:1`])).trim()).toBe(appId);
    expect(await ok(berth, ["run", "--rm", `${addr}/teach/app:1`])).toBe("pushed\n");
    // Pulled again: up to date.
    const again = await ok(berth, ["pull", `${addr}/teach/app:1`]);
    expect(again).toContain(`Status: Image is up to date for ${addr}/teach/app:1`);
  });

  it("dockerd pushes, we pull: same id, it runs here; a layer we have shows Already exists", async () => {
    await ok(dockerd, ["run", "--name", "reg-d", `${addr}/teach/app:1`, "sh", "-c", "echo from-dockerd > /d"]);
    await ok(dockerd, ["commit", "-c", 'CMD ["cat", "/d"]', "reg-d", `${addr}/teach/fromd:2`]);
    const pushed = await ok(dockerd, ["push", `${addr}/teach/fromd:2`]);
    const digest = /2: digest: (sha256:[0-9a-f]{64})/.exec(pushed)![1]!;
    const out = await ok(berth, ["pull", `${addr}/teach/fromd:2`]);
    expect(out).toMatch(/: Already exists$/m);
    expect(out).toContain(`Digest: ${digest}`);
    expect(await ok(berth, ["image", "inspect", "-f", "{{.Id}}", `${addr}/teach/fromd:2`])).toBe(await ok(dockerd, ["image", "inspect", "-f", "{{.Id}}", `${addr}/teach/fromd:2`]));
    expect(await ok(berth, ["run", "--rm", `${addr}/teach/fromd:2`])).toBe("from-dockerd\n");
    // Its size, counted as the layer was unpacked (no walk), is the one dockerd shows.
    expect(await ok(berth, ["image", "inspect", "-f", "{{.Size}}", `${addr}/teach/fromd:2`])).toBe(await ok(dockerd, ["image", "inspect", "-f", "{{.Size}}", `${addr}/teach/fromd:2`]));
    // Pushing it from here to another repository mounts the blobs instead of uploading them.
    await ok(berth, ["tag", `${addr}/teach/fromd:2`, `${addr}/teach/copy:2`]);
    const copy = await ok(berth, ["push", `${addr}/teach/copy:2`]);
    expect(copy).toMatch(/: Mounted from teach\/fromd$/m);
    expect(copy).toContain(`2: digest: ${digest}`);
  });

  it("docker.io short names come from the mirror: `docker pull busybox` and `docker run` of a missing image", async () => {
    await ok(berth, ["tag", "busybox", `${addr}/library/busybox:mirror`]);
    await ok(berth, ["push", `${addr}/library/busybox:mirror`]);
    const out = await ok(berth, ["pull", "busybox:mirror"]);
    expect(out).toContain("mirror: Pulling from library/busybox");
    expect(out).toContain("docker.io/library/busybox:mirror");
    await ok(berth, ["rmi", "busybox:mirror", `${addr}/library/busybox:mirror`]);
    const run = await docker(berth, ["run", "--rm", "busybox:mirror", "echo", "via the mirror"]);
    expect(run.stderr).toContain("Unable to find image 'busybox:mirror' locally");
    expect(run.stdout).toContain("via the mirror");
  });

  it("pull by digest: the same output as dockerd's", async () => {
    const ref = `${addr}/teach/app@${pushedDigest}`;
    const a = await docker(berth, ["pull", ref]);
    const b = await docker(dockerd, ["pull", ref]);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).toContain(`Digest: ${pushedDigest}`);
    expect((await ok(berth, ["image", "inspect", "-f", "{{.Id}}", ref])).trim()).toBe(appId);
  });

  it("a missing tag and a missing repository fail with dockerd's messages", async () => {
    for (const image of [`${addr}/teach/app:nope`, `${addr}/nothing/here`]) {
      const a = await docker(berth, ["pull", image]);
      const b = await docker(dockerd, ["pull", image]);
      expect(a.code).toBe(1);
      expect(b.code).toBe(1);
      expect(a.stderr).toBe(b.stderr);
    }
    const r = await docker(berth, ["pull", "busybox:does-not-exist"]);
    expect(r.stderr).toContain("manifest for busybox:does-not-exist not found: manifest unknown: manifest unknown");
  });
});

describe("without a mirror", () => {
  it("a docker.io pull fails with a message that says why; local busybox still works", async () => {
    const dir = tmpDir("berth-nomirror-");
    const socket = path.join(dir, "docker.sock");
    const e = await startEngine({ root: path.join(dir, "state"), socket, network: { enabled: false } });
    try {
      const r = await docker(`unix://${socket}`, ["pull", "nginx"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("docker.io is not reachable from this machine and no registry mirror is configured");
      expect((await docker(`unix://${socket}`, ["pull", "busybox"])).stdout).toContain("Image is up to date for busybox:latest");
      const push = await docker(`unix://${socket}`, ["push", "busybox"]);
      expect(push.stderr).toContain("cannot push busybox");
    } finally {
      await e.close();
      unmountUnder(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
