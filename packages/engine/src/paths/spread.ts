// Where the engine's layer and snapshot directories land on the disk: the image store and the
// snapshotter both mark their parents (images/store.ts, snapshots/overlay.ts).
import { execFileSync } from "node:child_process";

/**
 * `chattr +T dir`: ext2/3/4's allocator (Orlov) is told that each directory made in `dir` starts
 * a tree of its own, as a directory in the filesystem's root does, and places it in a block group
 * with room and few directories instead of beside its parent. For the parents of layers and
 * snapshots this matters where inodes are made and removed by the thousand: on an ext4 without
 * a journal the allocator skips every inode of the group freed in the last minutes, one lookup
 * each, for every file it makes, so unpacking 3000 files beside the 3000 a container just
 * removed took ~1.5 s instead of ~0.1 s (docs/engine.md, "Push: gzip in blocks"). Elsewhere
 * (another filesystem, no chattr in a sandbox's minimal root whose disk has a journal) it is a
 * hint not taken: nothing depends on it.
 */
export function spreadSubdirectories(dir: string): void {
  try {
    execFileSync("chattr", ["+T", dir], { stdio: "ignore" });
  } catch {
    // not ext2/3/4, or chattr missing: the hint does not apply
  }
}
