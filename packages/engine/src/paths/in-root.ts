/**
 * One way to find a path inside a container's (or a build context's) root directory, used by
 * `docker cp`, mount destinations and the builder.
 *
 * The root is a host directory, and its symbolic links were written by whoever made the image: an
 * absolute link `/data -> /etc` followed by the host would reach the host's /etc. So no path is
 * handed to the kernel as a whole: every component is looked at in turn, `..` stops at the root,
 * and each symbolic link is read and resolved again inside the root (absolute targets from the
 * root), as the container itself would see it (Docker's FollowSymlinkInScope). Mounts of a stopped
 * container (volumes, binds) are part of its view: a path at or below a mount's destination lies
 * in the mount's source, the deepest mount winning, and a link inside a mount is still resolved
 * against the container's root, never the host's.
 */
import fs from "node:fs";
import path from "node:path";
import { EngineError } from "../errors";

/** A volume or bind mount as the container sees it: its files are at `source`, shown at `destination`. */
export interface RootMount {
  destination: string;
  source: string;
}

export interface WalkOptions {
  /** Follow a symbolic link in the last component (default true); false returns the link itself. */
  followLast?: boolean;
  /** "refuse": any symbolic link on the way is an error (a build context's members may not use one). */
  symlinks?: "follow" | "refuse";
  mounts?: RootMount[];
  /**
   * A component that does not exist: "allow" (default) keeps the rest as written, "error" refuses,
   * "mkdir" makes it a directory (mode 0755, owned by `owner` when given).
   */
  missing?: "allow" | "error" | "mkdir";
  owner?: { uid: number; gid: number };
}

/** A path that cannot be resolved (missing, not a directory, a loop): Docker's 4xx. */
export class PathError extends EngineError {
  constructor(message: string, status = 400) {
    super(status, message);
  }
}

const MAX_LINKS = 40; // the kernel's limit on links followed in one lookup

/**
 * Resolve `p` inside `root`: `host` is where the file is on the host (always below `root` or below
 * the source of one of the mounts), `logical` the container's own name for it once every link on
 * the way is followed.
 */
export function walkInRoot(root: string, p: string, opts: WalkOptions = {}): { host: string; logical: string } {
  const followLast = opts.followLast ?? true;
  const mounts = opts.mounts ?? [];
  const missing = opts.missing ?? "allow";
  const parts = p.split("/").filter((x) => x && x !== ".");
  const resolved: string[] = [];
  let hops = 0;
  let absent = false; // a component was missing: what follows it cannot exist either
  const hostOf = (logicalParts: string[]) => {
    const logical = `/${logicalParts.join("/")}`;
    let best: RootMount | undefined;
    for (const m of mounts) {
      if ((logical === m.destination || logical.startsWith(`${m.destination}/`)) && (!best || m.destination.length > best.destination.length)) best = m;
    }
    return best ? path.join(best.source, ...logical.slice(best.destination.length).split("/")) : path.join(root, ...logicalParts);
  };
  const shown = (logicalParts: string[]) => `/${logicalParts.join("/")}`;
  while (parts.length) {
    const part = parts.shift()!;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = hostOf([...resolved, part]);
    const st = absent ? undefined : lstat(candidate);
    if (!st) {
      if (missing === "error") throw new PathError(`${shown([...resolved, part])}: no such file or directory`, 404);
      if (missing === "mkdir") {
        fs.mkdirSync(candidate, { mode: 0o755 });
        if (opts.owner) fs.chownSync(candidate, opts.owner.uid, opts.owner.gid);
      } else absent = true;
      resolved.push(part);
      continue;
    }
    if (st.isSymbolicLink() && (parts.length > 0 || followLast)) {
      if (opts.symlinks === "refuse") throw new PathError(`${shown([...resolved, part])} is a symbolic link`);
      if (++hops > MAX_LINKS) throw new PathError(`${p}: too many levels of symbolic links`);
      const target = fs.readlinkSync(candidate);
      if (target.startsWith("/")) resolved.length = 0;
      parts.unshift(...target.split("/").filter((x) => x && x !== "."));
      continue;
    }
    if (parts.length > 0 && !st.isDirectory()) {
      // Below a file nothing exists; only a caller that must reach it is told so.
      if (missing !== "allow") throw new PathError(`${shown([...resolved, part])}: not a directory`, 400);
      absent = true;
    }
    resolved.push(part);
  }
  return { host: hostOf(resolved), logical: shown(resolved) };
}

/** The host path of `p` inside `root` (see walkInRoot). */
export function resolveInRoot(root: string, p: string, opts: WalkOptions = {}): string {
  return walkInRoot(root, p, opts).host;
}

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}
