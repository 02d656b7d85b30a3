/**
 * The overlayfs snapshotter (the `Snapshotter` of snapshotter.ts, as Berth runs it): a container's
 * root filesystem is the image layers (read-only "lower" dirs) under a writable "upper" dir of its
 * own; "work" is overlayfs's scratch space. Everything a container changes lands in upper/, which
 * is why `docker diff` and `docker commit` only read it.
 *
 *   mount -t overlay overlay -o lowerdir=L2:L1,upperdir=U,workdir=W merged
 *
 * Each snapshot is a directory of its own, <snapshots root>/<key>/{init,upper,work,merged}, with
 * snapshot.json saying what it is made of; nothing outside this directory (src/snapshots) opens
 * those paths. The free functions below are the mechanics; OverlaySnapshotter at the end is the
 * interface the rest of the engine uses.
 */
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { getAttributeSync, setAttributeSync } from "fs-xattr";
import { EngineError } from "../errors";
import type { ImageStore } from "../images/store";
import type { Change, InitLayer, MountSpec, Snapshotter, SnapshotView } from "./snapshotter";
import { spreadSubdirectories } from "../paths/spread";
import { treeUsage } from "../paths/usage";

export interface Snapshot {
  lower: string[]; // topmost first
  upper: string;
  work: string;
  merged: string;
}

export function prepareSnapshot(dir: string, lower: string[]): Snapshot {
  const s = { lower, upper: path.join(dir, "upper"), work: path.join(dir, "work"), merged: path.join(dir, "merged") };
  for (const d of [s.upper, s.work, s.merged]) fs.mkdirSync(d, { recursive: true });
  return s;
}

/**
 * True when this engine runs in a user namespace (nested in a learner's sandbox). There overlayfs
 * cannot write its trusted.overlay.* xattrs (they need CAP_SYS_ADMIN on the host), so deleting a
 * directory that comes from an image layer fails with EIO; `userxattr` makes it keep the same
 * markers (opaque, redirect) in user.overlay.* instead, which the sandbox's root may write.
 */
export const NESTED_IN_USER_NAMESPACE = (() => {
  try {
    return fs.readFileSync("/proc/self/uid_map", "utf8").trim().split(/\s+/).join(" ") !== "0 0 4294967295";
  } catch {
    return false;
  }
})();
/** Where overlayfs keeps its markers (an opaque directory: `<prefix>opaque` = "y"). */
export const OVERLAY_XATTR_PREFIX = NESTED_IN_USER_NAMESPACE ? "user.overlay." : "trusted.overlay.";

export function overlayOptions(s: Snapshot): string {
  return `lowerdir=${s.lower.join(":")},upperdir=${s.upper},workdir=${s.work}${NESTED_IN_USER_NAMESPACE ? ",userxattr" : ""}`;
}

export function isMounted(dir: string): boolean {
  const target = path.resolve(dir);
  return fs.readFileSync("/proc/self/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === target);
}

/**
 * One file of the root filesystem read from the layers, without mounting them, by overlayfs's
 * rules: the topmost layer holding the path wins, and a whiteout (a 0/0 character device) or an
 * opaque directory on the way hides everything below it. Used before a fresh container starts
 * (its /etc/passwd and /etc/group), so that the shim can mount the overlay instead of a `mount`
 * process. Returns null if the file is not there; undefined if the layers alone cannot tell (a
 * symlink on the way, or an upper dir with changes of its own): then mount and read the merged dir.
 */
export function readFromLayers(s: Snapshot, rel: string): string | null | undefined {
  if (fs.readdirSync(s.upper).length) return undefined; // renames and redirects: leave it to the kernel
  const parts = rel.split("/").filter(Boolean);
  for (const layer of s.lower) {
    let opaque = false;
    for (let i = 0; i < parts.length; i++) {
      const p = path.join(layer, ...parts.slice(0, i + 1));
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        break; // not in this layer: look lower
      }
      if (st.isCharacterDevice() && st.rdev === 0) return null; // deleted here
      if (st.isSymbolicLink()) return undefined;
      if (i === parts.length - 1) return st.isFile() ? fs.readFileSync(p, "utf8") : null;
      if (!st.isDirectory()) return null; // a file hides the directory below
      if (isOpaqueDir(p)) opaque = true;
    }
    if (opaque) return null; // an opaque directory on the way, and the file not in it
  }
  return null;
}

