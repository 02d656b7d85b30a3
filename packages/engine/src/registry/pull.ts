/**
 * docker pull: manifest (a list or index narrowed to linux/<this machine's arch>), config, layers.
 * Every byte is checked: the manifest against the digest asked for, the config and each blob
 * against their descriptors, each layer's uncompressed tar against the config's diff id. Layers the
 * store has already are not fetched ("Already exists"). The image keeps its config bytes, so its
 * id here is its id in dockerd.
 *
 * In two halves so that the API can answer an error (404 manifest unknown) as an HTTP error before
 * any progress has been streamed, exactly when dockerd does.
 */
import fs from "node:fs";
import { PassThrough, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import { extractLayerStream, hasher } from "../images/layers";
import type { ImageStore } from "../images/store";
import { EngineError } from "../errors";
import { MT, RegistryClient, type Descriptor, type Manifest } from "./client";
import { familiarName, familiarString, type Reference } from "./reference";
import { shortId, status, throttled, type Say } from "./progress";

export interface PullPlan {
  ref: Reference;
  /** The digest that was asked for or that the tag resolved to (a list's, if a list). */
  digest: string;
  manifest: Manifest;
}

const ARCH = ({ x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386" } as Record<string, string>)[process.arch] ?? process.arch;
const CONCURRENT_DOWNLOADS = 3;

export async function resolvePull(client: RegistryClient, ref: Reference): Promise<PullPlan> {
  const top = await client.getManifest(ref, ref.digest ?? ref.tag!);
  let m = top;
  if (top.mediaType === MT.list || top.mediaType === MT.index) {
    const list = JSON.parse(top.bytes.toString("utf8")) as { manifests: Descriptor[] };
    const pick = list.manifests.find((d) => d.platform?.os === "linux" && d.platform.architecture === ARCH && (!d.platform.variant || ARCH !== "arm64" || d.platform.variant === "v8"));
    if (!pick) throw new EngineError(404, `no matching manifest for linux/${ARCH} in the manifest list entries`);
    m = await client.getManifest(ref, pick.digest);
  }
  if (m.mediaType === MT.schema1) throw new EngineError(400, `${familiarString(ref)}: schema 1 manifests (Docker before 1.10) are not supported; push the image again with a current client`);
  if (m.mediaType !== MT.schema2 && m.mediaType !== MT.oci) throw new EngineError(400, `unsupported manifest media type ${m.mediaType} for ${familiarString(ref)}`);
  const manifest = JSON.parse(m.bytes.toString("utf8")) as Manifest;
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) throw new EngineError(500, `the manifest of ${familiarString(ref)} has no config or no layers`);
  return { ref, digest: top.digest, manifest };
}

/** Fetch what the plan needs, streaming dockerd's progress; returns the image id. */
export async function runPull(store: ImageStore, client: RegistryClient, plan: PullPlan, say: Say): Promise<string> {
  const { ref, manifest } = plan;
  // dockerd: the tag, or for a pull by digest the whole familiar reference.
  say({ status: `Pulling from ${ref.path}`, id: ref.tag ?? familiarString(ref) });

  // The config first: it names the diff ids, which tell which layers are here already.
  const configFile = store.tmpPath("config");
  let configBytes: Buffer;
  try {
    await client.downloadBlob(ref, manifest.config, configFile);
    configBytes = fs.readFileSync(configFile);
  } finally {
    fs.rmSync(configFile, { force: true });
  }
  const config = JSON.parse(configBytes.toString("utf8")) as { rootfs?: { diff_ids?: string[] } };
  const diffIds = config.rootfs?.diff_ids ?? [];
  const layers = manifest.layers.filter((l) => !/foreign|nondistributable/.test(l.mediaType));
  if (diffIds.length !== layers.length) throw new EngineError(500, `${familiarString(ref)}: the config names ${diffIds.length} layers, the manifest ${layers.length}`);
  const id = `sha256:${manifest.config.digest.replace(/^sha256:/, "")}`;
  const familiar = familiarString(ref);
  const repo = `${ref.domain}/${ref.path}`;

  const current = ref.tag ? store.resolve(familiar) : store.resolve(`${familiarName(ref)}@${plan.digest}`);
  const complete = diffIds.every((d) => store.hasLayer(d)) && !!store.get(id);
  if (current?.id === id && complete) {
    store.addRepoDigest(id, `${familiarName(ref)}@${plan.digest}`);
    say({ status: `Digest: ${plan.digest}` });
    say({ status: `Status: Image is up to date for ${familiar}` });
    return id;
  }

  const missing = layers.map((l, i) => ({ l, diffId: diffIds[i]! })).filter(({ diffId }) => !store.hasLayer(diffId));
  for (const [i, l] of layers.entries()) {
    if (store.hasLayer(diffIds[i]!)) status(say, shortId(l.digest), "Already exists");
    else status(say, shortId(l.digest), "Pulling fs layer");
  }
  for (const { l } of missing.slice(CONCURRENT_DOWNLOADS)) status(say, shortId(l.digest), "Waiting");

  // Downloads run three at a time, each unpacked as it arrives (and kept as the blob it came as);
  // the layers are then taken into the store in order, each announced as dockerd does.
  const fetched = new Map<string, Promise<Awaited<ReturnType<typeof fetchLayer>>>>();
  const limit = limiter(CONCURRENT_DOWNLOADS);
  for (const { l } of missing) {
    if (fetched.has(l.digest)) continue;
    const sid = shortId(l.digest);
    const p = limit(async () => {
      const got = await fetchLayer(store, client, ref, l, throttled(say, sid, "Downloading", l.size));
      status(say, sid, "Verifying Checksum");
      status(say, sid, "Download complete");
      return got;
    });
    p.catch(() => {}); // awaited below, in order; this only keeps a later failure from going unhandled
    fetched.set(l.digest, p);
  }
  try {
    for (const { l, diffId } of missing) {
      const { dir, file, diffId: got, size, usage } = await fetched.get(l.digest)!;
      const sid = shortId(l.digest);
      if (store.hasLayer(diffId)) {
        status(say, sid, "Pull complete");
        continue;
      }
      if (got !== diffId) throw new EngineError(500, `failed to register layer: the layer ${shortId(l.digest)} unpacks to ${got}, the image config says ${diffId}`);
      throttled(say, sid, "Extracting", l.size)(l.size);
      store.adoptLayer(dir, diffId);
      store.recordLayerTarSize(diffId, size);
      store.recordLayerUsage(diffId, usage);
      // The blob is kept as it came: pushing or saving the layer gives back the same digests.
      store.recordLayerBlob(diffId, { digest: l.digest, size: l.size, mediaType: l.mediaType, repos: [repo] }, file);
      status(say, sid, "Pull complete");
    }
  } finally {
    for (const p of fetched.values()) {
      const r = await p.catch(() => undefined);
      if (r) {
        fs.rmSync(r.dir, { recursive: true, force: true });
        fs.rmSync(r.file, { force: true });
      }
    }
  }
  // Layers that were here already are known to be in this repository too (for push's skips).
  for (const [i, l] of layers.entries()) store.recordLayerBlob(diffIds[i]!, { digest: l.digest, size: l.size, mediaType: l.mediaType, repos: [repo] });

  store.addImageRaw(configBytes);
  if (ref.tag) store.tag(id, familiar);
  store.addRepoDigest(id, `${familiarName(ref)}@${plan.digest}`);
  say({ status: `Digest: ${plan.digest}` });
  say({ status: `Status: Downloaded newer image for ${familiar}` });
  return id;
}

/**
 * One layer from the registry: its bytes go at once to a file (the blob, kept) and through
 * gunzip into tar (the unpacked layer), so that unpacking does not wait for the download. The
 * blob is checked against its descriptor; the caller checks the diff id.
 */
async function fetchLayer(store: ImageStore, client: RegistryClient, ref: Reference, l: Descriptor, onBytes: (n: number) => void): Promise<{ dir: string; file: string; diffId: string; size: number; usage?: number }> {
  const dir = store.tmpPath("layer");
  const file = store.tmpPath("blob");
  let res: Awaited<ReturnType<RegistryClient["openBlob"]>> | undefined;
  try {
    res = await client.openBlob(ref, l);
    const h = hasher();
    h.on("data", () => onBytes(h.bytes()));
    const out = fs.createWriteStream(file, { highWaterMark: 8 << 20 });
    const unpack = new PassThrough({ highWaterMark: 8 << 20 });
    const tee = new Writable({
      highWaterMark: 8 << 20,
      write(chunk: Buffer, _e, cb) {
        let waiting = 2;
        const next = () => --waiting === 0 && cb();
        if (out.write(chunk)) next();
        else out.once("drain", next);
        if (unpack.write(chunk)) next();
        else unpack.once("drain", next);
      },
      final(cb) {
        unpack.end();
        out.end(cb);
      },
    });
    const gz = /gzip/.test(l.mediaType);
    const tar = gz ? unpack.pipe(zlib.createGunzip({ chunkSize: 1 << 20 })) : unpack;
    if (gz) unpack.on("error", (e) => tar.destroy(e));
    const [, { digest, size, usage }] = await Promise.all([pipeline(res, h, tee), extractLayerStream(tar, dir)]);
    if (h.digest() !== l.digest) throw new EngineError(500, `filesystem layer verification failed for digest ${l.digest}`);
    return { dir, file, diffId: digest, size, usage };
  } catch (e) {
    res?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(file, { force: true });
    throw e;
  }
}

/** Run at most n of the given tasks at once. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return (task) =>
    new Promise((resolve, reject) => {
      const run = () => {
        active++;
        task()
          .then(resolve, reject)
          .finally(() => {
            active--;
            queue.shift()?.();
          });
      };
      if (active < n) run();
      else queue.push(run);
    });
}
