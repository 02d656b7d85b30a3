/**
 * The image store: content-addressed layers and image configs, and the names that point at them.
 *
 * Lifecycle: a layer is made as a directory, `addLayer` names it by the sha256 of its tar (the
 * "diff id") and moves it under layers/; `addImage` writes the config, whose own sha256 is the image
 * id; `tag` points a name (busybox:latest) at an id. Containers read layers through the snapshotter
 * (../snapshots/overlay.ts), never write them.
 *
 *   <root>/image/layers/sha256/<hex>/     one unpacked layer, read-only by convention
 *   <root>/image/configs/sha256/<hex>.json the image config (Docker/OCI image config JSON)
 *   <root>/image/repositories.json        {"busybox:latest": "sha256:<hex>"}
 *   <root>/image/repodigests.json         {"127.0.0.1:5000/x@sha256:<manifest>": "sha256:<image id>"}
 *   <root>/image/layerdb/<diff hex>.json  what else is known of a layer: its blobs (compressed
 *                                         digests, where they were pulled from or pushed to)
 *   <root>/image/blobs/sha256/<hex>       a layer's bytes as they came (a pulled gzip blob, a
 *                                         loaded tar), so push and save give back the same digest
 *
 * A layer's diff id is the sha256 of its tar in wire form (whiteouts as `.wh.` files; ./layers.ts),
 * and an image id is the sha256 of the config's bytes as stored: an image pulled or loaded keeps the
 * id it had in the registry or in dockerd, and one made here keeps its id when pushed.
 */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { extractLayerStream, streamLayerTar, writeLayerTar } from "./layers";
import { treeUsage } from "../paths/usage";
import { spreadSubdirectories } from "../paths/spread";

export interface ImageConfig {
  architecture: string;
  os: string;
  created: string;
  author?: string;
  comment?: string;
  container?: string;
  parent?: string; // the image this one was built on (builder, commit): hides it from `docker images`
  config: ContainerDefaults;
  rootfs: { type: "layers"; diff_ids: string[] };
  history: { created: string; created_by?: string; comment?: string; empty_layer?: boolean }[];
}

/** The part of an image config that becomes a new container's defaults. */
export interface ContainerDefaults {
  Env?: string[];
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string> | null;
  ExposedPorts?: Record<string, object> | null;
  Volumes?: Record<string, object> | null;
  StopSignal?: string;
}

export interface Image {
  id: string; // sha256:<hex>
  config: ImageConfig;
  tags: string[];
  digests: string[]; // RepoDigests: "busybox@sha256:<manifest digest>"
  size: number;
}

/** What is known of a layer besides its files (image/layerdb/<hex>.json). */
interface LayerDb {
  blobs: LayerBlob[];
  /** Bytes in its wire tar, once measured. */
  tarSize?: number;
  /** Its directory tars (our way) to exactly its diff id: it was made here, by commit or build. */
  madeHere?: boolean;
  /** What its files hold (../paths/usage.ts), counted while it was unpacked: no walk for `docker images`. */
  usage?: number;
}

/** A layer's blob as a registry (or an archive) knows it. */
export interface LayerBlob {
  digest: string; // sha256 of the bytes (compressed for gzip)
  size: number;
  mediaType: string;
  /** Registry repositories known to hold it ("127.0.0.1:5000/library/busybox"): for mounts and skips. */
  repos?: string[];
  /** True when the bytes are in blobs/ (pulled or loaded here). */
  stored?: boolean;
}