export function mountSnapshot(s: Snapshot): void {
  if (isMounted(s.merged)) return;
  execFileSync("mount", ["-t", "overlay", "overlay", "-o", overlayOptions(s), s.merged]);
}

export function unmountSnapshot(s: Snapshot): void {
  if (!isMounted(s.merged)) return;
  try {
    execFileSync("umount", [s.merged]);
  } catch {
    execFileSync("umount", ["-l", s.merged]); // still busy (a cp in flight): detach it lazily
  }
}

export function unmountSnapshotAsync(s: Snapshot): Promise<void> {
  if (!isMounted(s.merged)) return Promise.resolve();
  return new Promise((resolve) => {
    execFile("umount", [s.merged], (err) => {
      if (!err) return resolve();
      execFile("umount", ["-l", s.merged], () => resolve());
    });
  });
}

/**
 * `docker diff`: walk the upper dir. A character device 0/0 is an overlayfs whiteout (deleted);
 * anything else that also exists in a lower dir was changed, otherwise added. Parents of a change
 * that exist below count as changed, the way Docker reports them.
 */
export function changes(s: Snapshot): Change[] {
  const out: Change[] = [];
  const inLower = (rel: string) => s.lower.some((l) => fs.existsSync(path.join(l, rel)) || isSymlink(path.join(l, rel)));
  const walk = (rel: string) => {
    const abs = path.join(s.upper, rel);
    for (const name of fs.readdirSync(abs).sort()) {
      const r = path.join(rel, name);
      const st = fs.lstatSync(path.join(s.upper, r));
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ Path: r, Kind: 2 });
        continue;
      }
      const existed = inLower(r);
      if (st.isDirectory()) {
        const opaque = readOpaque(path.join(s.upper, r));
        out.push({ Path: r, Kind: existed ? 0 : 1 });
        if (opaque && existed) {
          // An opaque dir hides everything below it: whatever the lower layers had there is deleted.
          for (const l of s.lower) {
            const ld = path.join(l, r);
            if (fs.existsSync(ld)) for (const n of fs.readdirSync(ld)) if (!fs.existsSync(path.join(s.upper, r, n))) out.push({ Path: path.join(r, n), Kind: 2 });
          }
        }
        walk(r);
      } else out.push({ Path: r, Kind: existed ? 0 : 1 });
    }
  };
  walk("/");
  return out.sort((a, b) => a.Path.localeCompare(b.Path));
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function readOpaque(dir: string): boolean {
  return isOpaqueDir(dir, [`${OVERLAY_XATTR_PREFIX}opaque`]);
}

/** Both spellings of overlayfs's opaque marker: a layer made on the host may be read nested, and back. */
export const OPAQUE_XATTRS = ["trusted.overlay.opaque", "user.overlay.opaque"];

/**
 * Whether a directory hides what is below it (`<prefix>opaque` = "y"). Read with the kernel's
 * getxattr through fs-xattr, not a command-line tool: a missing tool once made opaque directories
 * vanish silently. "No such attribute" and "this filesystem has no xattrs" both mean no; anything
 * else is an error worth seeing. Only call it on a real directory (getxattr follows symlinks).
 */
export function isOpaqueDir(dir: string, names: readonly string[] = OPAQUE_XATTRS): boolean {
  for (const name of names) {
    try {
      if (getAttributeSync(dir, name).toString("utf8") === "y") return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENODATA" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOATTR") throw e;
    }
  }
  return false;
}

