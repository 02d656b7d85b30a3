// What a draft may hold. lab.md's cap is several times the longest lab of the workshop (~40 KB);
// files follow labkit's limits for assets (what a new sandbox receives), so a draft that fits here
// also fits there.
import { LIMITS } from "@berth/labkit";

export const ASSET_LIMITS = {
  markdownBytes: 256 * 1024,
  fileBytes: LIMITS.maxAssetBytes,
  totalBytes: LIMITS.maxAssetsBytes,
  files: 64,
  /** An imported archive, packed (it unpacks to at most markdownBytes + totalBytes). */
  archiveBytes: LIMITS.maxAssetsBytes + 1024 * 1024,
} as const;

/** Proofs running at once on this server (each holds a fresh sandbox). */
export const MAX_PROOFS = 2;
