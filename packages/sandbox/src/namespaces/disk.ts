// A sandbox's own disk: one sparse file per sandbox, formatted ext4 and loop-mounted. It holds
// everything a learner writes that would otherwise land on the host's disk: the overlay's upper
// and work dirs (the root filesystem's changes) and data/ (bound at /var/lib/berth: the engine's
// images and containers). Its size is the sandbox's disk limit, so a write past it fails with
// ENOSPC inside and the host's disk grows by at most that much; the file is sparse, so an idle
// sandbox costs a few MiB whatever its limit.
//
//   <sandbox dir>/disk.img   the file (host root only, 0600)
//   <sandbox dir>/disk/      its mount point: upper/ work/ data/ (and ext4's lost+found)
//
// Lifecycle: createSandboxDisk() in create(); the mount outlives the process that made it (it is
// in the host's mount table, like the overlay), and remountSandboxDisk() puts it back after
// something took it away; destroy() unmounts it with the sandbox's other mounts. `mount -o loop`
// sets the loop device to detach itself on the last unmount, so nothing is left in `losetup -a`.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, open, stat, statfs } from "node:fs/promises";
import { join } from "node:path";
import { runHostCommand } from "./host-command.js";

export const DISK_IMAGE = "disk.img";
export const DISK_MOUNT = "disk";
/** Smaller than this and ext4's own metadata (journal, inode tables) leaves the learner little. */
export const MIN_DISK_BYTES = 64 * 1024 * 1024;

/** Where the sandbox's disk is mounted (upper/, work/ and data/ are in it). */
export function sandboxDiskDir(sandboxDir: string): string {
  return join(sandboxDir, DISK_MOUNT);
}

/** A missing mkfs.ext4 or losetup names the Debian package that brings it. */
function hostTool(err: unknown, cmd: string, pkg: string): Error {
  if ((err as NodeJS.ErrnoException).code === "ENOENT") return new Error(`${cmd} is not installed: the sandboxes' disks need it (Debian: apt-get install ${pkg})`);
  return err as Error;
}

/**
 * Makes the sandbox's disk: a sparse file of `bytes`, ext4 on it, mounted at <dir>/disk. Returns
 * the mount point. -m 0: no blocks reserved for root (the learner is the only user); lazy init:
 * mkfs writes only the metadata it must, so the file stays sparse and mkfs takes milliseconds.
 */
export async function createSandboxDisk(sandboxDir: string, bytes: number): Promise<string> {
  if (!(Number.isInteger(bytes) && bytes >= MIN_DISK_BYTES)) throw new Error(`invalid disk size ${bytes}: an integer number of bytes, at least ${MIN_DISK_BYTES / 1024 / 1024} MiB`);
  const image = join(sandboxDir, DISK_IMAGE);
  const fh = await open(image, "wx", 0o600);
  try {
    await fh.truncate(bytes);
  } finally {
    await fh.close();
  }
  await runHostCommand("mkfs.ext4", ["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", image]).catch((err) => {
    throw hostTool(err, "mkfs.ext4", "e2fsprogs");
  });
  const mountPoint = sandboxDiskDir(sandboxDir);
  await mkdir(mountPoint);
  await mountImage(image, mountPoint);
  return mountPoint;
}

/**
 * nodev: a device node on it would open nothing anyway (the device cgroup), but say so twice.
 * noinit_itable: no background zeroing of the inode tables mkfs left uninitialised (ext4lazyinit
 * would write tens of MiB into every sparse file, and the I/O, for zeros the fresh file reads as).
 */
const MOUNT_OPTIONS = "nodev,noinit_itable";

async function mountImage(image: string, mountPoint: string): Promise<void> {
  await runHostCommand("mount", ["-t", "ext4", "-o", `loop,${MOUNT_OPTIONS}`, image, mountPoint]);
}

/** Whether the sandbox's disk is mounted where it belongs (a different device than its parent). */
export async function sandboxDiskMounted(sandboxDir: string): Promise<boolean> {
  const mountPoint = sandboxDiskDir(sandboxDir);
  try {
    const [inner, outer] = await Promise.all([stat(mountPoint), stat(sandboxDir)]);
    return inner.dev !== outer.dev;
  } catch {
    return false;
  }
}

/** The loop devices that hold a file now (`losetup -j`): empty once the disk is unmounted. */
export function loopDevicesOf(image: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile("losetup", ["-j", image], (err, stdout) => {
      if (err) return reject(hostTool(err, "losetup", "mount"));
      resolve(stdout.split("\n").map((l) => /^(\/dev\/loop\d+):/.exec(l)?.[1]).filter((d): d is string => !!d));
    });
  });
}

/**
 * After an orchestrator restart the mount is normally still there. If it is not (someone unmounted
 * it on the host), it is mounted again: through the loop device that still holds the file when the
 * sandbox's overlay keeps the filesystem alive (the same filesystem, never a second mount of one
 * ext4 through two devices, which would corrupt it), else from the file. Returns whether it acted.
 */
export async function remountSandboxDisk(sandboxDir: string): Promise<boolean> {
  const image = join(sandboxDir, DISK_IMAGE);
  if (!existsSync(image) || (await sandboxDiskMounted(sandboxDir))) return false;
  const mountPoint = sandboxDiskDir(sandboxDir);
  await mkdir(mountPoint, { recursive: true });
  const [held] = await loopDevicesOf(image);
  if (held) await runHostCommand("mount", ["-t", "ext4", "-o", MOUNT_OPTIONS, held, mountPoint]);
  else await mountImage(image, mountPoint);
  return true;
}

/** Used and total bytes of the sandbox's disk, as the learner's `df` counts them; undefined when it is not mounted. */
export async function sandboxDiskUsage(sandboxDir: string): Promise<{ usedBytes: number; sizeBytes: number } | undefined> {
  if (!(await sandboxDiskMounted(sandboxDir))) return undefined;
  const s = await statfs(sandboxDiskDir(sandboxDir));
  return { usedBytes: (s.blocks - s.bfree) * s.bsize, sizeBytes: s.blocks * s.bsize };
}

/** Bytes the image really takes on the host's disk (it is sparse). */
export async function sandboxDiskHostBytes(sandboxDir: string): Promise<number> {
  const s = await stat(join(sandboxDir, DISK_IMAGE));
  return s.blocks * 512;
}