/** Mark a directory opaque for overlayfs; throws if the filesystem or the caller cannot (never a silent no-op). */
export function markOpaque(dir: string): void {
  setAttributeSync(dir, `${OVERLAY_XATTR_PREFIX}opaque`, "y");
}

// ---------- the Snapshotter ----------

/** What the snapshotter needs of the image store: where a layer is, and how one is added. */
export type LayerStore = Pick<ImageStore, "layerPath" | "hasLayer" | "addLayer" | "commitLayer" | "tmpPath">;

/** snapshot.json: what a snapshot is made of. `owned` is what remove() deletes. */
interface SnapshotMeta extends Snapshot {
  key: string;
  layers: { dir: string; diffId: string | null }[];
  owned: string[];
}

const META = "snapshot.json";
/** Keys become directory names: no "/", no "..", nothing hidden. */
const KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * overlayfs behind the Snapshotter interface. Made once by engine.ts and handed to the container
 * service (which hands it to start, exec, the builder and commit).
 */
export class OverlaySnapshotter implements Snapshotter {
  private readonly snapshots = new Map<string, SnapshotMeta>();

  constructor(
    /** Where snapshots live: <root>/<key>/. On a real filesystem (overlayfs cannot stack an upper dir on overlayfs). */
    readonly root: string,
    private readonly layers: LayerStore,
  ) {
    fs.mkdirSync(root, { recursive: true });
    spreadSubdirectories(root);
    for (const key of fs.readdirSync(root)) {
      const dir = path.join(root, key);
      try {
        this.snapshots.set(key, JSON.parse(fs.readFileSync(path.join(dir, META), "utf8")) as SnapshotMeta);
      } catch {
        // prepare() writes snapshot.json last: without it, a prepare died half-way. Nothing mounted it.
        if (!isMounted(path.join(dir, "merged"))) fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }

  private get(key: string): SnapshotMeta {
    const s = this.snapshots.get(key);
    if (!s) throw new EngineError(404, `No such snapshot: ${key}`);
    return s;
  }

  private save(s: SnapshotMeta): void {
    const dir = path.join(this.root, s.key);
    fs.writeFileSync(path.join(dir, `${META}.tmp`), JSON.stringify(s));
    fs.renameSync(path.join(dir, `${META}.tmp`), path.join(dir, META));
    this.snapshots.set(s.key, s);
  }

  prepare(key: string, parents: readonly string[], opts: { init?: InitLayer } = {}): SnapshotView {
    if (!KEY.test(key)) throw new EngineError(400, `invalid snapshot key: ${JSON.stringify(key)}`);
    if (this.snapshots.has(key) || fs.existsSync(path.join(this.root, key))) throw new EngineError(409, `snapshot ${key} already exists`);
    for (const d of parents) if (!this.layers.hasLayer(d)) throw new EngineError(404, `layer ${d} is not in the image store`);
    const dir = path.join(this.root, key);
    fs.mkdirSync(dir);
    try {
      // The image config lists layers bottom first; overlayfs wants the topmost first.
      const layers: SnapshotMeta["layers"] = parents.map((d) => ({ dir: this.layers.layerPath(d), diffId: d })).reverse();
      if (opts.init) {
        const init = path.join(dir, "init");
        const inside = (rel: string) => {
          const p = path.join(init, rel);
          if (path.relative(init, p).startsWith("..")) throw new EngineError(400, `init layer path outside the layer: ${rel}`);
          return p;
        };
        for (const d of opts.init.dirs) fs.mkdirSync(inside(d), { recursive: true });
        for (const f of opts.init.files) {
          fs.mkdirSync(path.dirname(inside(f)), { recursive: true });
          fs.writeFileSync(inside(f), "");
        }
        layers.unshift({ dir: init, diffId: null });
      }
      const s = prepareSnapshot(dir, layers.map((l) => l.dir));
      this.save({ key, ...s, layers, owned: [dir] });
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true }); // a refused prepare leaves nothing (a full disk, a bad init path)
      throw e;
    }
    return this.view(key);
  }

