// What a qemu sandbox boots: Debian's kernel, a small initramfs that mounts the root, and the base
// root image (the sandbox rootfs of ../rootfs as a read-only ext4, with the agent inside).
//
// Every artefact is built once into stateDir/qemu/, under a name derived from what went into it,
// via a temporary name that is renamed into place when complete (a crash leaves no half artefact
// under the final name). A second call returns at once.
//
//   kernel/<package>/       vmlinuz + lib/modules/<version> (dpkg-deb -x of Debian's kernel package)
//   initramfs-<key>.cpio.gz busybox-static, the modules the boot needs, /init (initramfs-init.sh)
//   base-<key>.img          ext4, ownership back to root (the rootfs is stored shifted for the
//                           namespaces driver's user namespace), node, the agent bundle, the mux
//
// CLI: `tsx packages/sandbox/src/qemu/image.ts` (as root) builds the kernel and the initramfs and
// prints paths (BERTH_STATE_DIR, BERTH_QEMU_KERNEL_PACKAGE: read by the CLI only).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { chmod, cp, lchown, lstat, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { DEFAULT_STATE_DIR, SANDBOX_ID_BASE } from "../rootfs/build.js";

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));

/** Bump when this file changes what ends up in the initramfs or the base image. */
export const QEMU_BUILD_VERSION = 1;

/**
 * What the initramfs loads, in this order (each with its dependencies first): the virtio
 * PCI transport (q35: see docs/sandboxes.md on why not microvm), the block and console devices,
 * crc32c (ext4's checksums) and the root filesystems. Debian builds all of them as modules.
 */
export const BOOT_MODULES = ["virtio_pci", "virtio_blk", "virtio_console", "crc32c_generic", "ext4", "overlay"];

export interface GuestKernel {
  /** Debian's package, e.g. linux-image-6.1.0-57-amd64. */
  pkg: string;
  /** uname -r of the guest, e.g. 6.1.0-57-amd64. */
  version: string;
  vmlinuz: string;
  modulesDir: string;
}

type Progress = (line: string) => void;

/**
 * Debian's current amd64 kernel (what linux-image-amd64 depends on; `kernelPackage` picks another),
 * fetched with `apt-get download` and unpacked with `dpkg-deb -x`: never installed on the host.
 */
