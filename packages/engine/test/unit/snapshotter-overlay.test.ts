/**
 * The overlay snapshotter's bookkeeping, without root and without mounting (the mounted behaviour
 * is test/snapshotter.test.ts, the conformance suite): snapshot.json read again by a second
 * instance, a prepare that died half-way cleaned up, a snapshot of an older engine adopted where
 * its record says and removed completely, usage counting a hard-linked file once, mountSpec's
 * options, and diff read from a writable layer that has no whiteouts (those need mknod, root).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ImageStore } from "../../src/images/store";
import { treeUsage } from "../../src/paths/usage";
import { OverlaySnapshotter } from "../../src/snapshots/overlay";

let base: string;
let images: ImageStore;
let root: string;

function layer(files: Record<string, string>): Promise<string> {
  const dir = fs.mkdtempSync(path.join(base, "layer-"));
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return images.addLayer(dir);
}

beforeEach(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), "berth-snap-unit-"));
  images = new ImageStore(path.join(base, "state"));
  root = path.join(base, "state", "snapshots");
});

afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

describe("OverlaySnapshotter without mounting", () => {
  it("keeps snapshot.json: a second instance sees the same snapshots and views", async () => {
    const a = new OverlaySnapshotter(root, images);
    const p = await layer({ "etc/passwd": "root:x:0:0::/root:/bin/sh\n" });
    const v = a.prepare("c1", [p], { init: { dirs: ["proc"], files: ["etc/hostname"] } });
    expect(v.layers).toEqual([{ dir: path.join(root, "c1", "init"), diffId: null }, { dir: images.layerPath(p), diffId: p }]);
    expect(v.data).toEqual({ LowerDir: v.lower.join(":"), UpperDir: v.upper, WorkDir: v.work, MergedDir: v.merged });
    const b = new OverlaySnapshotter(root, images);
    expect(b.list()).toEqual(["c1"]);
    expect(b.view("c1")).toEqual(v);
    expect(b.readFile("c1", "etc/passwd")).toBe("root:x:0:0::/root:/bin/sh\n");
    expect(b.readFile("c1", "etc/hostname")).toBe(""); // from the init layer, the topmost
  });

  it("mountSpec: the overlay mount berth-shim makes, lower dirs topmost first", async () => {
    const s = new OverlaySnapshotter(root, images);
    const bottom = await layer({ a: "1" }), top = await layer({ b: "2" });
    const v = s.prepare("c2", [bottom, top]);
    const spec = s.mountSpec("c2");
    expect(spec).toMatchObject({ type: "overlay", source: "overlay", target: v.merged });
    expect(spec.options).toMatch(new RegExp(`^lowerdir=${images.layerPath(top)}:${images.layerPath(bottom)},upperdir=${v.upper},workdir=${v.work}`));
  });

  it("a prepare that died before snapshot.json is cleaned up at the next start", async () => {
    fs.mkdirSync(path.join(root, "half/upper"), { recursive: true });
    const s = new OverlaySnapshotter(root, images);
    expect(s.list()).toEqual([]);
    expect(fs.existsSync(path.join(root, "half"))).toBe(false);
    s.prepare("half", []); // the key is free again
  });

  it("adopts an older engine's snapshot where its record says, and remove() deletes all of it", async () => {
    const p = await layer({ x: "x" });
    const old = path.join(base, "state", "containers", "c3");
    const paths = { lower: [path.join(old, "init"), images.layerPath(p)], upper: path.join(old, "upper"), work: path.join(old, "work"), merged: path.join(old, "merged") };
    for (const d of [...paths.lower.slice(0, 1), paths.upper, paths.work, paths.merged]) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(paths.upper, "mine"), "12345");
    const s = new OverlaySnapshotter(root, images);
    const v = s.adopt!("c3", paths);
    expect(v.layers.map((l) => l.diffId)).toEqual([null, p]);
    expect(v.upper).toBe(paths.upper);
    expect(s.diff("c3")).toEqual([{ Path: "/mine", Kind: 1 }]);
    expect(s.usage("c3")).toEqual({ size: 5, inodes: 1 });
    expect(() => s.adopt!("c3", paths)).toThrow(/already exists/);
    await s.remove("c3");
    for (const d of [paths.upper, paths.work, paths.merged, paths.lower[0]!, path.join(root, "c3")]) expect(fs.existsSync(d), d).toBe(false);
    expect(fs.existsSync(images.layerPath(p))).toBe(true); // the image's layer is not the snapshot's
  });

  it("diff: added and changed, parents of a change that exist below count as changed", async () => {
    const s = new OverlaySnapshotter(root, images);
    const v = s.prepare("c4", [await layer({ "etc/passwd": "a", "usr/bin/x": "x" })]);
    // Written straight into the writable layer, as overlayfs would on a copy-up (no mount needed).
    fs.mkdirSync(path.join(v.upper, "etc"));
    fs.writeFileSync(path.join(v.upper, "etc/passwd"), "b");
    fs.mkdirSync(path.join(v.upper, "srv/app"), { recursive: true });
    expect(s.diff("c4")).toEqual([
      { Path: "/etc", Kind: 0 },
      { Path: "/etc/passwd", Kind: 0 },
      { Path: "/srv", Kind: 1 },
      { Path: "/srv/app", Kind: 1 },
    ]);
    expect(s.readFile("c4", "etc/passwd")).toBeUndefined(); // changes of its own: only a mount can tell
  });

  it("a refused prepare leaves nothing: an init path outside its layer", async () => {
    const s = new OverlaySnapshotter(root, images);
    expect(() => s.prepare("c5", [], { init: { dirs: [], files: ["../../escape"] } })).toThrow(/outside the layer/);
    expect(s.has("c5")).toBe(false);
    expect(fs.existsSync(path.join(root, "c5"))).toBe(false);
    expect(fs.existsSync(path.join(root, "escape"))).toBe(false);
    s.prepare("c5", [], { init: { dirs: ["/proc"], files: ["/etc/hostname"] } }); // absolute means inside the layer
    expect(s.readFile("c5", "etc/hostname")).toBe("");
  });

  it("usage counts a hard-linked file once, and every inode", async () => {
    const dir = path.join(base, "u");
    fs.mkdirSync(path.join(dir, "d"), { recursive: true });
    fs.writeFileSync(path.join(dir, "d/f"), Buffer.alloc(1000));
    fs.linkSync(path.join(dir, "d/f"), path.join(dir, "g"));
    fs.symlinkSync("d/f", path.join(dir, "l"));
    expect(treeUsage(dir)).toEqual({ size: 1000 + "d/f".length, inodes: 3 });
    expect(treeUsage(path.join(base, "missing"))).toEqual({ size: 0, inodes: 0 });
  });
});
