/**
 * docker push: every layer as a gzip blob (the blob it was pulled as, when we have it, so its
 * digest is the one the registry knows already), then the config, then a schema2 manifest under
 * the tag. Blobs the repository has are skipped ("Layer already exists"); blobs another
 * repository of the same registry holds are mounted, not uploaded ("Mounted from x").
 */
import fs from "node:fs";
import { PassThrough, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { layerTar } from "../images/archive";
import { gzipBlocks, gzipFile, gzipStream, hasher, streamLayerTar } from "../images/layers";
import type { Image, ImageStore, LayerBlob } from "../images/store";
import { MT, RegistryClient, type Descriptor } from "./client";
import { familiarName, type Reference } from "./reference";
import { shortId, status, throttled, type Say } from "./progress";
import { createHash } from "node:crypto";

/** Push one image under ref.tag; returns the manifest digest. */
export async function pushImage(store: ImageStore, client: RegistryClient, image: Image, ref: Reference, say: Say): Promise<string> {
  const repo = `${ref.domain}/${ref.path}`;
  const diffIds = image.config.rootfs.diff_ids;
  // dockerd lists the layers top first.
  const order = diffIds.map((d, i) => ({ d, i })).reverse();
  for (const { d } of order) status(say, shortId(d), "Preparing");

  // The registry is asked about every blob kept here at once (dockerd also checks its layers
  // concurrently); the answers are taken in order below, so progress reads as before.
  const asked = new Map<string, Promise<boolean>>();
  for (const { d } of order) {
    const kept = keptBlob(store, d);
    if (!kept || asked.has(kept.digest)) continue;
    const p = client.blobExists(ref, kept.digest);
    p.catch(() => {}); // awaited in the loop; this only keeps a failure of one not reached from going unhandled
    asked.set(kept.digest, p);
  }

  const descriptors: Descriptor[] = new Array(diffIds.length);
  const wireDiffIds: string[] = [...diffIds];
  for (const { d, i } of order) {
    const sid = shortId(d);
    if (!store.layerBlobs(d).some((b) => b.stored)) {
      // Made here and never pushed: tar, gzip and upload in one pass, as dockerd does.
      const { blob, diffId } = await streamLayer(store, client, ref, d, throttled(say, sid, "Pushing", store.layerTarSize(d) ?? 0));
      wireDiffIds[i] = diffId;
      descriptors[i] = { mediaType: MT.layerGzip, size: blob.size, digest: blob.digest };
      status(say, sid, "Pushed");
      if (diffId === d) store.recordLayerBlob(d, { ...blob, repos: [repo] });
      continue;
    }
    const { blob, file, diffId } = await gzipBlob(store, d);
    wireDiffIds[i] = diffId;
    descriptors[i] = { mediaType: MT.layerGzip, size: blob.size, digest: blob.digest };
    try {
      if (await (asked.get(blob.digest) ?? client.blobExists(ref, blob.digest))) {
        status(say, sid, "Layer already exists");
      } else {
        // Another repository on this registry may have it: ask for a mount first.
        const from = (blob.repos ?? []).find((r) => r.startsWith(`${ref.domain}/`) && r !== repo);
        let location: string | undefined;
        let mounted = false;
        if (from) {
          const m = await client.mountBlob(ref, blob.digest, from.slice(ref.domain.length + 1));
          mounted = m.mounted;
          if (!m.mounted) location = m.location;
        }
        if (mounted) status(say, sid, `Mounted from ${from!.slice(ref.domain.length + 1)}`);
        else {
          await client.uploadBlob(ref, blob.digest, file ?? store.blobPath(blob.digest), throttled(say, sid, "Pushing", blob.size), location);
          status(say, sid, "Pushed");
        }
      }
    } finally {
      if (file) fs.rmSync(file, { force: true });
    }
    if (diffId === d) store.recordLayerBlob(d, { ...blob, repos: [repo] });
  }

  // The config as stored (its digest is the image id), unless a layer could only be reproduced
  // with another digest: then the config must name what was pushed.
  const same = wireDiffIds.every((d, i) => d === diffIds[i]);
  const configBytes = same ? store.configBytes(image.id) : Buffer.from(JSON.stringify({ ...image.config, rootfs: { type: "layers", diff_ids: wireDiffIds } }));
  const configDigest = `sha256:${createHash("sha256").update(configBytes).digest("hex")}`;
  if (!(await client.blobExists(ref, configDigest))) await client.uploadBytes(ref, configDigest, configBytes);

  const manifest = {
    schemaVersion: 2,
    mediaType: MT.schema2,
    config: { mediaType: MT.config, size: configBytes.length, digest: configDigest },
    layers: descriptors,
  };
  // dockerd indents its manifests with three spaces; the digest is of these exact bytes.
  const bytes = Buffer.from(JSON.stringify(manifest, null, 3));
  const digest = await client.putManifest(ref, ref.tag!, bytes, MT.schema2);
  store.addRepoDigest(image.id, `${familiarName(ref)}@${digest}`);
  say({ status: `${ref.tag}: digest: ${digest} size: ${bytes.length}` });
  say({ progressDetail: {}, aux: { Tag: ref.tag, Digest: digest, Size: bytes.length } });
  return digest;
}

/**
 * A layer made here, never pushed: its wire tar gzipped straight into the registry's upload and,
 * on the way, into a file kept as the layer's blob (so the next push finds it, with this digest).
 * `onBytes` counts uncompressed bytes, as dockerd's "Pushing" does.
 */
async function streamLayer(store: ImageStore, client: RegistryClient, ref: Reference, diffId: string, onBytes: (n: number) => void): Promise<{ blob: LayerBlob; diffId: string }> {
  const gzFile = store.tmpPath("push-gz");
  const t = streamLayerTar(store.layerPath(diffId), gzFile);
  const hin = hasher();
  const hout = hasher();
  hin.on("data", () => onBytes(hin.bytes()));
  const file = fs.createWriteStream(gzFile, { highWaterMark: 4 << 20 });
  const body = new PassThrough({ highWaterMark: 4 << 20 });
  // Both ends of the tee are written before the PATCH can end, so hout has seen every byte.
  const made = pipeline(t.stdout, hin, gzipBlocks(), hout, new Writable({
    highWaterMark: 4 << 20,
    write(chunk: Buffer, _e, cb) {
      let waiting = 2;
      const next = () => --waiting === 0 && cb();
      if (file.write(chunk)) next();
      else file.once("drain", next);
      if (body.write(chunk)) next();
      else body.once("drain", next);
    },
    final(cb) {
      body.end();
      file.end(cb);
    },
  }));
  try {
    await Promise.all([client.uploadStream(ref, body, () => hout.digest()), made, t.done]);
    const wire = hin.digest();
    const blob: LayerBlob = { digest: hout.digest(), size: hout.bytes(), mediaType: MT.layerGzip };
    if (wire !== diffId) {
      fs.rmSync(gzFile, { force: true });
      return { blob, diffId: wire };
    }
    store.recordLayerTarSize(diffId, hin.bytes());
    store.recordLayerBlob(diffId, blob, gzFile);
    return { blob: { ...blob, stored: true }, diffId };
  } catch (e) {
    body.destroy();
    fs.rmSync(gzFile, { force: true });
    throw e;
  }
}

/**
 * The gzip blob of a layer: one we keep (as pulled), or one made now from its tar and then kept,
 * so that the next push of the same layer finds it with the same digest. `file` is set only when
 * the blob lives in a temporary file the caller removes.
 */
async function gzipBlob(store: ImageStore, diffId: string): Promise<{ blob: LayerBlob; file?: string; diffId: string }> {
  const kept = keptBlob(store, diffId);
  if (kept) return { blob: kept, diffId };
  const tar = store.tmpPath("push-tar");
  const gz = store.tmpPath("push-gz");
  try {
    let wire: string;
    let digest: string;
    let size: number;
    if (store.layerBlobs(diffId).some((b) => b.stored)) {
      // A loaded tar (or a blob in another form): from its bytes.
      wire = await layerTar(store, diffId, tar);
      ({ digest, size } = await gzipFile(tar, gz));
    } else {
      // Made here: tar, hash and gzip in one pass, no intermediate file.
      const t = streamLayerTar(store.layerPath(diffId), tar);
      const [r] = await Promise.all([gzipStream(t.stdout, gz), t.done]);
      ({ inDigest: wire, digest, size } = r);
      if (wire === diffId) store.recordLayerTarSize(diffId, r.inSize);
    }
    const blob: LayerBlob = { digest, size, mediaType: MT.layerGzip };
    if (wire === diffId) {
      store.recordLayerBlob(diffId, blob, gz);
      return { blob: { ...blob, stored: true }, diffId };
    }
    return { blob, file: gz, diffId: wire };
  } catch (e) {
    fs.rmSync(gz, { force: true });
    throw e;
  } finally {
    fs.rmSync(tar, { force: true });
  }
}

/** The gzip blob of a layer kept here (as pulled, or as pushed before), if any. */
function keptBlob(store: ImageStore, diffId: string): LayerBlob | undefined {
  return store.layerBlobs(diffId).find((b) => b.stored && /gzip/.test(b.mediaType) && fs.existsSync(store.blobPath(b.digest)));
}
