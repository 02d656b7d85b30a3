// debian:bookworm for every sandbox, built once on the host and shared read-only. prepare() builds
// it with the engine's own mmdebstrap builder into a directory laid out like an engine image store;
// each sandbox gets that directory bound read-only at /opt/berth-images, and the engine inside
// links the layer into its store instead of copying it (packages/engine/src/images/shared.ts).
//
//   stateDir/images/<key>/image/...      the shared store (key: hash of the builder's source + uid shift)
//   stateDir/images/<key>.ro/            the same, through a read-only overlay: what sandboxes bind
//   stateDir/images/.empty/              the overlay's second (empty) lower layer
//   stateDir/images/.tmp-<key>-<pid>/    a build in progress, renamed when complete
//   stateDir/images/.lock-<key>          held (mkdir) by the one process building it
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runHostCommand } from "./host-command.js";
import { buildDebianImage, DEBIAN_BUILDER_SOURCE, ImageStore } from "@berth/agent/build";
// The same uid/gid shift as the base rootfs, so the image's files are root-owned inside a sandbox.
import { shiftOwnership } from "../rootfs/build.js";

/** Inside the sandbox: where the engine finds the shared store. */
export const SANDBOX_SHARED_IMAGES = "/opt/berth-images";

/** Bump when the layout or the post-processing below changes. */
const SHARED_IMAGES_VERSION = 1;

export function sharedImagesKey(idBase: number): string {
  return createHash("sha256")
    .update(readFileSync(DEBIAN_BUILDER_SOURCE))
    .update(`v${SHARED_IMAGES_VERSION} uid+${idBase}`)
    .digest("hex")
    .slice(0, 16);
}

/**
 * Builds (once) the shared store and returns the read-only view of it that sandboxes bind.
 *
 * Why a read-only overlay and not just a read-only bind: the layer's files belong to the sandbox's
 * root (shifted uids), and the bind mount runc makes inside the sandbox's own mount namespace is not
 * locked, so root there can `mount -o remount,rw,bind` it and write into every sandbox's debian. An
 * overlay with only lower layers is read-only in its superblock; making it writable needs
 * CAP_SYS_ADMIN on the host, which no sandbox has.
 */
export async function ensureSharedImages(stateDir: string, idBase: number, onProgress?: (line: string) => void): Promise<string> {
  const dir = await buildSharedImages(stateDir, idBase, onProgress);
  const view = `${dir}.ro`;
  const empty = join(stateDir, "images", ".empty");
  await mkdir(view, { recursive: true });
  await mkdir(empty, { recursive: true });
  if (!isMountPoint(view)) await runHostCommand("mount", ["-t", "overlay", "overlay", "-o", `ro,lowerdir=${dir}:${empty}`, view]);
  return view;
}

async function buildSharedImages(stateDir: string, idBase: number, onProgress?: (line: string) => void): Promise<string> {
  const key = sharedImagesKey(idBase);
  const parent = join(stateDir, "images");
  const dir = join(parent, key);
  const done = () => existsSync(join(dir, "image", "repositories.json"));
  if (done()) return dir;
  await mkdir(parent, { recursive: true });

  // One builder per state dir: test files and orchestrators start prepare() at the same time, and
  // several mmdebstrap runs on two cores would each take minutes. The others wait for its rename.
  const lock = join(parent, `.lock-${key}`);
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, "pid"), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (done()) return dir;
      const holder = Number(await readFile(join(lock, "pid"), "utf8").catch(() => "0"));
      if (holder > 0 && !alive(holder)) await rm(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 500));
    }
  }

  const tmp = join(parent, `.tmp-${key}-${process.pid}`);
  try {
    if (done()) return dir;
    await rm(tmp, { recursive: true, force: true });
    onProgress?.("sandbox: building debian:bookworm for the sandboxes' engines (mmdebstrap, once)");
    const store = new ImageStore(tmp);
    const id = await buildDebianImage(store, (line) => onProgress?.(`mmdebstrap: ${line}`));
    await rm(join(tmp, "tmp"), { recursive: true, force: true });
    // Root inside a sandbox is host uid idBase: shift the layer so its files look root-owned there.
    for (const diffId of store.get(id)!.config.rootfs.diff_ids) await shiftOwnership(store.layerPath(diffId), idBase);
    await rename(tmp, dir);
    return dir;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** Removes shared stores whose read-only view (`<key>.ro`) is in no sandbox's meta.json nor current. */
export async function removeUnusedSharedImages(stateDir: string, inUse: Set<string>): Promise<void> {
  const parent = join(stateDir, "images");
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const store = join(parent, name.replace(/\.ro$/, ""));
    if (name.startsWith(".") || inUse.has(`${store}.ro`)) continue;
    const dir = join(parent, name);
    if (isMountPoint(dir)) await runHostCommand("umount", ["-l", dir]);
    await rm(dir, { recursive: true, force: true });
  }
}

function isMountPoint(dir: string): boolean {
  return readFileSync("/proc/self/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === dir);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
