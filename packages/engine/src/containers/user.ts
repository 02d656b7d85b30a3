/**
 * Who a container's process runs as: `-u name`, `-u uid`, `-u uid:gid`, `-u name:group`, looked up
 * in the container's own /etc/passwd and /etc/group (never the host's), as runc does.
 */
import fs from "node:fs";
import path from "node:path";
import { EngineError } from "../errors";

/**
 * Where the container's files are read from: its root directory, or a reader of paths relative to
 * it (a container not mounted yet: its layers, snapshots/overlay.ts) giving null for a missing file.
 */
export type RootFiles = string | ((rel: string) => string | null);

/** `-u name`, `-u uid`, `-u uid:gid`, `-u name:group`, looked up in the container's own files. */
export function resolveUser(rootfs: RootFiles, spec: string): { uid: number; gid: number; groups: number[]; home: string } {
  if (!spec) spec = "0";
  const [u, g] = spec.split(":");
  const passwd = readColonFile(rootfs, "etc/passwd");
  const groupFile = readColonFile(rootfs, "etc/group");
  let uid: number, gid: number | undefined;
  let userName: string | undefined;
  let home = "/";
  if (/^\d+$/.test(u!)) {
    uid = Number(u);
    const entry = passwd.find((p) => Number(p[2]) === uid);
    if (entry) {
      gid = Number(entry[3]);
      userName = entry[0];
      home = entry[5] || "/";
    }
  } else {
    const entry = passwd.find((p) => p[0] === u);
    if (!entry) throw new EngineError(400, `unable to find user ${u}: no matching entries in passwd file`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
    userName = entry[0];
    home = entry[5] || "/";
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const entry = groupFile.find((x) => x[0] === g);
      if (!entry) throw new EngineError(400, `unable to find group ${g}: no matching entries in group file`);
      gid = Number(entry[2]);
    }
  }
  // Like runc: the primary group is also a supplementary one, plus every group naming the user.
  const member = userName ? groupFile.filter((x) => (x[3] ?? "").split(",").includes(userName!)).map((x) => Number(x[2])) : [];
  const groups = [...new Set([gid ?? 0, ...member])];
  return { uid, gid: gid ?? 0, groups, home: uid === 0 && home === "/" ? "/root" : home };
}

function readColonFile(root: RootFiles, rel: string): string[][] {
  try {
    const text = typeof root === "string" ? fs.readFileSync(path.join(root, rel), "utf8") : root(rel);
    return (text ?? "").split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));
  } catch {
    return [];
  }
}

/** --group-add: group names or numbers, names looked up in the container's /etc/group. */
export function resolveGroups(rootfs: RootFiles, names: string[]): number[] {
  if (!names.length) return [];
  const groupFile = readColonFile(rootfs, "etc/group");
  return names.map((g) => {
    if (/^\d+$/.test(g)) return Number(g);
    const entry = groupFile.find((x) => x[0] === g);
    if (!entry) throw new EngineError(400, `Unable to find group ${g}: no matching entries in group file`);
    return Number(entry[2]);
  });
}
