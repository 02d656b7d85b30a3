/**
 * Image layers are untrusted archives: every one (pulled, `docker load`ed, `docker import`ed)
 * is unpacked by the strict extractor's "layer" policy (src/tar/extract.ts, through
 * extractLayerStream), which refuses a member that would land outside the layer's directory.
 * First the extractor alone, on archives crafted with tar-stream; then a hostile image pushed to a real registry (Debian's docker-registry)
 * and pulled with the real docker CLI through our engine: refused, with the reason, and nothing
 * written outside.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import zlib from "node:zlib";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type Registry } from "@berth/registry";
import { startEngine, type Engine } from "../src/engine";
import { extractLayerStream } from "../src/images/layers";
import { docker, tmpDir, unmountUnder } from "./harness";

interface Member {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device";
  linkname?: string;
  mode?: number;
  devmajor?: number;
  devminor?: number;
  body?: string;
}

/** A tar archive holding exactly these members, in this order (tar-stream writes what it is told). */
async function craft(members: Member[], trailer?: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((r) => pack.on("end", () => r()));
  for (const { body, ...h } of members) pack.entry({ mode: 0o644, ...h, mtime: new Date(0) } as tar.Header, body ?? "");
  pack.finalize();
  await ended;
  let out = Buffer.concat(chunks);
  // A second archive after the first one's zero blocks: `tar -x --ignore-zeros` reads it too.
  if (trailer) out = Buffer.concat([out, await craft(trailer)]);
  return out;
}

/** Unpack `bytes` as a layer, fed in pieces of `chunk` bytes (headers split across them): its digest, or its error. */
async function guard(bytes: Buffer, chunk = 100): Promise<string | Error> {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parts.push(bytes.subarray(i, i + chunk));
  const dir = path.join(tmpDir("berth-layer-x-"), "layer");
  try {
    return (await extractLayerStream(Readable.from(parts), dir)).digest;
  } catch (e) {
    return e as Error;
  } finally {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
}

const message = (r: string | Error) => (r instanceof Error ? r.message : "passed");

describe("the layer policy of the strict extractor", () => {
  it("unpacks an ordinary layer and hashes it whole: dirs, files, absolute links, hard links, devices, long names, whiteouts", async () => {
    const long = `usr/share/${"deep/".repeat(30)}file.txt`;
    const layer = await craft([
      { name: "etc", type: "directory", mode: 0o755 },
      { name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n" },
      { name: "bin/sh", type: "symlink", linkname: "/bin/busybox" }, // absolute links are image content
      { name: "lib", type: "symlink", linkname: "usr/lib" },
      { name: "etc/passwd-", type: "link", linkname: "etc/passwd" },
      { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3 },
      { name: long, body: "x".repeat(1000) },
      { name: "etc/.wh.shadow" }, // a whiteout, as the layer format writes one
    ]);
    const out = await guard(layer);
    expect(message(out)).toBe("passed");
    expect(out).toBe(sha(layer));
    // One byte at a time: the same.
    expect(await guard(layer, 1)).toBe(sha(layer));
  });

  it("refuses a member written through a symbolic link of the same archive (absolute or climbing)", async () => {
    for (const linkname of ["/etc", "../../../../etc", "usr/lib"]) {
      const r = await guard(await craft([{ name: "escape", type: "symlink", linkname }, { name: "escape/cron.d/pwned", body: "* * * * * root sh\n" }]));
      expect(message(r)).toBe('layer: member "escape/cron.d/pwned" would be written through the symbolic link "escape" of the same archive; refused, nothing was written outside');
    }
    // A directory of the same name later replaces the link: then members below it are fine.
    expect(message(await guard(await craft([{ name: "a", type: "symlink", linkname: "/" }, { name: "a", type: "directory" }, { name: "a/b", body: "ok" }])))).toBe("passed");
  });

  it("refuses names and hard links that climb out, and hard links to nothing earlier", async () => {
    expect(message(await guard(await craft([{ name: "../../etc/pwned", body: "x" }])))).toContain('member "../../etc/pwned" points outside the destination');
    expect(message(await guard(await craft([{ name: "shadow", type: "link", linkname: "../../../etc/shadow" }])))).toBe('layer: member "shadow" is a hard link to "../../../etc/shadow", outside the layer; refused, nothing was written outside');
    expect(message(await guard(await craft([{ name: "shadow", type: "link", linkname: "etc/shadow" }])))).toContain("which is not a file earlier in the archive");
    const through = await craft([{ name: "host", type: "symlink", linkname: "/etc" }, { name: "shadow", type: "link", linkname: "host/shadow" }]);
    expect(message(await guard(through))).toContain('is a hard link through the symbolic link "host"');
  });

  it("checks what comes after the end-of-archive blocks too, and refuses a truncated archive", async () => {
    const r = await guard(await craft([{ name: "ok", body: "fine" }, { name: "escape", type: "symlink", linkname: "/" }], [{ name: "escape/root/pwned", body: "x" }]));
    expect(message(r)).toContain('member "escape/root/pwned" would be written through the symbolic link "escape"');
    const whole = await craft([{ name: "big", body: "y".repeat(5000) }]);
    expect(message(await guard(whole.subarray(0, 2048)))).toBe("layer: truncated tar archive");
    const bad = Buffer.from(whole);
    bad[0] = 0x41; // checksum no longer matches
    expect(message(await guard(bad))).toContain("invalid tar header");
  });
});

// ---------- a hostile image through a real registry ----------

let reg: Registry;
let root: string;
let engine: Engine;
let berth: string;
let outside: string; // where the hostile layer aims: must stay empty

beforeAll(async () => {
  root = tmpDir("berth-layer-guard-");
  outside = path.join(root, "outside");
  fs.mkdirSync(outside);
  reg = await startRegistry({ root: path.join(root, "registry") });
  const socket = path.join(root, "docker.sock");
  engine = await startEngine({ root: path.join(root, "state"), socket, network: { enabled: false } });
  berth = `unix://${socket}`;
});

afterAll(async () => {
  await engine?.close();
  await reg?.stop();
  unmountUnder(root);
  fs.rmSync(root, { recursive: true, force: true });
});

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Upload one blob the way a client pushes (POST an upload, PUT it whole with its digest). */
async function pushBlob(repo: string, blob: Buffer): Promise<string> {
  const digest = sha(blob);
  const start = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get("location")!, reg.url);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, { method: "PUT", body: new Uint8Array(blob), headers: { "Content-Type": "application/octet-stream" } });
  expect(put.status).toBe(201);
  return digest;
}

