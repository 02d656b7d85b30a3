/**
 * Images are tarballs: `docker save` writes, `docker load` reads the docker-archive layout
 *   manifest.json                [{ "Config": "<id>.json", "RepoTags": [...], "Layers": ["<hex>/layer.tar", ...] }]
 *   <id>.json                    the image config, byte for byte (its sha256 is the image id)
 *   <hex>/layer.tar              one layer in wire form (whiteouts as `.wh.<name>`)
 *   repositories                 {"busybox": {"latest": "<id>"}}
 * A layer's tar is the one its diff id is the digest of: the bytes as loaded or pulled when we have
 * them (blobs/), else the wire form written from the unpacked directory (./layers.ts). So an image
 * keeps its id across engines; only a layer whose tar cannot be reproduced (a store from before
 * diff ids were taken over the wire form) makes us rewrite the config, and the id, as a last resort.
 */
import fs from "node:fs";
import path from "node:path";
import { extractLayer, gunzipFile, isGzip, writeLayerTar } from "./layers";
import { fileSha256, normalizeReference, sha256Hex, type Image, type ImageStore } from "./store";

export const LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar";

/**
 * Write the uncompressed wire tar of a layer to `out`; returns its sha256 ("sha256:<hex>"), which
 * equals the diff id unless the layer predates wire-form digests.
 */
export async function layerTar(store: ImageStore, diffId: string, out: string): Promise<string> {
  for (const b of store.layerBlobs(diffId)) {
    if (!b.stored || !fs.existsSync(store.blobPath(b.digest))) continue;
    if (isGzip(store.blobPath(b.digest))) {
      const d = await gunzipFile(store.blobPath(b.digest), out);
      if (d === diffId) return d;
    } else if (b.digest === diffId) {
      fs.copyFileSync(store.blobPath(b.digest), out);
      return diffId;
    }
  }
  writeLayerTar(store.layerPath(diffId), out);
  return `sha256:${fileSha256(out)}`;
}

/** Write a docker-archive of `images` into the (empty) directory `out`, ready to be tarred. */
export async function exportImages(store: ImageStore, images: { image: Image; tags: string[] }[], out: string): Promise<void> {
  const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image, tags } of images) {
    const layers: string[] = [];
    const diffIds: string[] = [];
    for (const diffId of image.config.rootfs.diff_ids) {
      const tmp = path.join(out, `tmp-${Math.random().toString(16).slice(2)}.tar`);
      const digest = await layerTar(store, diffId, tmp);
      const hex = digest.replace(/^sha256:/, "");
      if (fs.existsSync(path.join(out, hex, "layer.tar"))) fs.rmSync(tmp);
      else {
        fs.mkdirSync(path.join(out, hex), { recursive: true });
        fs.renameSync(tmp, path.join(out, hex, "layer.tar"));
        fs.writeFileSync(path.join(out, hex, "VERSION"), "1.0");
      }
      layers.push(`${hex}/layer.tar`);
      diffIds.push(digest);
    }
    const same = diffIds.every((d, i) => d === image.config.rootfs.diff_ids[i]);
    const bytes = same ? store.configBytes(image.id) : Buffer.from(JSON.stringify({ ...image.config, rootfs: { type: "layers", diff_ids: diffIds } }));
    const hex = sha256Hex(bytes);
    fs.writeFileSync(path.join(out, `${hex}.json`), bytes);
    manifest.push({ Config: `${hex}.json`, RepoTags: tags.length ? tags : null, Layers: layers });
    for (const t of tags) {
      const i = t.lastIndexOf(":");
      (repositories[t.slice(0, i)] ??= {})[t.slice(i + 1)] = hex;
    }
  }
  fs.writeFileSync(path.join(out, "manifest.json"), JSON.stringify(manifest));
  fs.writeFileSync(path.join(out, "repositories"), JSON.stringify(repositories));
}


/** Read an unpacked docker-archive in `dir`; returns the lines `docker load` prints. */
export async function importImages(store: ImageStore, dir: string): Promise<string[]> {
  const manifestFile = path.join(dir, "manifest.json");
  if (!fs.existsSync(manifestFile)) throw new Error("invalid image archive: no manifest.json (only the docker-archive format is understood)");
  let manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[];
  try {
    manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8"));
    if (!Array.isArray(manifest)) throw new Error("not a list");
  } catch (e) {
    throw new Error(`invalid image archive: manifest.json: ${(e as Error).message}`);
  }
  const inside = (p: unknown): string => {
    if (typeof p !== "string") throw new Error("invalid image archive: a path in manifest.json is not a string");
    const full = path.resolve(dir, p);
    if (!full.startsWith(`${dir}/`) || !fs.existsSync(full)) throw new Error(`invalid image archive: ${p} is missing or outside the archive`);
    return full;
  };
  const loaded: string[] = [];
  for (const entry of manifest) {
    const configFile = inside(entry.Config);
    const bytes = fs.readFileSync(configFile);
    const config = JSON.parse(bytes.toString("utf8")) as { rootfs?: { diff_ids?: string[] } };
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== entry.Layers.length) throw new Error(`invalid image archive: ${entry.Config} names ${diffIds.length} layers, the manifest ${entry.Layers.length}`);
    for (const [i, layer] of entry.Layers.entries()) {
      const expected = diffIds[i]!;
      if (store.hasLayer(expected)) continue;
      const file = inside(layer);
      const unpacked = store.tmpPath("load-layer");
      try {
        const digest = await extractLayer(file, unpacked);
        if (digest !== expected) throw new Error(`invalid image archive: ${layer} has digest ${digest}, but the config expects ${expected}`);
        store.adoptLayer(unpacked, digest);
      } finally {
        fs.rmSync(unpacked, { recursive: true, force: true });
      }
      // Keep the tar as it came: `docker save` and `docker push` give back these very bytes.
      if (!isGzip(file)) store.recordLayerBlob(expected, { digest: expected, size: fs.statSync(file).size, mediaType: LAYER_TAR }, file);
    }
    const id = store.addImageRaw(bytes);
    for (const t of entry.RepoTags ?? []) {
      store.tag(id, t);
      loaded.push(`Loaded image: ${normalizeReference(t)}`);
    }
    if (!entry.RepoTags?.length) loaded.push(`Loaded image ID: ${id}`);
  }
  return loaded;
}
