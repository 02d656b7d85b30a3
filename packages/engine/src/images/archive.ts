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
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import zlib from "node:zlib";
import { Extractor } from "../tar/extract";
import { encodeHeader, padding, trailer, type TarEntry } from "../tar/format";
import { parseStream, TarParser, type EntrySink } from "../tar/reader";
import { gunzipFile, isGzip, streamLayerTar, writeLayerTar } from "./layers";
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
  let written = 0;
  const put = async (b: Buffer) => {
    written += b.length;
    if (!out.write(b)) await drained(out);
  };
  const member = (name: string, type: "file" | "dir", size: number, mtime: Date): Buffer =>
    encodeHeader({ name, type, size, mode: type === "dir" ? 0o755 : 0o644, uid: 0, gid: 0, mtime: Math.floor(mtime.getTime() / 1000), linkname: "", devmajor: 0, devminor: 0, xattrs: new Map() } satisfies TarEntry);
  const entry = async (name: string, body: Buffer | string, mtime: Date) => {
    const b = Buffer.from(body);
    await put(member(name, "file", b.length, mtime));
    await put(b);
    await put(Buffer.alloc(padding(b.length)));
  };
  /** A member whose body is a stream of exactly `size` bytes; returns the sha256 of what was sent. */
  const streamed = async (name: string, size: number, mtime: Date, body: Readable): Promise<string> => {
    const h = createHash("sha256");
    let n = 0;
    await put(member(name, "file", size, mtime));
    for await (const c of chunksOf(body)) {
      n += c.length;
      if (n > size) throw new Error(`layer ${name} is longer than its recorded size (${size} bytes)`);
      h.update(c);
      await put(c);
    }
    if (n !== size) throw new Error(`layer ${name} is shorter than its recorded size (${n} of ${size} bytes)`);
    await put(Buffer.alloc(padding(size)));
    return `sha256:${h.digest("hex")}`;
  };
  const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const done = new Set<string>();
  for (const { image, tags } of images) {
    const mtime = new Date(image.config.created ?? 0);
    const layers: string[] = [];
    const diffIds: string[] = [];
    for (const diffId of image.config.rootfs.diff_ids) {
      let hex = diffId.replace(/^sha256:/, "");
      const source = done.has(hex) ? undefined : layerSource(store, diffId);
      if (done.has(hex)) {
        // already in the archive
      } else if (source) {
        await put(member(`${hex}/`, "dir", 0, mtime));
        const { stream, done: finished } = source.open();
        const [digest] = await Promise.all([streamed(`${hex}/layer.tar`, source.size, mtime, stream), finished]);
        if (digest !== diffId) {
          // Never expected (the size and the bytes come from the same layer): the archive is broken.
          throw new Error(`layer ${diffId} gave ${digest} when read for saving`);
        }
      } else {
        const tmp = store.tmpPath("save-layer");
        try {
          const digest = await layerTar(store, diffId, tmp);
          hex = digest.replace(/^sha256:/, "");
          const size = fs.statSync(tmp).size;
          if (digest === diffId) store.recordLayerTarSize(diffId, size);
          if (!done.has(hex)) {
            await put(member(`${hex}/`, "dir", 0, mtime));
            await streamed(`${hex}/layer.tar`, size, mtime, fs.createReadStream(tmp, { highWaterMark: 1 << 20 }));
          }
        } finally {
          fs.rmSync(tmp, { force: true });
        }
      }
      if (!done.has(hex)) await entry(`${hex}/VERSION`, "1.0", mtime);
      done.add(hex);
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
  await put(trailer(written));
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
}

/**
 * Each chunk of `s` as it was pushed. (A for-await over the stream itself reads everything
 * buffered at once, joined into a new buffer: one more copy of every byte of the layer, ~90 ms
 * for a 32 MB save here.) Pauses the stream while a chunk waits; destroys it if left early.
 */
async function* chunksOf(s: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let ended = false;
  let failed: Error | undefined;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (c: Buffer) => {
    queue.push(c);
    s.pause();
    poke();
  };
  const onEnd = () => {
    ended = true;
    poke();
  };
  const onError = (e: Error) => {
    failed = e;
    poke();
  };
  s.on("data", onData);
  s.once("end", onEnd);
  s.once("error", onError);
  try {
    for (;;) {
      if (queue.length) yield queue.shift()!;
      else if (failed) throw failed;
      else if (ended) return;
      else
        await new Promise<void>((resolve) => {
          wake = resolve;
          s.resume();
        });
    }
  } finally {
    s.off("data", onData);
    s.off("end", onEnd);
    s.off("error", onError);
    if (!ended) s.destroy();
  }
}

/** Wait until `out` takes more; rejects when it fails or is closed first (a client that went away). */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (e?: Error) => {
      out.off("drain", onDrain);
      out.off("close", onClose);
      out.off("error", settle);
      if (e) reject(e);
      else resolve();
    };
    const onDrain = () => settle();
    const onClose = () => settle(new Error("the archive's reader went away"));
    out.on("drain", onDrain);
    out.on("close", onClose);
    out.on("error", settle);
  });
}

