// Every program Berth runs on the host, and the Debian package that brings it: the one list that
// setup (`npm start`, `npm test`), `.ci/run` and the start-up check read. Plain JavaScript with no
// dependencies, because setup reads it before `npm ci` has installed anything.
//
// A program missing here is found by test/repo/host-programs.test.ts, which reads the source for
// every program it spawns. A program missing on the machine stops setup and the orchestrator with
// a message that names its package: no part of Berth carries on without one (a missing `getfattr`
// once made the engine drop opaque directories without a word).
import { accessSync, constants } from "node:fs";
import path from "node:path";

/**
 * @typedef {object} HostProgram
 * @property {string} program  name on PATH, or an absolute path
 * @property {string} pkg      the Debian package that installs it
 * @property {"runtime" | "test"} need  runtime: `npm start` needs it; test: only `npm test` does
 * @property {string} why      what it is for, for the person reading the error
 */

/** @type {HostProgram[]} */
export const HOST_PROGRAMS = [
  // Sandboxes (packages/sandbox) and their root filesystem (packages/sandbox/src/rootfs).
  { program: "runc", pkg: "runc", need: "runtime", why: "makes each learner's sandbox from an OCI config" },
  { program: "linux.uml", pkg: "user-mode-linux", need: "runtime", why: "the uml sandbox driver: each learner's sandbox is a User-mode Linux guest with its own kernel" },
  { program: "mke2fs", pkg: "e2fsprogs", need: "runtime", why: "the uml driver's root disk image, built from the sandbox root filesystem" },
  { program: "setpriv", pkg: "util-linux", need: "runtime", why: "drops the uml driver's guest kernel process to an unprivileged uid without capabilities" },
  // The qemu driver (packages/sandbox/src/qemu) and its guest kernel and images (qemu/image.ts).
  { program: "qemu-system-x86_64", pkg: "qemu-system-x86", need: "runtime", why: "runs each learner's VM with the qemu driver (BERTH_SANDBOX_DRIVER=qemu)" },
  { program: "/bin/sh", pkg: "dash", need: "runtime", why: "the qemu driver puts QEMU in its cgroups before it runs" },
  { program: "apt-cache", pkg: "apt", need: "runtime", why: "the qemu driver finds Debian's current kernel package for its guests" },
  { program: "dpkg-deb", pkg: "dpkg", need: "runtime", why: "unpacks that kernel package (never installed on the host)" },
  { program: "timeout", pkg: "coreutils", need: "runtime", why: "bounds the qemu driver's KVM probe" },
  { program: "socat", pkg: "socat", need: "runtime", why: "the uml driver's relay from a sandbox's agent socket on the host to the agent in the guest" },
  { program: "mmdebstrap", pkg: "mmdebstrap", need: "runtime", why: "builds the sandbox root filesystem and the debian images from Debian's archive" },
  { program: "mount", pkg: "mount", need: "runtime", why: "overlay and bind mounts for sandboxes and containers" },
  { program: "umount", pkg: "mount", need: "runtime", why: "takes those mounts down" },
  { program: "losetup", pkg: "mount", need: "runtime", why: "attaches each sandbox's sized disk image" },
  { program: "mkfs.ext4", pkg: "e2fsprogs", need: "runtime", why: "formats each sandbox's sized disk (its disk quota)" },
  { program: "ip", pkg: "iproute2", need: "runtime", why: "veth pairs, bridges and routes for sandboxes and containers" },
  { program: "iptables", pkg: "iptables", need: "runtime", why: "NAT and the firewall around sandboxes and container networks" },
  { program: "iptables-save", pkg: "iptables", need: "runtime", why: "reads the firewall back to check it is whole" },
  { program: "iptables-restore", pkg: "iptables", need: "runtime", why: "writes firewall rules in one transaction" },
  { program: "nsenter", pkg: "util-linux", need: "runtime", why: "enters a sandbox's namespaces from the host" },
  { program: "unshare", pkg: "util-linux", need: "runtime", why: "new namespaces for tests and tools" },
  { program: "busybox", pkg: "busybox-static", need: "runtime", why: "the engine's busybox image, and a static toolbox lent to sandboxes" },
  { program: "cc", pkg: "gcc", need: "runtime", why: "compiles the engine's shim (shim.c) and the trusted check runner" },
  { program: "ps", pkg: "procps", need: "runtime", why: "`docker top`" },
  { program: "/usr/bin/tini-static", pkg: "tini", need: "runtime", why: "`docker run --init`: the init put in front of a container's command" },
  { program: "tar", pkg: "tar", need: "runtime", why: "mmdebstrap writes the Debian base tarballs with it; tests use it as the reference for the engine's own tar (the engine never runs it)" },
  { program: "cp", pkg: "coreutils", need: "runtime", why: "copies layers and volume contents" },
  { program: "mknod", pkg: "coreutils", need: "runtime", why: "overlayfs whiteouts (0/0 character devices) and device nodes of image layers" },
  { program: "chattr", pkg: "e2fsprogs", need: "runtime", why: "spreads the engine's layer and snapshot directories over ext4's block groups (+T), so unpacking thousands of files stays fast" },
  { program: "mkfifo", pkg: "coreutils", need: "runtime", why: "fifos in archives the engine unpacks (layers, ADD, docker cp)" },
  { program: "gzip", pkg: "gzip", need: "runtime", why: "compressed build contexts and layers" },
  { program: "bzip2", pkg: "bzip2", need: "runtime", why: "bzip2-compressed build contexts" },
  { program: "xz", pkg: "xz-utils", need: "runtime", why: "xz-compressed build contexts" },
  { program: "zstd", pkg: "zstd", need: "runtime", why: "zstd-compressed build contexts" },
  { program: "docker-registry", pkg: "docker-registry", need: "runtime", why: "the lab registry that serves images to sandboxes" },
  { program: "apt-get", pkg: "apt", need: "runtime", why: "setup installs the packages on this list" },
  { program: "dpkg-query", pkg: "dpkg", need: "runtime", why: "setup finds what is installed" },
  { program: "/usr/local/bin/docker", pkg: "(the official static docker CLI; Debian has none)", need: "runtime", why: "the learner's `docker` in every sandbox and the lab image build: it must be statically linked, since a sandbox's libraries are not the host's" },
  // The test suite on top.
  { program: "chromium", pkg: "chromium", need: "test", why: "the browser tests (Playwright drives Debian's Chromium)" },
  { program: "dockerd", pkg: "docker.io", need: "test", why: "the reference Docker engine the engine's differential tests compare against" },
  { program: "/usr/bin/docker", pkg: "docker.io", need: "test", why: "the second docker CLI version the differential tests use" },
  { program: "/usr/lib/postgresql/15/bin/postgres", pkg: "postgresql", need: "test", why: "the production database, tested for real" },
  { program: "/usr/lib/postgresql/15/bin/initdb", pkg: "postgresql", need: "test", why: "makes the test database cluster" },
  { program: "git", pkg: "git", need: "test", why: "the repository checks list the project's files" },
  { program: "pgrep", pkg: "procps", need: "test", why: "tests look for processes" },
  { program: "curl", pkg: "curl", need: "test", why: "benchmarks and tests fetch through Berth as a client would" },
  { program: "bash", pkg: "bash", need: "test", why: "tests run shell snippets" },
  { program: "sh", pkg: "dash", need: "test", why: "tests run shell snippets" },
  { program: "du", pkg: "coreutils", need: "runtime", why: "sizes the qemu guests' root image; tests measure disk use" },
  { program: "grep", pkg: "grep", need: "test", why: "tests search outputs" },
  { program: "cat", pkg: "coreutils", need: "test", why: "tests and benchmarks read files" },
  { program: "sleep", pkg: "coreutils", need: "test", why: "tests start long-running processes" },
  { program: "true", pkg: "coreutils", need: "test", why: "tests start a process that does nothing" },
];