export async function ensureGuestKernel(stateDir = DEFAULT_STATE_DIR, onProgress: Progress = () => {}, kernelPackage?: string): Promise<GuestKernel> {
  const root = join(stateDir, "qemu", "kernel");
  await mkdir(root, { recursive: true });
  let pkg = kernelPackage;
  if (!pkg) {
    // Offline, a kernel fetched earlier will do.
    const cached = (await readdir(root)).filter((n) => n.startsWith("linux-image-") && existsSync(join(root, n, "complete"))).sort();
    const resolved = await run("apt-cache", ["depends", "linux-image-amd64"]).then(
      (r) => /Depends:\s*(linux-image-[0-9][^\s]*)/.exec(r.stdout)?.[1],
      () => undefined,
    );
    pkg = resolved ?? cached.at(-1);
    if (!pkg) throw new Error("qemu: no guest kernel: `apt-cache depends linux-image-amd64` names none (run `apt-get update`) and none was fetched before");
  }
  if (!/^linux-image-[0-9][a-z0-9.+-]*$/.test(pkg)) throw new Error(`qemu: ${JSON.stringify(pkg)} is not a Debian kernel package name`);
  const dir = join(root, pkg);
  if (!existsSync(join(dir, "complete"))) {
    const tmp = join(root, `.tmp-${pkg}-${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    onProgress(`qemu: fetching ${pkg} (apt-get download)`);
    try {
      await run("apt-get", ["download", pkg], { cwd: tmp, maxBuffer: 16 << 20 });
      const deb = (await readdir(tmp)).find((n) => n.endsWith(".deb"));
      if (!deb) throw new Error(`apt-get download ${pkg} left no .deb`);
      await run("dpkg-deb", ["-x", join(tmp, deb), join(tmp, "x")]);
      await rm(join(tmp, deb));
      await writeFile(join(tmp, "x", "complete"), `${pkg}\n`);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw new Error(`qemu: could not fetch the guest kernel ${pkg}: ${(err as Error).message}`);
    }
    await rename(join(tmp, "x"), dir).catch(async (err) => {
      if (!existsSync(join(dir, "complete"))) throw err;
    });
    await rm(tmp, { recursive: true, force: true });
  }
  const version = (await readdir(join(dir, "lib", "modules")))[0];
  if (!version) throw new Error(`qemu: ${pkg} has no modules`);
  return { pkg, version, vmlinuz: join(dir, "boot", `vmlinuz-${version}`), modulesDir: join(dir, "lib", "modules", version) };
}

/** Module name as the kernel spells it (dashes and underscores are the same). */
function modName(file: string): string {
  return file.replace(/\.ko$/, "").replace(/-/g, "_");
}

/** Every .ko under modulesDir by name. */
async function moduleIndex(modulesDir: string): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  const walk = async (rel: string) => {
    for (const e of await readdir(join(modulesDir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.name.endsWith(".ko")) index.set(modName(e.name), r);
    }
  };
  await walk("kernel");
  return index;
}

/** The `depends=` of a module's .modinfo (Debian ships them uncompressed; no depmod needed). */
function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf("\0depends=");
  if (at < 0) return [];
  const end = ko.indexOf(0, at + 1);
  const list = ko.subarray(at + "\0depends=".length, end).toString("latin1");
  return list ? list.split(",").map(modName) : [];
}

/** The modules to insmod for `wanted`, dependencies first, as paths relative to modulesDir. */
export async function moduleLoadOrder(modulesDir: string, wanted: string[]): Promise<string[]> {
  const index = await moduleIndex(modulesDir);
  const builtin = new Set(
    readFileSync(join(modulesDir, "modules.builtin"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => modName(l.split("/").pop()!)),
  );
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name) || builtin.has(name)) return;
    seen.add(name);
    const rel = index.get(name);
    if (!rel) throw new Error(`qemu: the guest kernel has no module ${name}`);
    for (const dep of moduleDepends(readFileSync(join(modulesDir, rel)))) visit(dep);
    order.push(rel);
  };
  for (const name of wanted) visit(name);
  return order;
}

/** One entry of a newc cpio archive (what the kernel unpacks as an initramfs). */
export interface CpioEntry {
  path: string;
  mode: number; // with the file type bits
  data?: Buffer; // regular files and symlink targets
}

/** A newc ("070701") cpio archive; ownership root, mtime 0, so the same input gives the same bytes. */
export function cpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const header = (name: string, mode: number, size: number, nlink: number) => {
    const fields = [ino++, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, Buffer.byteLength(name) + 1, 0];
    const h = Buffer.from("070701" + fields.map((f) => f.toString(16).padStart(8, "0")).join("") + name + "\0", "latin1");
    parts.push(h, pad(h.length));
  };
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    header(e.path, e.mode, data.length, (e.mode & 0o170000) === 0o040000 ? 2 : 1);
    parts.push(data, pad(data.length));
  }
  header("TRAILER!!!", 0, 0, 1);
  return Buffer.concat(parts);
}

const DIR = 0o040755;
const FILE = 0o100644;
const EXEC = 0o100755;
const LINK = 0o120777;

/**
 * The initramfs every guest boots: busybox-static, the boot modules and /init. Per-guest values
 * (hostname, token, limits) come in a second, tiny archive appended to this one (guestConfigCpio).
 */
export async function ensureInitramfs(kernel: GuestKernel, stateDir = DEFAULT_STATE_DIR, busybox = "/bin/busybox"): Promise<string> {
  const init = await readFile(join(HERE, "initramfs-init.sh"));
  const bb = await readFile(busybox).catch(() => {
    throw new Error(`qemu: no ${busybox} for the initramfs (install busybox-static)`);
  });
  const modules = await moduleLoadOrder(kernel.modulesDir, BOOT_MODULES);
  const key = createHash("sha256")
    .update(JSON.stringify({ v: QEMU_BUILD_VERSION, pkg: kernel.pkg, modules }))
    .update(init)
    .update(bb)
    .digest("hex")
    .slice(0, 16);
  const out = join(stateDir, "qemu", `initramfs-${key}.cpio.gz`);
  if (existsSync(out)) return out;
  const entries: CpioEntry[] = [];
  const dirs = new Set<string>();
  const addDir = (p: string) => {
    const parts = p.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (!dirs.has(d)) {
        dirs.add(d);
        entries.push({ path: d, mode: DIR });
      }
    }
  };
  for (const d of ["bin", "dev", "proc", "sys", "newroot", "lower", "disk", "berth", "modules"]) addDir(d);
  entries.push({ path: "bin/busybox", mode: EXEC, data: bb });
  entries.push({ path: "bin/sh", mode: LINK, data: Buffer.from("busybox") });
  entries.push({ path: "init", mode: EXEC, data: init });
  const names: string[] = [];
  for (const rel of modules) {
    const name = rel.split("/").pop()!;
    entries.push({ path: `modules/${name}`, mode: FILE, data: await readFile(join(kernel.modulesDir, rel)) });
    names.push(name);
  }
  entries.push({ path: "modules/order", mode: FILE, data: Buffer.from(names.join("\n") + "\n") });
  const tmp = `${out}.tmp-${process.pid}`;
  await writeFile(tmp, gzipSync(cpioNewc(entries)));
  await rename(tmp, out);
  return out;
}

/** The per-guest archive appended to the initramfs: /berth/<name> files (0600). */
export function guestConfigCpio(files: Record<string, string>): Buffer {
  return gzipSync(
    cpioNewc([
      { path: "berth", mode: 0o040700 },
      ...Object.entries(files).map(([name, text]) => ({ path: `berth/${name}`, mode: 0o100600, data: Buffer.from(text) })),
    ]),
  );
}

export interface BaseImageInput {
  /** The sandbox rootfs (../rootfs), stored with ownership shifted by SANDBOX_ID_BASE. */
  rootfs: string;
  /** The agent directory (what the namespaces driver binds at /opt/berth). */
  agentDir: string;
  /** Files to add under /opt/berth/vm (the mux, the guest's init), name → host path. */
  vmFiles: Record<string, string>;
  /** The node binary for /usr/bin/node (dynamically linked against the same Debian release). */
  node?: string;
  /** Host files copied in, guest path → host path (the static docker CLI and busybox the namespaces driver binds). */
  hostFiles?: Record<string, string>;
  /** The guest kernel: its modules (MODULE_TREES) go into /lib/modules, with busybox's modprobe. */
  kernel?: GuestKernel;
}

/**
 * The parts of the kernel's modules a guest gets in /lib/modules (the rest is hardware a VM does
 * not have): file systems, networking with netfilter (the engine's bridge, veth and NAT; the labs'
 * namespaces and iptables), their libraries and crypto, and the virtual network devices.
 */
export const MODULE_TREES = ["kernel/fs", "kernel/net", "kernel/lib", "kernel/crypto", "kernel/arch", "kernel/drivers/net/*.ko", "kernel/drivers/net/ipvlan", "kernel/drivers/net/vxlan", "kernel/drivers/net/bonding", "kernel/drivers/net/team", "kernel/drivers/net/wireguard"];
/** Linked to busybox in the guest's /usr/sbin when the rootfs has none (it has no kmod). */
const MODULE_TOOLS = ["modprobe", "insmod", "rmmod", "lsmod", "modinfo", "depmod"];

/**
 * The read-only root every guest of this version shares: a copy of the rootfs with its ownership
 * shifted back (the guest has no user namespace around it: its root is root), plus node, the agent
 * and the guest's own programs, made into an ext4 with `mkfs.ext4 -d`.
 */
export async function ensureBaseImage(input: BaseImageInput, stateDir = DEFAULT_STATE_DIR, onProgress: Progress = () => {}): Promise<string> {
  const node = input.node ?? process.execPath;
  const h = createHash("sha256").update(JSON.stringify({ v: QEMU_BUILD_VERSION, rootfs: input.rootfs, agentDir: input.agentDir, base: SANDBOX_ID_BASE }));
  const st = statSync(node);
  h.update(`${node}:${st.size}:${st.mtimeMs}`);
  for (const [name, path] of Object.entries(input.vmFiles).sort()) h.update(name).update(await readFile(path));
  for (const [guest, path] of Object.entries(input.hostFiles ?? {}).sort()) h.update(guest).update(`${statSync(path).size}:${statSync(path).mtimeMs}`);
  if (input.kernel) h.update(JSON.stringify({ kernel: input.kernel.pkg, trees: MODULE_TREES }));
  const key = h.digest("hex").slice(0, 16);
  const out = join(stateDir, "qemu", `base-${key}.img`);
  if (existsSync(out)) return out;
  const work = join(stateDir, "qemu", `.tmp-base-${key}-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  const started = Date.now();
  onProgress(`qemu: building the guest's root image from ${input.rootfs}`);
  try {
    const tree = join(work, "tree");
    await mkdir(work, { recursive: true });
    await run("cp", ["-a", input.rootfs, tree]);
    await unshiftOwnership(tree, SANDBOX_ID_BASE);
    await cp(node, join(tree, "usr", "bin", "node"));
    await chmod(join(tree, "usr", "bin", "node"), 0o755);
    await rm(join(tree, "opt", "berth"), { recursive: true, force: true });
    await run("cp", ["-a", input.agentDir, join(tree, "opt", "berth")]);
    await lchownTree(join(tree, "opt", "berth"), 0, 0);
    await mkdir(join(tree, "opt", "berth", "vm"), { recursive: true });
    for (const [name, path] of Object.entries(input.vmFiles)) {
      await cp(path, join(tree, "opt", "berth", "vm", name));
      await chmod(join(tree, "opt", "berth", "vm", name), 0o755);
    }
    for (const [guest, path] of Object.entries(input.hostFiles ?? {})) {
      if (!guest.startsWith("/") || guest.includes("..")) throw new Error(`qemu: bad guest path ${guest}`);
      await mkdir(dirname(join(tree, guest)), { recursive: true });
      await rm(join(tree, guest), { force: true });
      await cp(path, join(tree, guest));
      await chmod(join(tree, guest), 0o755);
    }
    if (input.kernel) await addModules(tree, input.kernel);
    // Mount points the guest's init uses.
    for (const d of ["run/berth", "run/berth-vm", "sys/fs/cgroup"]) await mkdir(join(tree, d), { recursive: true });
    const { stdout } = await run("du", ["-sb", tree]);
    const bytes = Number(stdout.split(/\s/)[0]);
    // Room for ext4's own structures; the image is sparse and read-only in every guest.
    const size = Math.ceil((bytes * 1.25 + 64 * 1024 * 1024) / (1024 * 1024));
    await run("mkfs.ext4", ["-q", "-F", "-L", "berth-base", "-E", "root_owner=0:0", "-d", tree, join(work, "base.img"), `${size}M`], { maxBuffer: 16 << 20 });
    await rename(join(work, "base.img"), out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  onProgress(`qemu: root image ready at ${out} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return out;
}

/**
 * The kernel's modules (MODULE_TREES) with modules.dep and modules.alias made by busybox's depmod,
 * and busybox as modprobe: the guest's kernel then loads what it needs on demand (a bridge, veth,
 * nf_tables for iptables), and a learner can modprobe and lsmod.
 */
async function addModules(tree: string, kernel: GuestKernel): Promise<void> {
  const dest = join(tree, "lib", "modules", kernel.version);
  for (const rel of MODULE_TREES) {
    const [dir, pattern] = rel.endsWith("*.ko") ? [dirname(rel), ".ko"] : [rel, undefined];
    await mkdir(join(dest, dir), { recursive: true });
    if (!pattern) {
      if (existsSync(join(kernel.modulesDir, rel))) await cp(join(kernel.modulesDir, rel), join(dest, rel), { recursive: true });
      continue;
    }
    for (const e of await readdir(join(kernel.modulesDir, dir), { withFileTypes: true })) {
      if (e.isFile() && e.name.endsWith(pattern)) await cp(join(kernel.modulesDir, dir, e.name), join(dest, dir, e.name));
    }
  }
  for (const f of ["modules.builtin", "modules.builtin.modinfo", "modules.order"]) {
    if (existsSync(join(kernel.modulesDir, f))) await cp(join(kernel.modulesDir, f), join(dest, f));
  }
  await run("busybox", ["depmod", "-b", tree, kernel.version]);
  for (const tool of MODULE_TOOLS) {
    const path = join(tree, "usr", "sbin", tool);
    if (!existsSync(path)) await symlink("/bin/busybox", path);
  }
}

/** uid/gid base + N → N everywhere (the reverse of rootfs/build.ts's shiftOwnership). */
async function unshiftOwnership(root: string, base: number): Promise<void> {
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path);
    if (st.uid >= base || st.gid >= base) {
      await lchown(path, st.uid >= base ? st.uid - base : st.uid, st.gid >= base ? st.gid - base : st.gid);
      // chown clears setuid/setgid: put them back.
      if (!st.isSymbolicLink() && (st.mode & 0o6000) !== 0) await chmod(path, st.mode & 0o7777);
    }
    if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(root);
}

async function lchownTree(root: string, uid: number, gid: number): Promise<void> {
  const st = await lstat(root);
  await lchown(root, uid, gid);
  if (st.isDirectory()) for (const name of await readdir(root)) await lchownTree(join(root, name), uid, gid);
}

/** Removes initramfs and base images other than the ones named (older builds no guest uses). */
export async function removeUnusedQemuImages(stateDir: string, inUse: Set<string>): Promise<string[]> {
  const dir = join(stateDir, "qemu");
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name);
    if (!/^(base-[0-9a-f]+\.img|initramfs-[0-9a-f]+\.cpio\.gz)$/.test(name) || inUse.has(path)) continue;
    await rm(path, { force: true });
    removed.push(path);
  }
  return removed;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  (async () => {
    const stateDir = process.env.BERTH_STATE_DIR || undefined;
    const kernel = await ensureGuestKernel(stateDir, console.log, process.env.BERTH_QEMU_KERNEL_PACKAGE || undefined);
    console.log(kernel.vmlinuz);
    console.log(await ensureInitramfs(kernel, stateDir));
  })().catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}
