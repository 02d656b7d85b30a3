// Images from a read-only shared store (what a sandbox gets at /opt/berth-images): imported in the
// background at start, layer linked not copied, `docker run` of the image during the import waits
// for it, `docker rmi` drops only the link and `docker pull` brings it back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { startEngine, type Engine } from "../src/engine";
import { makeBusyboxRootfs } from "../src/images/busybox";
import { ImageStore } from "../src/images/store";
import { docker, tmpDir, unmountUnder } from "./harness";

let root: string;
let shared: string;
let engine: Engine;
let host: string;
let resolvedAtStart: unknown;
let diffId: string;

beforeAll(async () => {
  root = tmpDir("berth-shared-");
  // A shared store with one image, teach:shared (busybox plus a marker, so its layer is its own).
  shared = path.join(root, "shared");
  const store = new ImageStore(shared);
  const dir = path.join(shared, "tmp", "layer");
  makeBusyboxRootfs(dir);
  fs.writeFileSync(path.join(dir, "etc", "shared-marker"), "from the shared store\n");
  diffId = await store.addLayer(dir);
  const created = new Date().toISOString();
  const id = store.addImage({ architecture: "amd64", os: "linux", created, config: { Cmd: ["sh"] }, rootfs: { type: "layers", diff_ids: [diffId] }, history: [{ created }] });
  store.tag(id, "teach:shared");
  fs.rmSync(path.join(shared, "tmp"), { recursive: true, force: true });

  const socket = path.join(root, "docker.sock");
  // In this process, so in the host's network namespace: no bridge (berth0 may be another engine's).
  engine = await startEngine({ root: path.join(root, "state"), socket, sharedImages: [shared], network: { enabled: false } });
  resolvedAtStart = engine.images.resolve("teach:shared");
  host = `unix://${socket}`;
});

afterAll(async () => {
  await engine?.close();
  unmountUnder(root);
  fs.rmSync(root, { recursive: true, force: true });
});

describe("shared images", () => {
  it("imports in the background: the engine serves before the image is there, and `docker run` of it waits", async () => {
    expect(resolvedAtStart).toBeUndefined();
    const r = await docker(host, ["run", "--rm", "teach:shared", "cat", "/etc/shared-marker"]);
    expect(r.stdout).toBe("from the shared store\n");
    expect(r.code).toBe(0);
  });

  it("links the layer to the shared store instead of copying it, and lists the image", async () => {
    const local = engine.images.layerPath(diffId);
    expect(fs.lstatSync(local).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(local)).toBe(path.join(shared, "image", "layers", "sha256", diffId.replace("sha256:", "")));
    const r = await docker(host, ["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    expect(r.stdout.split("\n").sort()).toEqual(expect.arrayContaining(["busybox:latest", "teach:shared"]));
  });

  it("`docker rmi` removes the link only; `docker pull` imports it again", async () => {
    expect((await docker(host, ["rmi", "teach:shared"])).code).toBe(0);
    expect(fs.existsSync(engine.images.layerPath(diffId))).toBe(false);
    expect(fs.existsSync(path.join(shared, "image", "layers", "sha256", diffId.replace("sha256:", ""), "etc", "shared-marker"))).toBe(true);
    expect((await docker(host, ["pull", "teach:shared"])).code).toBe(0);
    const r = await docker(host, ["run", "--rm", "teach:shared", "cat", "/etc/shared-marker"]);
    expect(r.stdout).toBe("from the shared store\n");
  });
});
