/**
 * Images are tarballs: `docker save` writes, `docker load` reads the docker-archive layout
 *   manifest.json                [{ "Config": "<id>.json", "RepoTags": [...], "Layers": ["<hex>/layer.tar", ...] }]
 *   <id>.json                    the image config
 *   <hex>/layer.tar              one layer, whiteouts as `.wh.<name>` files (the tar convention)
 *   repositories                 {"busybox": {"latest": "<id>"}}
 * On disk our layers use overlayfs whiteouts (a 0/0 character device), so both directions convert.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileSha256, normalizeReference, sha256Hex, type Image, type ImageConfig, type ImageStore } from "./store";

/** Write a docker-archive of `images` into the (empty) directory `out`, ready to be tarred. */
export function exportImages(store: ImageStore, images: { image: Image; tags: string[] }[], out: string): void {
  const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image, tags } of images) {
    const layers: string[] = [];
    const diffIds: string[] = [];
    for (const diffId of image.config.rootfs.diff_ids) {
      // The tar written here is not byte-for-byte the one our diff id was computed from (whiteouts
      // change form), so the archive names each layer by the digest of its own tar, as loaders check.
      const copy = path.join(out, `tmp-${diffId.replace(/^sha256:/, "").slice(0, 16)}`);
      execFileSync("cp", ["-a", store.layerPath(diffId), copy]);
      overlayToTarWhiteouts(copy);
      const tmpTar = `${copy}.tar`;
      execFileSync("tar", ["--sort=name", "--mtime=@0", "--numeric-owner", "--owner=0", "--group=0", "-C", copy, "-cf", tmpTar, "."]);
      fs.rmSync(copy, { recursive: true, force: true });
      const lhex = fileSha256(tmpTar);
      fs.mkdirSync(path.join(out, lhex), { recursive: true });
      fs.renameSync(tmpTar, path.join(out, lhex, "layer.tar"));
      fs.writeFileSync(path.join(out, lhex, "VERSION"), "1.0");
      layers.push(`${lhex}/layer.tar`);
      diffIds.push(`sha256:${lhex}`);
    }
    const json = JSON.stringify({ ...image.config, rootfs: { type: "layers", diff_ids: diffIds } });
    const hex = sha256Hex(json);
    fs.writeFileSync(path.join(out, `${hex}.json`), json);
    manifest.push({ Config: `${hex}.json`, RepoTags: tags, Layers: layers });
    for (const t of tags) {
      const i = t.lastIndexOf(":");
      (repositories[t.slice(0, i)] ??= {})[t.slice(i + 1)] = hex;
    }
  }
  fs.writeFileSync(path.join(out, "manifest.json"), JSON.stringify(manifest));
  fs.writeFileSync(path.join(out, "repositories"), JSON.stringify(repositories));
}

/** Read an unpacked docker-archive; returns the tags (or ids) loaded. */
export function importImages(store: ImageStore, dir: string): string[] {
  const manifestFile = path.join(dir, "manifest.json");
  if (!fs.existsSync(manifestFile)) throw new Error("invalid image archive: no manifest.json (only the docker-archive format is understood)");
  const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as { Config: string; RepoTags: string[] | null; Layers: string[] }[];
  const loaded: string[] = [];
  for (const entry of manifest) {
    const config = JSON.parse(fs.readFileSync(path.join(dir, entry.Config), "utf8")) as ImageConfig;
    const diffIds: string[] = [];
    for (const layer of entry.Layers) {
      const unpacked = path.join(store.root, "tmp", `load-${sha256Hex(layer + Date.now()).slice(0, 16)}`);
      fs.mkdirSync(unpacked, { recursive: true });
      execFileSync("tar", ["-x", "--numeric-owner", "-C", unpacked, "-f", path.join(dir, layer)]);
      tarToOverlayWhiteouts(unpacked);
      diffIds.push(store.addLayer(unpacked));
    }
    // Our layer digests are of our own deterministic tars, so the config is rewritten to name them.
    const id = store.addImage({ ...config, rootfs: { type: "layers", diff_ids: diffIds } });
    for (const t of entry.RepoTags ?? []) {
      store.tag(id, t);
      loaded.push(`Loaded image: ${normalizeReference(t)}`);
    }
    if (!entry.RepoTags?.length) loaded.push(`Loaded image ID: ${id}`);
  }
  return loaded;
}

function walk(dir: string, visit: (p: string, st: fs.Stats) => void): void {
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = fs.lstatSync(p);
    visit(p, st);
    if (st.isDirectory() && fs.existsSync(p)) walk(p, visit);
  }
}

/** overlayfs marks a deleted file with a 0/0 character device; a tar layer with `.wh.<name>`. */
function overlayToTarWhiteouts(dir: string): void {
  walk(dir, (p, st) => {
    if (st.isCharacterDevice() && st.rdev === 0) {
      fs.rmSync(p);
      fs.writeFileSync(path.join(path.dirname(p), `.wh.${path.basename(p)}`), "");
    }
  });
}

function tarToOverlayWhiteouts(dir: string): void {
  walk(dir, (p) => {
    const base = path.basename(p);
    if (base === ".wh..wh..opq") {
      fs.rmSync(p); // opaque directories need a trusted.* xattr Node cannot set: kept as plain dirs
    } else if (base.startsWith(".wh.")) {
      fs.rmSync(p);
      execFileSync("mknod", [path.join(path.dirname(p), base.slice(4)), "c", "0", "0"]);
    }
  });
}