/** JSON members of an archive (configs, manifest.json) are read into memory, up to this size each. */
const MAX_JSON_MEMBER = 16 << 20;

/**
 * `docker load`: read a docker-archive as it arrives, without writing it anywhere by its names.
 * Small JSON members are kept in memory; each `*.tar` member (a layer) goes straight to a file
 * (kept as the layer's blob) and through the strict extractor into a directory of our naming,
 * hashed on the way. Once the archive has ended, manifest.json says which layer belongs where: each must hash
 * to its config's diff id. Returns the lines `docker load` prints; `onLoaded` hears each image's id.
 */
export async function loadImages(store: ImageStore, src: Readable, onLoaded?: (id: string) => void): Promise<string[]> {
  const work = store.tmpPath("load");
  fs.mkdirSync(work, { recursive: true });
  const json = new Map<string, Buffer>();
  const links = new Map<string, string>(); // member -> the member it links to
  type Layer = { dir: string; file: string; digest: string; size: number; usage?: number } | Error;
  const layers = new Map<string, Layer | undefined>(); // undefined while it is still arriving
  const open = new Set<number>(); // blob files being written
  try {
    const outer = new TarParser(
      (e): EntrySink | void => {
        const name = path.posix.normalize(e.name).replace(/^(\.\/)+/, "");
        if (name.startsWith("../") || name.startsWith("/")) return;
        // dockerd writes a layer that two images share once, and a link to it for the second.
        if (e.type === "symlink" && e.linkname) links.set(name, path.posix.normalize(path.posix.join(path.posix.dirname(name), e.linkname)));
        if (e.type !== "file") return;
        if (name.endsWith(".tar")) return layerSink(name);
        if (name.endsWith(".json") || name === "repositories") {
          const chunks: Buffer[] = [];
          let size = 0;
          return {
            write: (c) => {
              size += c.length;
              if (size <= MAX_JSON_MEMBER) chunks.push(Buffer.from(c));
            },
            end: () => void (size <= MAX_JSON_MEMBER && json.set(name, Buffer.concat(chunks))),
          };
        }
      },
      { what: "image archive" },
    );
    // A layer: to a file (kept as the layer's blob), hashed, and through the strict extractor's
    // "layer" policy into a directory of our naming, all as its bytes pass.
    const layerSink = (name: string): EntrySink => {
      const n = layers.size;
      const dir = path.join(work, `layer-${n}`);
      const file = path.join(work, `blob-${n}`);
      fs.mkdirSync(dir);
      const fd = fs.openSync(file, "w");
      open.add(fd);
      const h = createHash("sha256");
      let size = 0;
      let failed: Error | undefined;
      const x = new Extractor(dir, { policy: "layer", what: "layer" });
      const inner = new TarParser((le) => x.entry(le), { what: "layer", afterEnd: "continue" });
      layers.set(name, undefined);
      return {
        write: (c) => {
          for (let off = 0; off < c.length; ) off += fs.writeSync(fd, c, off, c.length - off);
          h.update(c);
          size += c.length;
          if (failed) return;
          try {
            inner.feed(c);
          } catch (e) {
            failed = e as Error;
          }
        },
        end: () => {
          fs.closeSync(fd);
          open.delete(fd);
          if (!failed) {
            try {
              inner.end();
              x.end();
            } catch (e) {
              failed = e as Error;
            }
          }
          layers.set(name, failed ?? { dir, file, digest: `sha256:${h.digest("hex")}`, size, usage: x.usage });
        },
      };
    };
    await parseStream(src, outer).catch((e: Error) => {
      throw new Error(`invalid image archive: not a tar archive (${e.message})`);
    });
    const manifestBytes = json.get("manifest.json");
    if (!manifestBytes) throw new Error("invalid image archive: no manifest.json (only the docker-archive format is understood)");
    let manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[];
    try {
      manifest = JSON.parse(manifestBytes.toString("utf8"));
      if (!Array.isArray(manifest)) throw new Error("not a list");
    } catch (e) {
      throw new Error(`invalid image archive: manifest.json: ${(e as Error).message}`);
    }
    const member = (p: unknown): string => {
      if (typeof p !== "string") throw new Error("invalid image archive: a path in manifest.json is not a string");
      let n = path.posix.normalize(p).replace(/^(\.\/)+/, "");
      for (let hops = 0; links.has(n) && hops < 8; hops++) n = links.get(n)!;
      if (n.startsWith("../") || n.startsWith("/") || (!json.has(n) && !layers.has(n))) throw new Error(`invalid image archive: ${p} is missing or outside the archive`);
      return n;
    };
    const loaded: string[] = [];
    for (const entry of manifest) {
      const bytes = json.get(member(entry.Config));
      if (!bytes) throw new Error(`invalid image archive: ${entry.Config} is not a config`);
      const config = JSON.parse(bytes.toString("utf8")) as { rootfs?: { diff_ids?: string[] } };
      const diffIds = config.rootfs?.diff_ids ?? [];
      const entryLayers = entry.Layers ?? [];
      if (diffIds.length !== entryLayers.length) throw new Error(`invalid image archive: ${entry.Config} names ${diffIds.length} layers, the manifest ${entryLayers.length}`);
      for (const [i, layer] of entryLayers.entries()) {
        const expected = diffIds[i]!;
        const got = layers.get(member(layer));
        if (!got) throw new Error(`invalid image archive: ${layer} is not a layer`);
        if (got instanceof Error) throw got;
        const { dir, file, digest, size, usage } = got;
        if (store.hasLayer(expected)) continue;
        if (digest !== expected) throw new Error(`invalid image archive: ${layer} has digest ${digest}, but the config expects ${expected}`);
        store.adoptLayer(dir, digest);
        store.recordLayerTarSize(digest, size);
        store.recordLayerUsage(digest, usage);
        // Keep the tar as it came: `docker save` and `docker push` give back these very bytes.
        store.recordLayerBlob(expected, { digest: expected, size, mediaType: LAYER_TAR }, file);
      }
      const id = store.addImageRaw(bytes);
      onLoaded?.(id);
      for (const t of entry.RepoTags ?? []) {
        store.tag(id, t);
        loaded.push(`Loaded image: ${normalizeReference(t)}`);
      }
      if (!entry.RepoTags?.length) loaded.push(`Loaded image ID: ${id}`);
    }
    return loaded;
  } finally {
    for (const fd of open) fs.closeSync(fd);
    fs.rmSync(work, { recursive: true, force: true });
  }
}
