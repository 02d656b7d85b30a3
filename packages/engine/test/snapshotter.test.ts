/**
 * The snapshotter's contract (src/snapshots/snapshotter.ts), as a suite any implementation can be
 * held to: `snapshotterConformance(name, makeFixture)` runs it against whatever the fixture makes.
 * Here it runs for overlayfs with real mounts (root; the system tier), over a real image store.
 *
 * Written against the interface only: parent layers come from the fixture (their format is the
 * store's business), changes are made through the mounted root, and a commit is checked by
 * mounting a new snapshot on top of the committed layer and comparing the two trees.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEngine } from "../src/engine";
import { EngineError } from "../src/errors";
import { ImageStore } from "../src/images/store";
import { OverlaySnapshotter } from "../src/snapshots/overlay";
import type { Change, Snapshotter } from "../src/snapshots/snapshotter";
import { docker, unmountUnder } from "./harness";

/** A layer's files: text for a file, DIR for a directory, WHITEOUT for "deleted here". */
export const DIR = Symbol("dir");
export const WHITEOUT = Symbol("whiteout");
export type LayerFiles = Record<string, string | typeof DIR | typeof WHITEOUT>;

export interface SnapshotterFixture {
  snapshotter: Snapshotter;
  /** A layer the snapshotter can use as a parent; its diff id. */
  layer(files: LayerFiles): Promise<string>;
  /** A second snapshotter on the same state (an engine restart). */
  reopen(): Snapshotter;
  close(): Promise<void>;
}

