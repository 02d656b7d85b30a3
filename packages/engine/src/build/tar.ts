/**
 * The builder's names for the engine's one tar module (src/tar/): the context and `ADD` use the
 * strict extractor like every other archive the engine unpacks. `keepOwners` is ADD's wish to keep
 * the archive's owners; a context's files belong to whoever unpacks them.
 */
import { extractTar as extract, UnsafeArchiveError } from "../tar/extract";

export { compression, decompress, looksLikeTar } from "../tar/reader";
export { UnsafeArchiveError };

export function extractTar(file: string, dest: string, opts: { policy: "context" | "image"; keepOwners?: boolean; what?: string }): number {
  return extract(file, dest, { policy: opts.policy, what: opts.what, owners: opts.keepOwners ? "keep" : "none" });
}
