// The read-only base root filesystem that every sandbox overlays (lowerdir of its overlayfs).
//
// Built once from Debian's archive with mmdebstrap, into a directory named for a hash of what went
// into it (package list + this script's version), so a change of either builds a new base and old
// sandboxes keep the one they were made on. The build goes into a temporary directory that is
// renamed into place only when complete: a crash mid-build leaves a `.tmp-*` directory, never a
// half rootfs under the final name. Later calls find the directory and return at once.
//
// CLI: `tsx packages/sandbox/src/rootfs/build.ts` builds it (state dir: $BERTH_STATE_DIR or
// /var/lib/berth; only this CLI and the programs' config read the variable, the functions take it).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, rename, rm, writeFile, chmod, lstat, lchown } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Bump when this script changes what ends up in the rootfs: it changes the cache key. */
export const ROOTFS_BUILD_VERSION = 3;
/**
 * Sandboxes run in a user namespace whose root is this host uid (and gid); container uid N is host
 * uid SANDBOX_ID_BASE + N. The base is stored already shifted so that it looks root-owned inside
 * the sandbox without an idmapped mount. Part of the cache key: change it and the base is rebuilt.
 */
export const SANDBOX_ID_BASE = 100_000;
export const SANDBOX_ID_COUNT = 65_536;
export const ROOTFS_SUITE = "bookworm";

/** What a learner finds in the sandbox. Lean on purpose: kmod, systemd and docs stay out. */
export const ROOTFS_PACKAGES = [
  "bash",
  "coreutils",
  "procps",
  "iproute2",
  "util-linux",
  "iputils-ping",
  "less",
  "nano",
  "vim-tiny",
  "psmisc",
  "file",
  "curl",
  "ca-certificates",
  // The engine's bridge network and port publishing (NAT) inside the sandbox's network namespace.
  "iptables",
  // The sandbox's PID 1: reaps orphans (node cannot waitpid(-1)) and forwards signals to the agent.
  "tini",
  // getfattr: the engine reads overlayfs's opaque markers with it (docker diff, commit, build),
  // and the copy-on-write lesson shows them (user.overlay.* inside a sandbox).
  "attr",
] as const;

/** Where sandboxes and their images live unless the caller says (entry points read BERTH_STATE_DIR). */
export const DEFAULT_STATE_DIR = "/var/lib/berth";

export interface EnsureRootfsOptions {
  stateDir?: string;
  onProgress?: (line: string) => void;
}

export function rootfsKey(): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ v: ROOTFS_BUILD_VERSION, idBase: SANDBOX_ID_BASE, suite: ROOTFS_SUITE, packages: [...ROOTFS_PACKAGES].sort() }));
  return h.digest("hex").slice(0, 16);
}

/** Where the finished rootfs lives (whether or not it has been built yet). */
export function rootfsPath(stateDir = DEFAULT_STATE_DIR): string {
  return join(stateDir, "rootfs", rootfsKey());
}

