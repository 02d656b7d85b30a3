// The uml driver's root disk: one ext4 image per content, shared read-only by every guest, each of
// which writes to a copy-on-write file of its own (ubd's COW: `ubd0=<cow>,<image>`).
//
// Why an image and not hostfs over a host overlay: hostfs shows the guest the host's owners (the
// base rootfs is stored shifted to uid 100000), has no xattrs (the engine's overlayfs inside needs
// them), and lets root in the guest mount any host path the guest process can read. A block device
// has real owners, xattrs, and shows the guest nothing of the host. The COW file is created empty
// by the guest kernel at first boot (sparse, a few MB): a new sandbox costs no copy.
//
// Contents: the sandbox base rootfs (the same packages as the namespaces driver), ownership shifted
// back to 0, plus what the namespaces driver binds in from the host: the agent bundle at /opt/berth,
// node, the static docker CLI and busybox, the guest kernel's modules (busybox modprobe loads them),
// debian:bookworm's shared image store at /opt/berth-images (~180 MB, shared by every guest through
// the one image) and the guest's init (guest-init.ts). Built in a temporary directory renamed into place when
// complete, keyed by a hash of all of it: a change builds a new image, old guests keep theirs.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { chmod, cp, lchown, lstat, mkdir, readdir, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { runHostCommand } from "../namespaces/host-command.js";
import type { HostTools } from "../namespaces/host-tools.js";
import { GUEST_INIT, GUEST_INIT_PATH, GUEST_INIT_VERSION, GUEST_SHARED_IMAGES } from "./guest-init.js";

/** Debian's user-mode-linux package: the guest kernel and its modules. */
export const UML_KERNEL = "/usr/bin/linux.uml";
export const UML_MODULES_DIR = "/usr/lib/uml/modules";
/** Free space in the root image: what a guest may write outside /var/lib/berth (its COW file's bound). */
const ROOT_FREE_BYTES = 1024 * 1024 * 1024;

export interface UmlImageInputs {
  stateDir: string;
  baseRootfs: string;
  /** uid/gid the base rootfs is stored shifted by (SANDBOX_ID_BASE). */
  idBase: number;
  agentDir: string;
  hostTools: HostTools;
  /** debian:bookworm's shared store (namespaces/shared-images.ts), copied to /opt/berth-images. */
  sharedImages?: string;
  nodeBinary?: string;
  onProgress?: (line: string) => void;
}

/** The guest kernel's release (its modules directory name). */
export function umlKernelRelease(): string {
  if (!existsSync(UML_KERNEL)) throw new Error(`${UML_KERNEL} is missing: the uml driver needs Debian's user-mode-linux (apt-get install user-mode-linux)`);
  const releases = existsSync(UML_MODULES_DIR) ? readdirSync(UML_MODULES_DIR) : [];
  if (releases.length !== 1) throw new Error(`expected one kernel release under ${UML_MODULES_DIR}, found ${releases.length ? releases.join(", ") : "none"}`);
  return releases[0]!;
}

function stamp(path: string): string {
  const st = statSync(path);
  return `${path}:${st.size}:${st.mtimeMs}`;
}

export function umlImageKey(i: UmlImageInputs, release: string): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ v: GUEST_INIT_VERSION, base: basename(i.baseRootfs), agent: basename(i.agentDir), release, kernel: stamp(UML_KERNEL), images: i.sharedImages ? basename(i.sharedImages) : null }));
  h.update(GUEST_INIT);
  for (const p of [i.nodeBinary ?? "/usr/bin/node", i.hostTools.dockerCli, i.hostTools.busybox]) if (p) h.update(stamp(p));
  return h.digest("hex").slice(0, 16);
}