/** "busybox" -> "busybox:latest"; "docker.io/library/busybox:1" -> "busybox:1". */
export function normalizeReference(ref: string): string {
  let r = ref.replace(/^docker\.io\//, "").replace(/^library\//, "");
  const lastSlash = r.lastIndexOf("/");
  if (!r.slice(lastSlash + 1).includes(":") && !r.includes("@")) r += ":latest";
  return r;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A deterministic tar of a directory, the form a layer has on the wire and in `docker save`. */
export function tarDirectory(dir: string, out: string): void {
  writeLayerTar(dir, out);
}

export function fileSha256(file: string): string {
  const hash = createHash("sha256");
  const fd = fs.openSync(file, "r");
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}


/** Images the engine can make itself when asked for them (no registry): reference -> builder. */
export type ImageBuilder = (store: ImageStore, progress: (line: string) => void) => Promise<string>;

/** Where a missing image can be fetched from (the registries: ../registry/source.ts). */
export interface ImageSource {
  canFetch(reference: string): boolean;
  /** Fetches it into `store`; returns the image id. */
  fetch(store: ImageStore, reference: string, progress: (line: string) => void): Promise<string>;
}

export class ImageStore {
  private builders = new Map<string, ImageBuilder>();
  private building = new Map<string, Promise<string>>();
  private progressListeners = new Map<string, Set<(line: string) => void>>();

  registerBuilder(references: string[], builder: ImageBuilder): void {
    for (const r of references) this.builders.set(normalizeReference(r), builder);
  }

  /** True when the image can be made here or pulled (a build's FROM asks this). */
  canBuild(reference: string): boolean {
    return this.canBuildLocally(reference) || !!this.source?.canFetch(reference);
  }

  canBuildLocally(reference: string): boolean {
    return this.builders.has(normalizeReference(reference));
  }

  /**
   * Get a missing image: pulled from a registry when one serves its name, else made by a builder
   * (busybox, debian, a shared store's). Concurrent callers share the work and its progress lines.
   */
  async build(reference: string, progress: (line: string) => void = () => {}): Promise<string> {
    if (this.source?.canFetch(reference)) {
      try {
        return await this.source.fetch(this, reference, progress);
      } catch (e) {
        if (!this.canBuildLocally(reference)) throw e;
        progress(`${(e as Error).message}; making it here instead`);
      }
    }
    return this.buildLocally(reference, progress);
  }

  /** Make it with its builder, never fetched (the engine's start makes its shared and prebuilt images so). */
  buildLocally(reference: string, progress: (line: string) => void = () => {}): Promise<string> {
    const ref = normalizeReference(reference);
    const builder = this.builders.get(ref);
    if (!builder) return Promise.reject(new Error(`no builder for ${ref}`));
    const key = builder.toString();
    let listeners = this.progressListeners.get(key);
    if (!listeners) this.progressListeners.set(key, (listeners = new Set()));
    listeners.add(progress);
    let p = this.building.get(key);
    if (!p) {
      const ls = listeners;
      p = builder(this, (line) => ls.forEach((l) => l(line))).finally(() => {
        this.building.delete(key);
        this.progressListeners.delete(key);
      });
      this.building.set(key, p);
    }
    return p.finally(() => listeners!.delete(progress));
  }

  readonly layersDir: string;
  readonly configsDir: string;
  readonly layerdbDir: string;
  readonly blobsDir: string;
  private readonly reposFile: string;
  private readonly digestsFile: string;
  private repos: Record<string, string>;
  private repoDigests: Record<string, string>;
  private sizes = new Map<string, number>();

  /** `source`: where missing images are fetched from before a builder makes them (none: builders only). */
  constructor(
    readonly root: string,
    private readonly source?: ImageSource,
  ) {
    this.layersDir = path.join(root, "image", "layers", "sha256");
    this.configsDir = path.join(root, "image", "configs", "sha256");
    this.reposFile = path.join(root, "image", "repositories.json");
    this.digestsFile = path.join(root, "image", "repodigests.json");
    this.layerdbDir = path.join(root, "image", "layerdb");
    this.blobsDir = path.join(root, "image", "blobs", "sha256");
    for (const d of [this.layersDir, this.configsDir, this.layerdbDir, this.blobsDir]) fs.mkdirSync(d, { recursive: true });
    // Layers are unpacked in tmp/ (pull, load, commit) and renamed into place: each in a block group of its own.
    fs.mkdirSync(path.join(root, "tmp"), { recursive: true });
    spreadSubdirectories(path.join(root, "tmp"));
    this.repos = fs.existsSync(this.reposFile) ? JSON.parse(fs.readFileSync(this.reposFile, "utf8")) : {};
    this.repoDigests = fs.existsSync(this.digestsFile) ? JSON.parse(fs.readFileSync(this.digestsFile, "utf8")) : {};
  }

  /** A scratch directory under the store (same filesystem, so results can be renamed into place). */
  tmpPath(prefix: string): string {
    const dir = path.join(this.root, "tmp");
    fs.mkdirSync(dir, { recursive: true });
    return path.join(dir, `${prefix}-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2, 10)}`);
  }

  hasLayer(diffId: string): boolean {
    return fs.existsSync(this.layerPath(diffId));
  }

  /** Put a directory unpacked from a tar whose digest is known (pull, load) under that digest. */
  adoptLayer(dir: string, diffId: string): void {
    const dest = this.layerPath(diffId);
    if (fs.existsSync(dest)) fs.rmSync(dir, { recursive: true, force: true });
    else fs.renameSync(dir, dest);
  }

  /** What is known of a layer besides its files: its blobs, the size of its wire tar. */
  private layerDb(diffId: string): LayerDb {
    const f = path.join(this.layerdbDir, `${diffId.replace(/^sha256:/, "")}.json`);
    try {
      const db = JSON.parse(fs.readFileSync(f, "utf8")) as Partial<LayerDb>;
      return { ...db, blobs: db.blobs ?? [] };
    } catch {
      return { blobs: [] };
    }
  }

  private writeLayerDb(diffId: string, db: LayerDb): void {
    const f = path.join(this.layerdbDir, `${diffId.replace(/^sha256:/, "")}.json`);
    fs.writeFileSync(`${f}.tmp`, JSON.stringify(db));
    fs.renameSync(`${f}.tmp`, f);
  }

  layerBlobs(diffId: string): LayerBlob[] {
    return this.layerDb(diffId).blobs;
  }

  /** The size of the layer's wire tar (whose sha256 is the diff id), when it was ever measured. */
  layerTarSize(diffId: string): number | undefined {
    return this.layerDb(diffId).tarSize;
  }

  /** True when tarring the layer's directory gives its diff id (made here, not unpacked from another's tar). */
  layerMadeHere(diffId: string): boolean {
    return !!this.layerDb(diffId).madeHere;
  }

  /** What the layer's files hold, counted as it was unpacked (undefined: not known, walked when asked). */
  recordLayerUsage(diffId: string, usage: number | undefined): void {
    if (usage === undefined) return;
    this.sizes.set(diffId, usage);
    const db = this.layerDb(diffId);
    if (db.usage !== usage) this.writeLayerDb(diffId, { ...db, usage });
  }

  recordLayerTarSize(diffId: string, size: number, madeHere = false): void {
    const db = this.layerDb(diffId);
    if (db.tarSize === size && (db.madeHere ?? false) === madeHere) return;
    this.writeLayerDb(diffId, { ...db, tarSize: size, ...(madeHere ? { madeHere } : {}) });
  }

  /** Remember a blob of a layer (merging repos with what is known); `file` is moved into blobs/. */
  recordLayerBlob(diffId: string, blob: LayerBlob, file?: string): void {
    const db = this.layerDb(diffId);
    const blobs = db.blobs;
    const known = blobs.find((b) => b.digest === blob.digest);
    if (file) {
      const dest = this.blobPath(blob.digest);
      if (fs.existsSync(dest)) fs.rmSync(file, { force: true });
      else fs.renameSync(file, dest);
    }
    if (known) {
      known.repos = [...new Set([...(known.repos ?? []), ...(blob.repos ?? [])])];
      known.stored ||= !!file;
    } else blobs.push({ ...blob, stored: !!file || blob.stored });
    this.writeLayerDb(diffId, db);
  }

  blobPath(digest: string): string {
    return path.join(this.blobsDir, digest.replace(/^sha256:/, ""));
  }

  /** Store a config exactly as received (its bytes are what the image id is the digest of). */
  addImageRaw(bytes: Buffer): string {
    const hex = sha256Hex(bytes);
    fs.writeFileSync(path.join(this.configsDir, `${hex}.json`), bytes);
    return `sha256:${hex}`;
  }

  configBytes(id: string): Buffer {
    return fs.readFileSync(path.join(this.configsDir, `${id.replace(/^sha256:/, "")}.json`));
  }

  /** Record "repo@sha256:..." (familiar name) as a RepoDigest of an image. */
  addRepoDigest(id: string, repoAtDigest: string): void {
    this.repoDigests[repoAtDigest] = id;
    this.saveDigests();
  }

  removeRepoDigest(repoAtDigest: string): boolean {
    if (!(repoAtDigest in this.repoDigests)) return false;
    delete this.repoDigests[repoAtDigest];
    this.saveDigests();
    return true;
  }

  private saveDigests(): void {
    fs.writeFileSync(`${this.digestsFile}.tmp`, JSON.stringify(this.repoDigests, null, 1));
    fs.renameSync(`${this.digestsFile}.tmp`, this.digestsFile);
  }

  layerPath(diffId: string): string {
    return path.join(this.layersDir, diffId.replace(/^sha256:/, ""));
  }

  /**
   * A new layer from a directory in overlay form that stays where it is (a container's upper dir):
   * its wire tar is streamed, hashed and unpacked into the store in one pass, without a copy of
   * the directory or a temporary tar. Returns the diff id.
   */
  async commitLayer(src: string): Promise<string> {
    const dir = this.tmpPath("commit-layer");
    try {
      const t = streamLayerTar(src, dir);
      const [{ digest, size, usage }] = await Promise.all([extractLayerStream(t.stdout, dir), t.done]);
      this.adoptLayer(dir, digest);
      this.recordLayerTarSize(digest, size, true);
      this.recordLayerUsage(digest, usage);
      return digest;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * Move an unpacked directory into the store under the digest of its tar; returns the diff id.
   * The tar is hashed as it streams and never written: a build step's layer or the debian image
   * (~180 MB) is made while the engine serves, and the walk hands the event loop back after each
   * MiB, so `docker ps` in another terminal and the X-ray feed keep answering meanwhile.
   */
  async addLayer(dir: string): Promise<string> {
    const t = streamLayerTar(dir);
    const h = createHash("sha256");
    let size = 0;
    t.stdout.on("data", (c: Buffer) => {
      h.update(c);
      size += c.length;
    });
    await t.done;
    const hex = h.digest("hex");
    this.recordLayerTarSize(`sha256:${hex}`, size, true);
    const dest = this.layerPath(hex);
    if (fs.existsSync(dest)) await fs.promises.rm(dir, { recursive: true, force: true });
    else fs.renameSync(dir, dest);
    return `sha256:${hex}`;
  }

  addImage(config: ImageConfig): string {
    const json = JSON.stringify(config);
    const hex = sha256Hex(json);
    fs.writeFileSync(path.join(this.configsDir, `${hex}.json`), json);
    return `sha256:${hex}`;
  }

  /**
   * A base image made here rather than pulled (busybox, debian): one directory becomes its only
   * layer, with the usual PATH, the given Cmd and a history line saying how it was made.
   */
  async addBaseImage(dir: string, opts: { cmd: string[]; createdBy: string; references: readonly string[] }): Promise<string> {
    const diffId = await this.addLayer(dir);
    const created = new Date().toISOString();
    const id = this.addImage({
      architecture: "amd64",
      os: "linux",
      created,
      config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: opts.cmd },
      rootfs: { type: "layers", diff_ids: [diffId] },
      history: [{ created, created_by: opts.createdBy }],
    });
    for (const ref of opts.references) this.tag(id, ref);
    return id;
  }

  tag(id: string, reference: string): void {
    this.repos[normalizeReference(reference)] = id;
    this.saveRepos();
  }

  untag(reference: string): boolean {
    const ref = normalizeReference(reference);
    if (!(ref in this.repos)) return false;
    delete this.repos[ref];
    this.saveRepos();
    return true;
  }

  private saveRepos(): void {
    fs.writeFileSync(`${this.reposFile}.tmp`, JSON.stringify(this.repos, null, 1));
    fs.renameSync(`${this.reposFile}.tmp`, this.reposFile);
  }

  /** Find an image by name, full id, or an unambiguous id prefix (with or without "sha256:"). */
  resolve(ref: string): Image | undefined {
    const byName = this.repos[normalizeReference(ref)];
    if (byName) return this.get(byName);
    if (ref.includes("@")) {
      const byDigest = this.repoDigests[normalizeReference(ref)];
      return byDigest ? this.get(byDigest) : undefined;
    }
    const hex = ref.replace(/^sha256:/, "");
    if (!/^[0-9a-f]{1,64}$/.test(hex)) return undefined;
    const matches = fs.readdirSync(this.configsDir).filter((f) => f.startsWith(hex));
    return matches.length === 1 ? this.get(`sha256:${matches[0]!.replace(/\.json$/, "")}`) : undefined;
  }

  get(id: string): Image | undefined {
    const file = path.join(this.configsDir, `${id.replace(/^sha256:/, "")}.json`);
    if (!fs.existsSync(file)) return undefined;
    const config = JSON.parse(fs.readFileSync(file, "utf8")) as ImageConfig;
    // Configs from elsewhere may leave these out (a FROM scratch image with no settings).
    config.config ??= {};
    config.history ??= [];
    config.rootfs ??= { type: "layers", diff_ids: [] };
    config.rootfs.diff_ids ??= [];
    config.created ??= "0001-01-01T00:00:00Z";
    const tags = Object.entries(this.repos).filter(([, v]) => v === id).map(([k]) => k).sort();
    const digests = Object.entries(this.repoDigests).filter(([, v]) => v === id).map(([k]) => k).sort();
    return { id, config, tags, digests, size: this.imageSize(config) };
  }

  list(): Image[] {
    return fs
      .readdirSync(this.configsDir)
      .filter((f) => f.endsWith(".json"))
      .map((f) => this.get(`sha256:${f.replace(/\.json$/, "")}`)!)
      .sort((a, b) => b.config.created.localeCompare(a.config.created));
  }

  /** Delete an image and every layer no other image uses; returns the deleted layers' diff ids. */
  remove(id: string): string[] {
    const image = this.get(id);
    for (const [k, v] of Object.entries(this.repos)) if (v === id) delete this.repos[k];
    this.saveRepos();
    for (const [k, v] of Object.entries(this.repoDigests)) if (v === id) delete this.repoDigests[k];
    this.saveDigests();
    fs.rmSync(path.join(this.configsDir, `${id.replace(/^sha256:/, "")}.json`), { force: true });
    if (!image) return [];
    const stillUsed = new Set(this.list().flatMap((i) => i.config.rootfs.diff_ids));
    const gone = image.config.rootfs.diff_ids.filter((d) => !stillUsed.has(d));
    for (const d of gone) {
      fs.rmSync(this.layerPath(d), { recursive: true, force: true });
      for (const b of this.layerBlobs(d)) if (b.stored) fs.rmSync(this.blobPath(b.digest), { force: true });
      fs.rmSync(path.join(this.layerdbDir, `${d.replace(/^sha256:/, "")}.json`), { force: true });
      this.sizes.delete(d);
    }
    return gone.reverse();
  }

  /** Lower dirs for overlayfs: the topmost layer first, as the mount option wants them. */
  lowerDirs(image: Image): string[] {
    return image.config.rootfs.diff_ids.map((d) => this.layerPath(d)).reverse();
  }

  layerSizeOrZero(diffId: string | undefined): number {
    return diffId && this.hasLayer(diffId) ? this.layerSize(diffId) : 0;
  }

  /** Size of one unpacked layer: as counted when it was unpacked, else walked once (cached). */
  layerSize(diffId: string): number {
    let size = this.sizes.get(diffId);
    if (size === undefined) {
      size = this.layerDb(diffId).usage ?? treeUsage(this.layerPath(diffId)).size;
      this.sizes.set(diffId, size);
    }
    return size;
  }

  private imageSize(config: ImageConfig): number {
    let total = 0;
    for (const d of config.rootfs.diff_ids) total += this.layerSize(d);
    return total;
  }
}
