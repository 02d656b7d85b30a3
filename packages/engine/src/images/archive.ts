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
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import tar from "tar-stream";
import { extractLayerSized, gunzipFile, hasher, isGzip, streamLayerTar, writeLayerTar } from "./layers";
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

/**
 * Where the wire tar of a layer can be read from without writing it first, with its size (a tar
 * entry's header needs it before the bytes): a stored tar, the directory of a layer made here
 * tarred again, or a stored gzip blob unpacked on the way. Undefined when the size was never
 * measured (or only a directory unpacked from someone else's tar is left: its tar would differ).
 */
function layerSource(store: ImageStore, diffId: string): { size: number; open(): { stream: Readable; done: Promise<void> } } | undefined {
  const blobs = store.layerBlobs(diffId).filter((b) => b.stored && fs.existsSync(store.blobPath(b.digest)));
  const plain = blobs.find((b) => b.digest === diffId && !isGzip(store.blobPath(b.digest)));
  if (plain) {
    const file = store.blobPath(plain.digest);
    return { size: fs.statSync(file).size, open: () => ({ stream: fs.createReadStream(file, { highWaterMark: 1 << 20 }), done: Promise.resolve() }) };
  }
  const size = store.layerTarSize(diffId);
  if (size === undefined) return undefined;
  // Our own layers: tar (its own process) reads the directory faster than gunzip unpacks the blob.
  if (store.layerMadeHere(diffId)) {
    return {
      size,
      open: () => {
        const t = streamLayerTar(store.layerPath(diffId), store.tmpPath("save-view"));
        return { stream: t.stdout, done: t.done };
      },
    };
  }
  const gz = blobs.find((b) => isGzip(store.blobPath(b.digest)));
  if (!gz) return undefined;
  return {
    size,
    open: () => {
      const src = fs.createReadStream(store.blobPath(gz.digest), { highWaterMark: 1 << 20 });
      const gunzip = zlib.createGunzip({ chunkSize: 1 << 18 });
      src.on("error", (e) => gunzip.destroy(e));
      return { stream: src.pipe(gunzip), done: Promise.resolve() };
    },
  };
}

/**
 * `docker save`: a docker-archive of `images` written to `out` as it is made, each layer's tar
 * streamed from where it lies (layerSource) and checked against its diff id on the way. A layer
 * whose tar size is unknown is written to a temporary file first (and its size remembered).
 */
export async function saveImages(store: ImageStore, images: { image: Image; tags: string[] }[], out: Writable): Promise<void> {
  const pack = tar.pack();
  const sent = pipeline(pack, out);
  sent.catch(() => {}); // awaited below; a client that goes away ends the loop with an error
  const entry = (name: string, body: Buffer | string, mtime: Date) =>
    new Promise<void>((resolve, reject) => pack.entry({ name, mtime, mode: 0o644 }, body, (e) => (e ? reject(e) : resolve())));
  const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const written = new Set<string>();
  for (const { image, tags } of images) {
    const mtime = new Date(image.config.created ?? 0);
    const layers: string[] = [];
    const diffIds: string[] = [];
    for (const diffId of image.config.rootfs.diff_ids) {
      let hex = diffId.replace(/^sha256:/, "");
      const header = (size: number) => {
        pack.entry({ name: `${hex}/`, type: "directory", mtime, mode: 0o755 });
        return pack.entry({ name: `${hex}/layer.tar`, size, mtime, mode: 0o644 });
      };
      const source = written.has(hex) ? undefined : layerSource(store, diffId);
      if (written.has(hex)) {
        // already in the archive
      } else if (source) {
        const h = hasher();
        const { stream, done } = source.open();
        await Promise.all([pipeline(stream, h, header(source.size)), done]);
        if (h.digest() !== diffId) {
          // Never expected (the size and the bytes come from the same layer): the archive is broken.
          throw new Error(`layer ${diffId} gave ${h.digest()} when read for saving`);
        }
      } else {
        const tmp = store.tmpPath("save-layer");
        try {
          const digest = await layerTar(store, diffId, tmp);
          hex = digest.replace(/^sha256:/, "");
          const size = fs.statSync(tmp).size;
          if (digest === diffId) store.recordLayerTarSize(diffId, size);
          if (!written.has(hex)) await pipeline(fs.createReadStream(tmp, { highWaterMark: 1 << 20 }), header(size));
        } finally {
          fs.rmSync(tmp, { force: true });
        }
      }
      if (!written.has(hex)) await entry(`${hex}/VERSION`, "1.0", mtime);
      written.add(hex);
      layers.push(`${hex}/layer.tar`);
      diffIds.push(`sha256:${hex}`);
    }
    const same = diffIds.every((d, i) => d === image.config.rootfs.diff_ids[i]);
    const bytes = same ? store.configBytes(image.id) : Buffer.from(JSON.stringify({ ...image.config, rootfs: { type: "layers", diff_ids: diffIds } }));
    const hex = sha256Hex(bytes);
    await entry(`${hex}.json`, bytes, mtime);
    manifest.push({ Config: `${hex}.json`, RepoTags: tags.length ? tags : null, Layers: layers });
    for (const t of tags) {
      const i = t.lastIndexOf(":");
      (repositories[t.slice(0, i)] ??= {})[t.slice(i + 1)] = hex;
    }
  }
  const now = new Date();
  await entry("manifest.json", JSON.stringify(manifest), now);
  await entry("repositories", JSON.stringify(repositories), now);
  pack.finalize();
  await sent;
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
        const { digest, size } = await extractLayerSized(file, unpacked);
        if (digest !== expected) throw new Error(`invalid image archive: ${layer} has digest ${digest}, but the config expects ${expected}`);
        store.adoptLayer(unpacked, digest);
        store.recordLayerTarSize(digest, size);
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