/** Returns the path of the root image for these inputs, building it first if needed (~15 s). */
export async function ensureUmlRootImage(i: UmlImageInputs): Promise<string> {
  const release = umlKernelRelease();
  const dir = join(i.stateDir, "uml", umlImageKey(i, release));
  const image = join(dir, "root.img");
  if (existsSync(image)) return image;
  const progress = i.onProgress ?? (() => {});
  progress("sandbox (uml): building the guest root image (once)");
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  const stage = join(tmp, "stage");
  await mkdir(tmp, { recursive: true });
  try {
    await runHostCommand("cp", ["-a", i.baseRootfs, stage]);
    // (shifted like the base rootfs: unshifted with it)
    if (i.sharedImages) {
      await mkdir(join(stage, GUEST_SHARED_IMAGES.slice(1)), { recursive: true });
      await runHostCommand("cp", ["-a", `${i.sharedImages}/.`, join(stage, GUEST_SHARED_IMAGES.slice(1))]);
    }
    let used = await unshift(stage, i.idBase);
    await cp(i.agentDir, join(stage, "opt", "berth"), { recursive: true });
    await cp(i.nodeBinary ?? "/usr/bin/node", join(stage, "usr", "bin", "node"));
    if (i.hostTools.dockerCli) await cp(i.hostTools.dockerCli, join(stage, "usr", "local", "bin", "docker"));
    if (i.hostTools.busybox) {
      await cp(i.hostTools.busybox, join(stage, "usr", "bin", "busybox"));
      // The rootfs has no kmod: busybox's modprobe serves both the learner and the kernel's
      // on-demand loading (/proc/sys/kernel/modprobe).
      for (const tool of ["modprobe", "insmod", "rmmod", "lsmod"]) {
        const link = join(stage, "usr", "sbin", tool);
        if (!existsSync(link)) await symlink("../bin/busybox", link);
      }
    }
    // This kernel has no nf_tables for IPv4 (NF_TABLES_IPV4 is off): iptables must be the legacy
    // one (x_tables), which the engine's bridge networks and port publishing then use.
    for (const tool of ["iptables", "iptables-restore", "iptables-save", "ip6tables", "ip6tables-restore", "ip6tables-save"]) {
      const alt = join(stage, "etc", "alternatives", tool);
      const legacy = `/usr/sbin/${tool.replace(/^(ip6?tables)/, "$1-legacy")}`;
      if (existsSync(alt) || existsSync(join(stage, legacy.slice(1)))) {
        await rm(alt, { force: true });
        await symlink(legacy, alt);
      }
    }
    await mkdir(join(stage, "usr", "lib", "modules"), { recursive: true });
    await runHostCommand("cp", ["-a", join(UML_MODULES_DIR, release), join(stage, "usr", "lib", "modules", release)]);
    await writeFile(join(stage, GUEST_INIT_PATH.slice(1)), GUEST_INIT, { mode: 0o755 });
    await writeFile(join(stage, "etc", "berth-uml"), `guest root image for Berth's uml driver (kernel ${release})\n`);
    used += 384 * 1024 * 1024; // what was added since: agent, node, tools, modules (generous)
    const size = Math.ceil((used * 1.1 + ROOT_FREE_BYTES) / (1024 * 1024));
    await runHostCommand("mke2fs", ["-q", "-t", "ext4", "-L", "berth-root", "-d", stage, "-E", "root_owner=0:0", join(tmp, "root.img"), `${size}M`]);
    await rm(stage, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (!existsSync(image)) throw err;
  }
  progress(`sandbox (uml): root image ${image}`);
  return image;
}

/**
 * uid/gid base + N → N (the reverse of rootfs/build.ts's shift); chown clears setuid bits: put back.
 * Returns the bytes of the files it saw (for the image size).
 */
async function unshift(root: string, base: number): Promise<number> {
  let bytes = 0;
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path);
    bytes += st.size + 4096;
    if (st.uid >= base || st.gid >= base) {
      await lchown(path, st.uid >= base ? st.uid - base : st.uid, st.gid >= base ? st.gid - base : st.gid);
      if (!st.isSymbolicLink() && (st.mode & 0o6000) !== 0) await chmod(path, st.mode & 0o7777);
    }
    if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(root);
  return bytes;
}

/**
 * Removes root images no guest uses (named in a sandbox's meta.json) other than the current one.
 * An hour's grace covers another process that built one and is creating its first guest on it.
 */
export async function removeUnusedUmlImages(stateDir: string, inUse: Set<string>): Promise<void> {
  const root = join(stateDir, "uml");
  const hourAgo = Date.now() - 60 * 60 * 1000;
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const dir = join(root, name);
    if (name.includes(".tmp-") || inUse.has(join(dir, "root.img"))) continue;
    if (((await stat(dir).catch(() => undefined))?.mtimeMs ?? 0) > hourAgo) continue;
    await rm(dir, { recursive: true, force: true });
  }
}