/** Returns the path of a complete base rootfs, building it first if needed. Needs root and mmdebstrap. */
export async function ensureBaseRootfs(opts: EnsureRootfsOptions = {}): Promise<string> {
  const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
  const progress = opts.onProgress ?? (() => {});
  const finalDir = rootfsPath(stateDir);
  if (existsSync(join(finalDir, "etc", "berth-rootfs"))) return finalDir;

  const parent = join(stateDir, "rootfs");
  await mkdir(parent, { recursive: true });
  await removeAbandonedBuilds(parent, progress);

  const tmpDir = join(parent, `.tmp-${rootfsKey()}-${process.pid}`);
  await rm(tmpDir, { recursive: true, force: true });
  progress(`rootfs: building Debian ${ROOTFS_SUITE} (minbase + ${ROOTFS_PACKAGES.length} packages) into ${tmpDir}`);
  const started = Date.now();
  try {
    await runMmdebstrap(tmpDir, progress);
    await configure(tmpDir);
    progress(`rootfs: shifting ownership by ${SANDBOX_ID_BASE} for the sandbox user namespace`);
    await shiftOwnership(tmpDir, SANDBOX_ID_BASE);
  } catch (err) {
    await rm(tmpDir, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
  try {
    await rename(tmpDir, finalDir);
  } catch (err) {
    // Another process finished the same build first: theirs is as good as ours.
    await rm(tmpDir, { recursive: true, force: true });
    if (!existsSync(join(finalDir, "etc", "berth-rootfs"))) throw err;
  }
  progress(`rootfs: ready at ${finalDir} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return finalDir;
}

/** `.tmp-<key>-<pid>` left by a builder that is no longer alive. */
async function removeAbandonedBuilds(parent: string, progress: (line: string) => void): Promise<void> {
  for (const name of await readdir(parent)) {
    const m = /^\.tmp-[0-9a-f]+-(\d+)$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && isAlive(pid)) continue;
    progress(`rootfs: removing abandoned build ${name}`);
    await rm(join(parent, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function runMmdebstrap(target: string, progress: (line: string) => void): Promise<void> {
  const args = [
    "--variant=minbase",
    "--mode=root",
    `--include=${ROOTFS_PACKAGES.join(",")}`,
    "--aptopt=APT::Install-Recommends \"false\"",
    // Documentation and translations are dead weight in a sandbox that lives for an hour.
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    ROOTFS_SUITE,
    target,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn("mmdebstrap", args, { stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    const onData = (buf: Buffer) => {
      for (const line of buf.toString("utf8").split("\n")) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 20) tail.shift();
        progress(`rootfs: ${line}`);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (err) =>
      reject(new Error(`could not run mmdebstrap (${err.message}); install it with: apt-get install mmdebstrap`)),
    );
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`mmdebstrap failed (exit ${code ?? signal}); last lines:\n${tail.join("\n")}`));
    });
  });
}

const BASHRC = `# Berth sandbox shell
[ -z "$PS1" ] && return
HISTCONTROL=ignoreboth
shopt -s checkwinsize histappend
PS1='\\[\\e[1;32m\\]\\u@\\h\\[\\e[0m\\]:\\[\\e[1;34m\\]\\w\\[\\e[0m\\]\\$ '
alias ls='ls --color=auto'
alias ll='ls -la'
alias grep='grep --color=auto'
export EDITOR=nano
`;

/** Files every sandbox starts from. Per-sandbox values (hostname) are written by the driver. */
async function configure(root: string): Promise<void> {
  await writeFile(join(root, "etc", "hostname"), "berth\n");
  await writeFile(join(root, "etc", "hosts"), hostsFile("berth"));
  await writeFile(join(root, "root", ".bashrc"), BASHRC);
  await writeFile(join(root, "root", ".profile"), "[ -f ~/.bashrc ] && . ~/.bashrc\n");
  await writeFile(join(root, "etc", "resolv.conf"), "");
  // Mount points for what the driver binds in: the host's node, the agent bundle, the agent socket.
  await mkdir(join(root, "opt", "berth"), { recursive: true });
  await mkdir(join(root, "run", "berth"), { recursive: true });
  if (!existsSync(join(root, "usr", "bin", "node"))) {
    await writeFile(join(root, "usr", "bin", "node"), "");
    await chmod(join(root, "usr", "bin", "node"), 0o755);
  }
  // Written last: its presence is what "this rootfs is complete" means.
  await writeFile(
    join(root, "etc", "berth-rootfs"),
    JSON.stringify({ version: ROOTFS_BUILD_VERSION, suite: ROOTFS_SUITE, packages: ROOTFS_PACKAGES, builtAt: new Date().toISOString() }, null, 2) + "\n",
  );
}

/**
 * uid/gid N → base + N for every file, like an idmapped mount but done once. chown clears the
 * setuid/setgid bits, so they are put back afterwards. (File capabilities are dropped by chown too;
 * root in the sandbox does not need them.)
 */
export async function shiftOwnership(root: string, base: number): Promise<void> {
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path);
    if (st.uid >= base) return; // already shifted (never happens on a fresh build)
    await lchown(path, st.uid + base, st.gid + base);
    if (!st.isSymbolicLink() && (st.mode & 0o6000) !== 0) await chmod(path, st.mode & 0o7777);
    if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(root);
}

export function hostsFile(hostname: string): string {
  return `127.0.0.1\tlocalhost\n127.0.1.1\t${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`;
}

/**
 * Removes base rootfs directories other than the current one that no overlay still uses as its
 * lowerdir (a running or stopped sandbox keeps its overlay mounted). Call after ensureBaseRootfs.
 */
export async function removeUnusedRootfs(stateDir = DEFAULT_STATE_DIR): Promise<string[]> {
  const current = rootfsPath(stateDir);
  const parent = join(stateDir, "rootfs");
  const mounts = readFileSync("/proc/self/mounts", "utf8");
  const removed: string[] = [];
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const dir = join(parent, name);
    if (dir === current || name.startsWith(".tmp-")) continue;
    if (mounts.includes(`lowerdir=${dir},`) || mounts.includes(`lowerdir=${dir}:`)) continue;
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensureBaseRootfs({ stateDir: process.env.BERTH_STATE_DIR || undefined, onProgress: (line) => console.log(line) }).then(
    (dir) => console.log(dir),
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
