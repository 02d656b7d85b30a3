/**
 * Images shared read-only from outside the engine's own store. A learner's sandbox gets
 * debian:bookworm this way: the host builds it once (mmdebstrap, ./debian.ts) into a directory laid
 * out like an image store (image/layers, image/configs, image/repositories.json), and every
 * sandbox sees that directory read-only (a bind mount). Importing an image from it copies only its
 * config (a few hundred bytes) and points the layer at the shared directory with a symlink:
 * overlayfs follows the symlink when it resolves lowerdir, so a container's lower layer *is* the
 * read-only bind, and no sandbox carries its own ~80 MB copy.
 *
 *   <engine root>/image/layers/sha256/<hex> -> <shared>/image/layers/sha256/<hex>   (read-only)
 *
 * `docker rmi` removes the symlink, never the shared data; the next engine start imports it again.
 */
import fs from "node:fs";
import path from "node:path";
import { ImageStore, normalizeReference } from "./store";

/** The references a shared store tags, e.g. ["debian:12", "debian:bookworm"]. */
export function sharedReferences(sharedRoot: string): string[] {
  const file = path.join(sharedRoot, "image", "repositories.json");
  if (!fs.existsSync(file)) return [];
  return Object.keys(JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, string>).sort();
}

/**
 * Import every image of the shared stores that this store lacks (config copied, layers linked,
 * tags set). Returns the ids of the images imported or already present.
 */
export function importSharedImages(store: ImageStore, sharedRoots: string[]): string[] {
  const ids: string[] = [];
  for (const sharedRoot of sharedRoots) {
    const shared = readOnlyView(sharedRoot);
    for (const [ref, id] of Object.entries(shared.repos)) {
      const config = path.join(shared.configsDir, `${id.replace(/^sha256:/, "")}.json`);
      const image = JSON.parse(fs.readFileSync(config, "utf8")) as { rootfs: { diff_ids: string[] } };
      for (const diffId of image.rootfs.diff_ids) {
        const local = store.layerPath(diffId);
        // A layer already here (a real directory or an earlier link) is the same content: keep it.
        if (fs.existsSync(local)) continue;
        fs.rmSync(local, { force: true }); // a dangling link from a shared dir that is gone
        fs.symlinkSync(path.join(shared.layersDir, diffId.replace(/^sha256:/, "")), local);
      }
      // The bytes of the config, not a re-serialisation: the image id is their sha256.
      fs.copyFileSync(config, path.join(store.configsDir, path.basename(config)));
      if (store.resolve(ref)?.id !== id) store.tag(id, normalizeReference(ref));
      ids.push(id);
    }
  }
  return ids;
}

function readOnlyView(sharedRoot: string) {
  const file = path.join(sharedRoot, "image", "repositories.json");
  if (!fs.existsSync(file)) throw new Error(`${sharedRoot} is not a shared image store (no image/repositories.json)`);
  return {
    repos: JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, string>,
    layersDir: path.join(sharedRoot, "image", "layers", "sha256"),
    configsDir: path.join(sharedRoot, "image", "configs", "sha256"),
  };
}