/** The tree under a mounted root: path -> "dir", "file:<text>", "link:<target>". */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = path.posix.join(rel, name);
      const st = fs.lstatSync(path.join(root, r));
      if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o7777).toString(8)}`;
        walk(r);
      } else if (st.isSymbolicLink()) out[r] = `link:${fs.readlinkSync(path.join(root, r))}`;
      else out[r] = `file ${(st.mode & 0o7777).toString(8)}:${fs.readFileSync(path.join(root, r), "utf8")}`;
    }
  };
  walk("/");
  return out;
}

const mounted = (target: string) => fs.readFileSync("/proc/self/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === target);

async function status(p: unknown): Promise<number | undefined> {
  try {
    await (typeof p === "function" ? (p as () => unknown)() : p);
  } catch (e) {
    return e instanceof EngineError ? e.status : -1;
  }
  return undefined;
}

export function snapshotterConformance(name: string, makeFixture: () => Promise<SnapshotterFixture>): void {
  describe(`snapshotter conformance: ${name}`, () => {
    let f: SnapshotterFixture;
    let s: Snapshotter;
    let parents: string[];

    beforeAll(async () => {
      f = await makeFixture();
      s = f.snapshotter;
      const base = await f.layer({
        "etc/": DIR,
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
        "etc/group": "root:x:0:\n",
        keep: "old contents\n",
        old: "to be deleted\n",
        ren: "renamed\n",
        "opq/": DIR,
        "opq/x": "x\n",
        "opq/y": "y\n",
        "gone-below": "hidden by the layer above\n",
      });
      const top = await f.layer({
        "etc/": DIR,
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        "gone-below": WHITEOUT,
        "from-top": "top\n",
      });
      parents = [base, top]; // as an image config lists them: bottom first
    });

    afterAll(async () => {
      await f?.close();
    });

    it("prepare: the parents below, topmost first in the view, nothing written yet", async () => {
      const v = s.prepare("view-1", parents);
      expect(v.key).toBe("view-1");
      expect(v.layers.map((l) => l.diffId)).toEqual([...parents].reverse());
      expect(s.has("view-1")).toBe(true);
      expect(s.list()).toContain("view-1");
      expect(s.diff("view-1")).toEqual([]);
      expect(s.usage("view-1")).toEqual({ size: 0, inodes: 0 });
      expect(s.isMounted("view-1")).toBe(false);
      expect(await s.commit("view-1")).toBeUndefined(); // nothing changed: no layer
      await s.remove("view-1");
    });

    it("prepare with an init layer: its paths are there, below the writable layer (no diff, no commit)", async () => {
      s.prepare("init-1", parents, { init: { dirs: ["proc"], files: ["etc/hostname", ".dockerenv"] } });
      expect(s.view("init-1").layers[0]!.diffId).toBeNull();
      const root = s.mount("init-1");
      expect(fs.statSync(path.join(root, "proc")).isDirectory()).toBe(true);
      expect(fs.readFileSync(path.join(root, "etc/hostname"), "utf8")).toBe("");
      expect(fs.existsSync(path.join(root, ".dockerenv"))).toBe(true);
      expect(s.diff("init-1")).toEqual([]);
      expect(await s.commit("init-1")).toBeUndefined();
      await s.remove("init-1");
    });

    it("readFile before a mount agrees with the mounted root; the topmost layer and its whiteouts win", () => {
      s.prepare("read-1", parents);
      const before = { passwd: s.readFile("read-1", "etc/passwd"), group: s.readFile("read-1", "etc/group"), gone: s.readFile("read-1", "gone-below"), none: s.readFile("read-1", "etc/shadow") };
      expect(before.passwd).toContain("app:x:1000");
      expect(before.group).toBe("root:x:0:\n");
      expect(before.gone).toBeNull();
      expect(before.none).toBeNull();
      const root = s.mount("read-1");
      expect(s.isMounted("read-1")).toBe(true);
      expect(mounted(root)).toBe(true);
      expect(s.mount("read-1")).toBe(root); // mounting twice is the same mount
      expect(fs.readFileSync(path.join(root, "etc/passwd"), "utf8")).toBe(before.passwd);
      expect(fs.existsSync(path.join(root, "gone-below"))).toBe(false);
      const spec = s.mountSpec("read-1");
      expect(spec.target).toBe(root);
      s.unmount("read-1");
      expect(mounted(root)).toBe(false);
      s.unmount("read-1"); // not mounted: nothing to do
    });

    it("diff gives A/C/D as docker diff does: added, changed, deleted, renamed, an opaque directory", () => {
      s.prepare("diff-1", parents);
      const root = s.mount("diff-1");
      fs.writeFileSync(path.join(root, "added"), "new\n");
      fs.writeFileSync(path.join(root, "keep"), "new contents\n");
      fs.rmSync(path.join(root, "old"));
      fs.renameSync(path.join(root, "ren"), path.join(root, "ren2"));
      fs.mkdirSync(path.join(root, "newdir/sub"), { recursive: true });
      fs.writeFileSync(path.join(root, "newdir/sub/f"), "f\n");
      // A directory removed and made again is opaque: nothing below shows through it.
      fs.rmSync(path.join(root, "opq"), { recursive: true });
      fs.mkdirSync(path.join(root, "opq"));
      fs.writeFileSync(path.join(root, "opq/z"), "z\n");
      fs.appendFileSync(path.join(root, "etc/passwd"), "bob:x:1001:1001::/home/bob:/bin/sh\n");
      expect(fs.readdirSync(path.join(root, "opq"))).toEqual(["z"]);
      const d: Change[] = s.diff("diff-1");
      expect(d).toEqual([
        { Path: "/added", Kind: 1 },
        { Path: "/etc", Kind: 0 },
        { Path: "/etc/passwd", Kind: 0 },
        { Path: "/keep", Kind: 0 },
        { Path: "/newdir", Kind: 1 },
        { Path: "/newdir/sub", Kind: 1 },
        { Path: "/newdir/sub/f", Kind: 1 },
        { Path: "/old", Kind: 2 },
        { Path: "/opq", Kind: 0 },
        { Path: "/opq/x", Kind: 2 },
        { Path: "/opq/y", Kind: 2 },
        { Path: "/opq/z", Kind: 1 },
        { Path: "/ren", Kind: 2 },
        { Path: "/ren2", Kind: 1 },
      ]);
    });

    it("usage grows with the bytes and files written", () => {
      const before = s.usage("diff-1");
      expect(before.size).toBeGreaterThan(0);
      const root = s.mount("diff-1");
      fs.writeFileSync(path.join(root, "big"), Buffer.alloc(1 << 20, 7));
      const after = s.usage("diff-1");
      expect(after.size - before.size).toBe(1 << 20);
      expect(after.inodes).toBe(before.inodes + 1);
      fs.rmSync(path.join(root, "big"));
      expect(s.usage("diff-1").size).toBe(before.size);
    });

    it("commit: a layer whose contents match the snapshot's root, while it stays usable", async () => {
      const root = s.mount("diff-1");
      const expected = tree(root);
      const diffId = await s.commit("diff-1");
      expect(diffId).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(s.isMounted("diff-1")).toBe(true); // a docker commit of a running container: it goes on
      expect(s.diff("diff-1")).toHaveLength(14);
      s.prepare("from-commit", [...parents, diffId!]);
      expect(tree(s.mount("from-commit"))).toEqual(expected);
      expect(s.diff("from-commit")).toEqual([]);
      // The same changes committed again are the same layer (content-addressed).
      expect(await s.commit("diff-1")).toBe(diffId);
      await s.remove("from-commit");
    });

    it("commit with consume: the same layer, and the snapshot left with nothing written", async () => {
      const expected = tree(s.mount("diff-1"));
      const first = await s.commit("diff-1");
      const diffId = await s.commit("diff-1", { consume: true });
      expect(diffId).toBe(first);
      expect(s.isMounted("diff-1")).toBe(false);
      expect(s.diff("diff-1")).toEqual([]);
      expect(s.usage("diff-1")).toEqual({ size: 0, inodes: 0 });
      s.prepare("from-consumed", [...parents, diffId!]);
      expect(tree(s.mount("from-consumed"))).toEqual(expected);
      await s.remove("from-consumed");
    });

    it("survives a restart: a new snapshotter on the same state finds the snapshot, mounted or not", () => {
      s.prepare("kept-1", parents);
      const root = s.mount("kept-1");
      fs.writeFileSync(path.join(root, "note"), "still here\n");
      const again = f.reopen();
      expect(again.has("kept-1")).toBe(true);
      expect(again.view("kept-1")).toEqual(s.view("kept-1"));
      expect(again.isMounted("kept-1")).toBe(true);
      expect(again.diff("kept-1")).toEqual([{ Path: "/note", Kind: 1 }]);
    });

    it("remove leaves nothing: no mount, none of its directories", async () => {
      for (const key of ["kept-1", "diff-1", "read-1"]) {
        const v = s.view(key);
        const paths = [v.upper, v.work, v.merged, ...v.layers.filter((l) => !l.diffId).map((l) => l.dir)].filter(Boolean);
        s.mount(key);
        await s.remove(key);
        expect(s.has(key)).toBe(false);
        expect(s.list()).not.toContain(key);
        expect(mounted(v.merged)).toBe(false);
        for (const p of paths) expect(fs.existsSync(p), p).toBe(false);
      }
      expect(s.list()).toEqual([]);
      // The parents are the store's: still there for the next snapshot.
      s.prepare("after-remove", parents);
      expect(s.readFile("after-remove", "from-top")).toBe("top\n");
      await s.remove("after-remove");
    });

    it("errors: an unknown key is a 404, a second prepare of a key a 409, an unknown parent a 404, a bad key a 400", async () => {
      for (const op of [() => s.view("nope"), () => s.mount("nope"), () => s.unmount("nope"), () => s.diff("nope"), () => s.usage("nope"), () => s.readFile("nope", "etc/passwd"), () => s.mountSpec("nope"), () => s.isMounted("nope")]) {
        expect(await status(op)).toBe(404);
      }
      expect(await status(s.commit("nope"))).toBe(404);
      expect(await status(s.remove("nope"))).toBe(404);
      s.prepare("twice", parents);
      expect(await status(() => s.prepare("twice", parents))).toBe(409);
      expect(s.diff("twice")).toEqual([]); // the refused prepare changed nothing
      await s.remove("twice");
      expect(await status(() => s.prepare("bad-parent", [...parents, `sha256:${"0".repeat(64)}`]))).toBe(404);
      expect(s.has("bad-parent")).toBe(false);
      for (const key of ["../escape", "a/b", "", ".hidden"]) expect(await status(() => s.prepare(key, parents))).toBe(400);
    });
  });
}

// ---------- overlayfs, with real mounts ----------

function overlayFixture(): Promise<SnapshotterFixture> {
  if (process.getuid?.() !== 0) throw new Error("the overlay snapshotter's conformance suite mounts overlayfs: run it as root");
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "berth-snapshotter-"));
  const images = new ImageStore(path.join(base, "state"));
  const root = path.join(base, "state", "snapshots");
  const made: Snapshotter[] = [];
  const open = () => {
    const s = new OverlaySnapshotter(root, images);
    made.push(s);
    return s;
  };
  let n = 0;
  return Promise.resolve({
    snapshotter: open(),
    reopen: open,
    async layer(files: LayerFiles): Promise<string> {
      // A layer in overlay form, as the store keeps them: a whiteout is a character device 0/0.
      const dir = path.join(base, `layer-${n++}`);
      fs.mkdirSync(dir);
      for (const [rel, what] of Object.entries(files)) {
        const p = path.join(dir, rel);
        if (what === DIR) fs.mkdirSync(p, { recursive: true });
        else if (what === WHITEOUT) execFileSync("mknod", [p, "c", "0", "0"]);
        else {
          fs.mkdirSync(path.dirname(p), { recursive: true });
          fs.writeFileSync(p, what);
        }
      }
      return images.addLayer(dir);
    },
    async close() {
      for (const line of fs.readFileSync("/proc/self/mounts", "utf8").split("\n")) {
        const target = line.split(" ")[1];
        if (target?.startsWith(`${base}/`)) execFileSync("umount", ["-l", target]);
      }
      fs.rmSync(base, { recursive: true, force: true });
    },
  });
}

snapshotterConformance("overlayfs", overlayFixture);

// ---------- the engine and its snapshots ----------

describe("the engine keeps its containers' snapshots", () => {
  it("adopts an older engine's layout (dirs in the container's directory), and drops a snapshot whose container is gone", async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), "berth-adopt-"));
    const root = path.join(base, "state"), socket = path.join(base, "docker.sock"), host = `unix://${socket}`;
    try {
      let engine = await startEngine({ root, socket, network: { enabled: false } });
      expect((await docker(host, ["run", "--name", "old", "busybox", "sh", "-c", "echo hi > /f; rm -f /bin/ls"])).code).toBe(0);
      expect((await docker(host, ["create", "--name", "gone", "busybox", "true"])).code).toBe(0);
      const id = (await docker(host, ["inspect", "-f", "{{.Id}}", "old"])).stdout.trim();
      const goneId = (await docker(host, ["inspect", "-f", "{{.Id}}", "gone"])).stdout.trim();
      await engine.close();
      // What an engine from before snapshots/ left: upper, work, merged and init inside the
      // container's directory, the record's recipe naming them; and a container directory lost
      // while its snapshot stayed (an engine stopped in the middle of an rm).
      const cdir = path.join(root, "containers", id), sdir = path.join(root, "snapshots", id);
      for (const d of ["upper", "work", "init"]) fs.renameSync(path.join(sdir, d), path.join(cdir, d));
      fs.mkdirSync(path.join(cdir, "merged"));
      fs.rmSync(sdir, { recursive: true });
      const rec = JSON.parse(fs.readFileSync(path.join(cdir, "config.json"), "utf8"));
      rec.recipe.rootfs = { ...rec.recipe.rootfs, lower: [path.join(cdir, "init"), ...rec.recipe.rootfs.lower.slice(1)], upper: path.join(cdir, "upper"), work: path.join(cdir, "work"), merged: path.join(cdir, "merged") };
      fs.writeFileSync(path.join(cdir, "config.json"), JSON.stringify(rec));
      fs.rmSync(path.join(root, "containers", goneId), { recursive: true });

      engine = await startEngine({ root, socket, network: { enabled: false } });
      expect((await docker(host, ["diff", "old"])).stdout).toBe("C /bin\nD /bin/ls\nA /f\n");
      expect((await docker(host, ["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", "old"])).stdout.trim()).toBe(path.join(cdir, "upper"));
      expect((await docker(host, ["start", "-a", "old"])).code).toBe(0);
      expect((await docker(host, ["commit", "old", "adopted:1"])).code).toBe(0);
      const r = await docker(host, ["run", "--rm", "adopted:1", "sh", "-c", "cat /f; test -e /bin/ls"]);
      expect([r.stdout, r.code]).toEqual(["hi\n", 1]); // the file and the whiteout both in the committed layer
      expect((await docker(host, ["rm", "old"])).code).toBe(0);
      for (let i = 0; i < 50 && (fs.existsSync(cdir) || fs.readdirSync(path.join(root, "snapshots")).length); i++) await new Promise((res) => setTimeout(res, 100));
      expect(fs.existsSync(cdir)).toBe(false);
      expect(fs.readdirSync(path.join(root, "snapshots"))).toEqual([]); // the adopted one and the orphan
      await engine.close();
    } finally {
      unmountUnder(base);
      fs.rmSync(base, { recursive: true, force: true });
    }
  }, 120_000);
});
