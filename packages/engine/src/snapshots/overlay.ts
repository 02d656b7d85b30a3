/**
 * The overlayfs snapshotter: a container's root filesystem is the image layers (read-only "lower"
 * dirs) under a writable "upper" dir of its own; "work" is overlayfs's scratch space. Everything a
 * container changes lands in upper/, which is why `docker diff` and `docker commit` only read it.
 *
 *   mount -t overlay overlay -o lowerdir=L2:L1,upperdir=U,workdir=W merged
 */
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { getAttributeSync, setAttributeSync } from "fs-xattr";

export interface Snapshot {
  lower: string[]; // topmost first
  upper: string;
  work: string;
  merged: string;
}

export function prepareSnapshot(dir: string, lower: string[]): Snapshot {
  const s = { lower, upper: path.join(dir, "upper"), work: path.join(dir, "work"), merged: path.join(dir, "merged") };
  for (const d of [s.upper, s.work, s.merged]) fs.mkdirSync(d, { recursive: true });
  return s;
}

/**
 * True when this engine runs in a user namespace (nested in a learner's sandbox). There overlayfs
 * cannot write its trusted.overlay.* xattrs (they need CAP_SYS_ADMIN on the host), so deleting a
 * directory that comes from an image layer fails with EIO; `userxattr` makes it keep the same
 * markers (opaque, redirect) in user.overlay.* instead, which the sandbox's root may write.
 */
export const NESTED_IN_USER_NAMESPACE = (() => {
  try {
    return fs.readFileSync("/proc/self/uid_map", "utf8").trim().split(/\s+/).join(" ") !== "0 0 4294967295";
  } catch {
    return false;
  }
})();
/** Where overlayfs keeps its markers (an opaque directory: `<prefix>opaque` = "y"). */
export const OVERLAY_XATTR_PREFIX = NESTED_IN_USER_NAMESPACE ? "user.overlay." : "trusted.overlay.";

export function overlayOptions(s: Snapshot): string {
  return `lowerdir=${s.lower.join(":")},upperdir=${s.upper},workdir=${s.work}${NESTED_IN_USER_NAMESPACE ? ",userxattr" : ""}`;
}

export function isMounted(dir: string): boolean {
  const target = path.resolve(dir);
  return fs.readFileSync("/proc/self/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === target);
}

/**
 * One file of the root filesystem read from the layers, without mounting them, by overlayfs's
 * rules: the topmost layer holding the path wins, and a whiteout (a 0/0 character device) or an
 * opaque directory on the way hides everything below it. Used before a fresh container starts
 * (its /etc/passwd and /etc/group), so that the shim can mount the overlay instead of a `mount`
 * process. Returns null if the file is not there; undefined if the layers alone cannot tell (a
 * symlink on the way, or an upper dir with changes of its own): then mount and read the merged dir.
 */
export function readFromLayers(s: Snapshot, rel: string): string | null | undefined {
  if (fs.readdirSync(s.upper).length) return undefined; // renames and redirects: leave it to the kernel
  const parts = rel.split("/").filter(Boolean);
  for (const layer of s.lower) {
    let opaque = false;
    for (let i = 0; i < parts.length; i++) {
      const p = path.join(layer, ...parts.slice(0, i + 1));
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        break; // not in this layer: look lower
      }
      if (st.isCharacterDevice() && st.rdev === 0) return null; // deleted here
      if (st.isSymbolicLink()) return undefined;
      if (i === parts.length - 1) return st.isFile() ? fs.readFileSync(p, "utf8") : null;
      if (!st.isDirectory()) return null; // a file hides the directory below
      if (isOpaqueDir(p)) opaque = true;
    }
    if (opaque) return null; // an opaque directory on the way, and the file not in it
  }
  return null;
}

export function mountSnapshot(s: Snapshot): void {
  if (isMounted(s.merged)) return;
  execFileSync("mount", ["-t", "overlay", "overlay", "-o", overlayOptions(s), s.merged]);
}

export function unmountSnapshot(s: Snapshot): void {
  if (!isMounted(s.merged)) return;
  try {
    execFileSync("umount", [s.merged]);
  } catch {
    execFileSync("umount", ["-l", s.merged]); // still busy (a cp in flight): detach it lazily
  }
}

export function unmountSnapshotAsync(s: Snapshot): Promise<void> {
  if (!isMounted(s.merged)) return Promise.resolve();
  return new Promise((resolve) => {
    execFile("umount", [s.merged], (err) => {
      if (!err) return resolve();
      execFile("umount", ["-l", s.merged], () => resolve());
    });
  });
}

export type ChangeKind = 0 | 1 | 2; // Docker's numbers: 0 = changed, 1 = added, 2 = deleted

/**
 * `docker diff`: walk the upper dir. A character device 0/0 is an overlayfs whiteout (deleted);
 * anything else that also exists in a lower dir was changed, otherwise added. Parents of a change
 * that exist below count as changed, the way Docker reports them.
 */
export function changes(s: Snapshot): { Path: string; Kind: ChangeKind }[] {
  const out: { Path: string; Kind: ChangeKind }[] = [];
  const inLower = (rel: string) => s.lower.some((l) => fs.existsSync(path.join(l, rel)) || isSymlink(path.join(l, rel)));
  const walk = (rel: string) => {
    const abs = path.join(s.upper, rel);
    for (const name of fs.readdirSync(abs).sort()) {
      const r = path.join(rel, name);
      const st = fs.lstatSync(path.join(s.upper, r));
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ Path: r, Kind: 2 });
        continue;
      }
      const existed = inLower(r);
      if (st.isDirectory()) {
        const opaque = readOpaque(path.join(s.upper, r));
        out.push({ Path: r, Kind: existed ? 0 : 1 });
        if (opaque && existed) {
          // An opaque dir hides everything below it: whatever the lower layers had there is deleted.
          for (const l of s.lower) {
            const ld = path.join(l, r);
            if (fs.existsSync(ld)) for (const n of fs.readdirSync(ld)) if (!fs.existsSync(path.join(s.upper, r, n))) out.push({ Path: path.join(r, n), Kind: 2 });
          }
        }
        walk(r);
      } else out.push({ Path: r, Kind: existed ? 0 : 1 });
    }
  };
  walk("/");
  return out.sort((a, b) => a.Path.localeCompare(b.Path));
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function readOpaque(dir: string): boolean {
  return isOpaqueDir(dir, [`${OVERLAY_XATTR_PREFIX}opaque`]);
}

/** Both spellings of overlayfs's opaque marker: a layer made on the host may be read nested, and back. */
export const OPAQUE_XATTRS = ["trusted.overlay.opaque", "user.overlay.opaque"];

/**
 * Whether a directory hides what is below it (`<prefix>opaque` = "y"). Read with the kernel's
 * getxattr through fs-xattr, not a command-line tool: a missing tool once made opaque directories
 * vanish silently. "No such attribute" and "this filesystem has no xattrs" both mean no; anything
 * else is an error worth seeing. Only call it on a real directory (getxattr follows symlinks).
 */
export function isOpaqueDir(dir: string, names: readonly string[] = OPAQUE_XATTRS): boolean {
  for (const name of names) {
    try {
      if (getAttributeSync(dir, name).toString("utf8") === "y") return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENODATA" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOATTR") throw e;
    }
  }
  return false;
}

/** Mark a directory opaque for overlayfs; throws if the filesystem or the caller cannot (never a silent no-op). */
export function markOpaque(dir: string): void {
  setAttributeSync(dir, `${OVERLAY_XATTR_PREFIX}opaque`, "y");
}
