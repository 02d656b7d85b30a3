/**
 * `docker import`: a root filesystem tarball (what `docker export` writes, gzip allowed) becomes a
 * one-layer image. The tar as sent is the layer, so its digest is the diff id; `--change` lines
 * set the config, `--message` the history comment, as dockerd does ("Imported from -" without one).
 */
import fs from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { EngineError } from "../errors";
import { LAYER_TAR } from "./archive";
import { applyChange } from "./changes";
import { UnsafeArchiveError } from "../tar/format";
import { extractLayer, isGzip } from "./layers";
import type { ContainerDefaults, ImageStore } from "./store";

export interface ImportOptions {
  source: string; // "-" (the request body) as the CLI sends it; URLs are not fetched
  changes: string[];
  message?: string;
  reference?: string; // repo[:tag]
}

export async function importImage(store: ImageStore, body: Readable, opts: ImportOptions): Promise<string> {
  if (opts.source !== "-") throw new EngineError(400, `importing from ${opts.source} is not supported: pipe the file in (docker import - or docker import FILE)`);
  let config: ContainerDefaults = {};
  for (const change of opts.changes) for (const line of change.split("\n")) if (line.trim()) config = applyChange(config, line.trim());
  const file = `${store.tmpPath("import")}.tar`;
  const unpacked = store.tmpPath("import-layer");
  try {
    await pipeline(body, fs.createWriteStream(file));
    if (fs.statSync(file).size === 0) throw new EngineError(400, "the import archive is empty");
    let diffId: string;
    try {
      diffId = await extractLayer(file, unpacked);
    } catch (e) {
      // A member the strict extractor refuses (../tar/extract.ts) is said as it is; for anything
      // that is not a readable tar at all, dockerd's words.
      if (e instanceof UnsafeArchiveError && !/truncated|invalid tar header|not a tar archive/.test(e.message)) throw new EngineError(400, e.message);
      throw new EngineError(500, "Error processing tar file(exit status 1): unexpected EOF");
    }
    if (!store.hasLayer(diffId)) store.adoptLayer(unpacked, diffId);
    // The bytes as they came: `docker save` and `push` give back this very tar.
    if (!isGzip(file)) store.recordLayerBlob(diffId, { digest: diffId, size: fs.statSync(file).size, mediaType: LAYER_TAR }, file);
    const created = new Date().toISOString();
    const comment = opts.message || "Imported from -";
    const id = store.addImage({
      architecture: "amd64",
      os: "linux",
      created,
      comment,
      config,
      rootfs: { type: "layers", diff_ids: [diffId] },
      history: [{ created, comment, created_by: "" }],
    });
    if (opts.reference) store.tag(id, opts.reference);
    return id;
  } finally {
    fs.rmSync(file, { force: true });
    fs.rmSync(unpacked, { recursive: true, force: true });
  }
}