  /**
   * A snapshot made before snapshots had a directory of their own (its dirs inside the container's
   * directory, as the container's record says): taken over where it is, so containers made by an
   * older engine keep their changes. remove() deletes those dirs too.
   */
  adopt(key: string, s: Snapshot): SnapshotView {
    if (!KEY.test(key)) throw new EngineError(400, `invalid snapshot key: ${JSON.stringify(key)}`);
    if (this.snapshots.has(key)) throw new EngineError(409, `snapshot ${key} already exists`);
    const layers = s.lower.map((dir) => ({ dir, diffId: /^[0-9a-f]{64}$/.test(path.basename(dir)) ? `sha256:${path.basename(dir)}` : null }));
    const dir = path.join(this.root, key);
    fs.mkdirSync(dir, { recursive: true });
    for (const d of [s.upper, s.work, s.merged]) fs.mkdirSync(d, { recursive: true });
    // merged last but one: unmounted before the rest goes.
    this.save({ key, lower: s.lower, upper: s.upper, work: s.work, merged: s.merged, layers, owned: [s.upper, s.work, ...layers.filter((l) => !l.diffId).map((l) => l.dir), s.merged, dir] });
    return this.view(key);
  }

  has(key: string): boolean {
    return this.snapshots.has(key);
  }

  list(): string[] {
    return [...this.snapshots.keys()];
  }

  view(key: string): SnapshotView {
    const s = this.get(key);
    return {
      key,
      driver: "overlay2",
      data: { LowerDir: s.lower.join(":"), UpperDir: s.upper, WorkDir: s.work, MergedDir: s.merged },
      layers: s.layers.map((l) => ({ ...l })),
      lower: [...s.lower],
      upper: s.upper,
      work: s.work,
      merged: s.merged,
    };
  }

  isMounted(key: string): boolean {
    return isMounted(this.get(key).merged);
  }

  mountSpec(key: string): MountSpec {
    const s = this.get(key);
    return { type: "overlay", source: "overlay", target: s.merged, options: overlayOptions(s) };
  }

  mount(key: string): string {
    const s = this.get(key);
    mountSnapshot(s);
    return s.merged;
  }

  unmount(key: string): void {
    unmountSnapshot(this.get(key));
  }

  readFile(key: string, rel: string): string | null | undefined {
    return readFromLayers(this.get(key), rel); // with an empty upper dir the layers are the whole truth, mounted or not
  }

  diff(key: string): Change[] {
    return changes(this.get(key));
  }

  async commit(key: string, opts: { consume?: boolean } = {}): Promise<string | undefined> {
    const s = this.get(key);
    if (fs.readdirSync(s.upper).length === 0) return undefined; // nothing changed: no layer (dockerd's empty_layer)
    if (!opts.consume) return this.layers.commitLayer(s.upper); // streamed into the store; the container goes on
    // The caller is done with it (a build step): the upper dir itself becomes the layer, moved
    // not copied, and the snapshot keeps an empty one.
    // Off the event loop: a umount run synchronously held every other client for 100-150 ms here.
    await unmountSnapshotAsync(s);
    if (isMounted(s.merged)) throw new Error(`snapshot ${key} is still mounted; its upper dir cannot become a layer`);
    const moved = this.layers.tmpPath(`snapshot-${key.slice(0, 12)}`);
    fs.renameSync(s.upper, moved);
    fs.mkdirSync(s.upper);
    return await this.layers.addLayer(moved);
  }

  usage(key: string): { size: number; inodes: number } {
    return treeUsage(this.get(key).upper);
  }

  async remove(key: string): Promise<void> {
    const s = this.get(key);
    this.snapshots.delete(key); // gone for every caller now; the files go below
    await unmountSnapshotAsync(s);
    for (const p of s.owned) await fs.promises.rm(p, { recursive: true, force: true });
  }
}