/** Debian packages installed by setup that are not programs: certificates, headers. */
export const EXTRA_PACKAGES = {
  runtime: ["ca-certificates", "libc6-dev", "bsdutils"],
  test: [],
};

/** The Debian packages to install for `need` ("runtime", or "test" for runtime + test). */
export function debianPackages(need) {
  const needs = need === "test" ? ["runtime", "test"] : ["runtime"];
  const pkgs = HOST_PROGRAMS.filter((p) => needs.includes(p.need) && !p.pkg.startsWith("(")).map((p) => p.pkg);
  for (const n of needs) pkgs.push(...EXTRA_PACKAGES[n]);
  return [...new Set(pkgs)].sort();
}

/** Where programs are looked for: the system's directories (root's PATH), then the caller's PATH. */
export function searchDirs(envPath = process.env.PATH ?? "") {
  return [...new Set(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", ...envPath.split(":").filter(Boolean)])];
}

/**
 * The absolute path a program resolves to, or undefined. A program given by absolute path is
 * looked for there, moved under `root` (a test's stand-in for /).
 */
export function findProgram(program, dirs = searchDirs(), root = "/") {
  const candidates = program.startsWith("/") ? [path.join(root, program)] : dirs.map((d) => path.join(d, program));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * Programs of `need` that this machine lacks, each with the message a person needs: what is
 * missing, what it is for, and the package to install.
 */
export function missingPrograms(need, dirs = searchDirs(), root = "/") {
  const needs = need === "test" ? ["runtime", "test"] : ["runtime"];
  return HOST_PROGRAMS.filter((p) => needs.includes(p.need) && !findProgram(p.program, dirs, root)).map(
    (p) =>
      `${p.program} is missing (${p.why}): ${p.pkg.startsWith("(") ? `install ${p.pkg.slice(1, -1)}` : `install Debian's ${p.pkg} (apt-get install ${p.pkg})`}`,
  );
}

/** Throws one error listing every missing program of `need`. */
export function requireHostPrograms(need, dirs, root) {
  const missing = missingPrograms(need, dirs, root);
  if (missing.length) throw new Error(`Berth cannot run without these host programs:\n  - ${missing.join("\n  - ")}`);
}

// `node scripts/host-programs.mjs packages runtime|test` prints the package list (for .ci/run, which
// runs before npm ci); `node scripts/host-programs.mjs check runtime|test` checks the machine.
if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  const [verb, need = "runtime"] = process.argv.slice(2);
  if (verb === "packages") console.log(debianPackages(need).join(" "));
  else if (verb === "check") {
    try {
      requireHostPrograms(need);
    } catch (err) {
      console.error(err.message);
      process.exit(1);
    }
  } else {
    console.error("usage: node scripts/host-programs.mjs packages|check runtime|test");
    process.exit(2);
  }
}
