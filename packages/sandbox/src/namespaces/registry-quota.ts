// A learner's storage quota in the lab registry: what their pushes (learners/<owner>/…) hold on
// the registry's disk, counted from the registry's own storage, and enforced by the registry
// gateway on every upload (registry-gateway.ts).
//
// Counted: every blob linked into one of the owner's repositories (layers, configs, manifests),
// once per digest, and the partial data of their uploads in progress; blobs the lab's images
// (library/, berth/) hold too are free, since a copy of a lab image costs the registry nothing.
// The distribution registry's filesystem layout (its `rootdirectory`):
//   docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data                  the bytes, shared by all
//   docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link    blobs this repository holds
//   docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link
//   docker/registry/v2/repositories/<name>/_uploads/<id>/data          an upload in progress
//
// Enforced: an upload starts only under the quota; its body is metered as it streams (with every
// other upload of the same owner in flight), and one that would cross the quota is cut off
// upstream (and its partial upload deleted there), its body read to the end and answered with the
// registry's own DENIED error, which the docker CLI prints: "denied: quota exceeded: …".
import type http from "node:http";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type Readable } from "node:stream";

export const DEFAULT_REGISTRY_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;

export interface RegistryQuota {
  /** The registry's storage root (its filesystem `rootdirectory`), read to count usage. */
  storageDir: string;
  /** Bytes one owner may hold (default DEFAULT_REGISTRY_QUOTA_BYTES). */
  bytes?: number;
}

const LAB_ROOTS = ["library", "berth"];

async function subdirs(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name);
}

/** Digests linked under a repositories subtree, and the bytes of its uploads in progress. */
async function linked(root: string, into: Set<string>): Promise<number> {
  let uploads = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const name of await subdirs(dir)) {
      const path = join(dir, name);
      if (name === "_layers") for (const hex of await subdirs(join(path, "sha256"))) into.add(hex);
      else if (name === "_manifests") for (const hex of await subdirs(join(path, "revisions", "sha256"))) into.add(hex);
      else if (name === "_uploads") {
        for (const id of await subdirs(path)) uploads += (await stat(join(path, id, "data")).catch(() => undefined))?.size ?? 0;
      } else await walk(path);
    }
  };
  await walk(root);
  return uploads;
}

/** Bytes an owner holds in the registry now. */
export async function registryUsage(storageDir: string, owner: string): Promise<number> {
  const v2 = join(storageDir, "docker", "registry", "v2");
  const mine = new Set<string>();
  let total = await linked(join(v2, "repositories", "learners", owner), mine);
  const lab = new Set<string>();
  for (const root of LAB_ROOTS) await linked(join(v2, "repositories", root), lab);
  for (const hex of mine) {
    if (lab.has(hex) || !/^[a-f0-9]{64}$/.test(hex)) continue;
    total += (await stat(join(v2, "blobs", "sha256", hex.slice(0, 2), hex, "data")).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

/**
 * Removes the partial data of an upload that was cut off at the quota. Not through the API: the
 * registry refuses to cancel an upload whose data no longer matches its session token's offset
 * (BLOB_UPLOAD_INVALID), which is what a cut-off leaves. `rest` is "blobs/uploads/<id>"; a POST's
 * upload has no id yet and nothing to remove.
 */
export async function removeUpload(storageDir: string, upstreamName: string, rest: string): Promise<void> {
  const id = /^blobs\/uploads\/([A-Za-z0-9_.=-]+)$/.exec(rest)?.[1];
  if (!id || id.startsWith(".")) return;
  await rm(join(storageDir, "docker", "registry", "v2", "repositories", upstreamName, "_uploads", id), { recursive: true, force: true });
}

/** Upload bytes in flight per owner (in this process: every gateway of that owner's sandboxes). */
const inflight = new Map<string, number>();

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0);

export function quotaMessage(used: number, limit: number): string {
  return `quota exceeded: ${mib(used)} MiB of ${mib(limit)} MiB used (your images in the lab registry); delete some to push more`;
}

function drain(req: http.IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    if (req.readableEnded) return resolve();
    req.on("end", resolve);
    req.on("error", () => resolve());
    req.on("close", () => resolve());
    req.resume();
  });
}

/**
 * Runs one upload request (POST, PATCH or PUT under blobs/uploads) within the owner's quota.
 * `forward` sends the (metered) body upstream and answers the client; it must abort when `signal`
 * does. Resolves with a refusal message when the upload was refused (nothing answered yet), else
 * undefined. `cancel` removes the partial upload upstream after a cut-off.
 */
export async function uploadWithinQuota(
  req: http.IncomingMessage,
  quota: RegistryQuota,
  owner: string,
  forward: (body: Readable, signal: AbortSignal) => Promise<void>,
  cancel: () => Promise<void>,
): Promise<string | undefined> {
  const limit = quota.bytes ?? DEFAULT_REGISTRY_QUOTA_BYTES;
  const key = `${quota.storageDir}\0${owner}`;
  const used = await registryUsage(quota.storageDir, owner);
  const declared = Number(req.headers["content-length"] ?? 0) || 0;
  const before = used + (inflight.get(key) ?? 0);
  if (before + declared > limit || (declared === 0 && before >= limit)) {
    await drain(req);
    return quotaMessage(used, limit);
  }
  let mine = 0;
  let exceeded = false;
  const abort = new AbortController();
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (exceeded) return cb(); // refused: read to the end, kept nowhere
      mine += chunk.length;
      const now = (inflight.get(key) ?? 0) + chunk.length;
      inflight.set(key, now);
      if (used + now > limit) {
        exceeded = true;
        abort.abort();
        return cb();
      }
      cb(null, chunk);
    },
  });
  req.pipe(meter);
  try {
    await forward(meter, abort.signal);
    return undefined;
  } catch (err) {
    if (!exceeded) throw err;
    meter.resume();
    await drain(req);
    await cancel().catch(() => {});
    return quotaMessage(used, limit);
  } finally {
    const left = (inflight.get(key) ?? 0) - mine;
    if (left > 0) inflight.set(key, left);
    else inflight.delete(key);
  }
}