/** An image whose one layer is `layerTar`, pushed as repo:latest straight through the registry API. */
async function pushImage(repo: string, layerTar: Buffer): Promise<void> {
  const gz = zlib.gzipSync(layerTar);
  const layerDigest = await pushBlob(repo, gz);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: { Cmd: ["/bin/sh"] }, rootfs: { type: "layers", diff_ids: [sha(layerTar)] }, history: [{ created_by: "crafted" }] }));
  const configDigest = await pushBlob(repo, config);
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: { mediaType: "application/vnd.docker.container.image.v1+json", size: config.length, digest: configDigest },
    layers: [{ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", size: gz.length, digest: layerDigest }],
  };
  const put = await fetch(`${reg.url}/v2/${repo}/manifests/latest`, { method: "PUT", body: JSON.stringify(manifest), headers: { "Content-Type": manifest.mediaType } });
  expect(put.status).toBe(201);
}

describe("docker pull of a hostile layer", () => {
  it("refuses a layer whose member would be written through its own link to a host directory; nothing lands there", async () => {
    await pushImage("evil/symlink", await craft([{ name: "escape", type: "symlink", linkname: outside }, { name: "escape/pwned", body: "written outside\n" }]));
    const r = await docker(berth, ["pull", `${reg.address}/evil/symlink:latest`], { timeout: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('member "escape/pwned" would be written through the symbolic link "escape" of the same archive; refused');
    expect(fs.readdirSync(outside)).toEqual([]);
    expect((await docker(berth, ["image", "inspect", `${reg.address}/evil/symlink:latest`])).code).not.toBe(0);
  }, 90_000);

  it("refuses a hard link to a host file; an honest image from the same registry still pulls", async () => {
    await pushImage("evil/hardlink", await craft([{ name: "etc", type: "directory", mode: 0o755 }, { name: "etc/shadow", type: "link", linkname: "../../../../../../etc/shadow" }]));
    const r = await docker(berth, ["pull", `${reg.address}/evil/hardlink:latest`], { timeout: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('is a hard link to "../../../../../../etc/shadow", outside the layer; refused');
    await pushImage("honest/app", await craft([{ name: "hello.txt", body: "hello from a pulled layer\n" }, { name: "bin", type: "symlink", linkname: "/nowhere" }]));
    const since = String(Math.floor(Date.now() / 1000));
    const ok = await docker(berth, ["pull", `${reg.address}/honest/app:latest`], { timeout: 60_000 });
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    // The pull is an event, as dockerd words it (only the honest one: a refused pull is none).
    const ev = await docker(berth, ["events", "--since", since, "--until", String(Math.floor(Date.now() / 1000) + 1), "--filter", "type=image", "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}"]);
    expect(ev.stdout).toBe(`pull ${reg.address}/honest/app:latest ${reg.address}/honest/app\n`);
  }, 90_000);
});
