// The lab images: built offline (Debian's packages and archive only) by Berth's own engine and
// builder from the Dockerfiles next to this file, and pushed to the registry Berth serves to
// sandboxes (@berth/registry). `npm start` and `npm test` run it as a setup step.
//
//   tsx infra/images/build.ts [--state-dir DIR] [--force] [--no-push] [--only DIR ...]
//
// What happens, in order:
//   1. A lock (state/image-builder/lock): two setups at once wait for each other.
//   2. A key per image: this script's BUILD_VERSION, the builder's source, the image's directory,
//      what build.ts puts in its context (the host's busybox, the mmdebstrap options) and its
//      parent's key. An image whose key matches its stamp and whose every tag the registry still
//      holds is skipped: a warm run starts the registry, asks it, and stops (about a second).
//   3. Otherwise our engine starts standalone (root state/image-builder/engine, its own socket),
//      the real docker CLI builds each image with the legacy builder (DOCKER_BUILDKIT=0) in
//      dependency order and pushes every tag to 127.0.0.1:<port>/<repository>:<tag>.
//   4. A stamp per image is written after its push; a run that dies half way redoes only what it
//      had not stamped (the builder's cache makes the redone builds quick).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startEngine, makeBusyboxRootfs, type Engine } from "@berth/engine";
import { startRegistry, type Registry } from "@berth/registry";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "../..");

/** Bump when this script changes what goes into an image: every key changes, everything rebuilds. */
export const BUILD_VERSION = 1;
/** The docker CLI that drives the build: the static 28.x sandboxes get, else Debian's docker.io. */
export const DOCKER_CLI = ["/usr/local/bin/docker", "/usr/bin/docker"].find((p) => fs.existsSync(p)) ?? "docker";

/** How build.ts fills a build context beyond the image's own directory. */
type Prepare = "busybox-rootfs" | "debian-minbase" | "debian-slim";

export interface LabImage {
  /** Directory under infra/images. */
  dir: string;
  /** Repository in the registry: `library/x` answers `docker pull x`; Berth's own are `berth/x`. */
  repository: string;
  tags: string[];
  prepare?: Prepare;
}

/**
 * Every lab image, parents before children (checked against each Dockerfile's FROM by
 * `buildOrder`). Tags follow Debian bookworm's package versions.
 */
export const LAB_IMAGES: LabImage[] = [
  { dir: "busybox", repository: "library/busybox", tags: ["1.35", "latest"], prepare: "busybox-rootfs" },
  { dir: "debian", repository: "library/debian", tags: ["bookworm", "12", "latest"], prepare: "debian-minbase" },
  { dir: "debian-slim", repository: "library/debian", tags: ["bookworm-slim", "12-slim"], prepare: "debian-slim" },
  { dir: "clock", repository: "berth/clock", tags: ["latest"] },
  { dir: "crashtest", repository: "berth/crashtest", tags: ["latest"] },
  { dir: "nginx", repository: "library/nginx", tags: ["1.22", "latest"] },
  { dir: "redis", repository: "library/redis", tags: ["7.0", "latest"] },
  { dir: "python", repository: "library/python", tags: ["3.11", "3", "latest"] },
  { dir: "gcc", repository: "library/gcc", tags: ["12", "latest"] },
  { dir: "nasm", repository: "berth/nasm", tags: ["2.16", "latest"] },
];

/** The name an image goes by in the build engine: the short Docker name of its first tag. */
export function localName(img: LabImage, tag = img.tags[0]!): string {
  return `${img.repository.replace(/^library\//, "")}:${tag}`;
}

/**
 * mmdebstrap's options for the two Debian bases. Both: minbase (apt, bash, coreutils, nothing
 * else), no device nodes in the tarball (an engine gives each container its own /dev), a
 * policy-rc.d that stops packages from starting services during `apt-get install` (a build
 * container shares the host's network: nginx must not bind the host's port 80), and the apt
 * settings Docker's official images carry (no translations, no kept .deb files).
 */
export function mmdebstrapArgs(variant: "debian-minbase" | "debian-slim", out: string): string[] {
  const args = [
    "--variant=minbase",
    "--mode=root",
    "--format=tar",
    "--skip=output/dev",
    // mmdebstrap puts its own policy-rc.d in place while it installs and removes it at the end,
    // which would take ours along: minbase starts no services, so it can leave that file to us.
    "--skip=chroot/policy-rc.d",
    // bookworm's init-system-helpers depends on usrmerge, which brings the whole of perl (~50 MB)
    // into the image; this hook makes /usr merged up front and installs usr-is-merged instead.
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    '--aptopt=Acquire::Languages "none"',
    '--aptopt=DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; }',
    '--aptopt=APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; }',
    `--customize-hook=printf '#!/bin/sh\\n# Installed by Berth like Docker images once did: no service starts during a build.\\nexit 101\\n' > "$1/usr/sbin/policy-rc.d" && chmod 755 "$1/usr/sbin/policy-rc.d" && mkdir -p "$1/dev"`,
  ];
  if (variant === "debian-slim") {
    // dpkg skips these paths for every package installed from now on (the rules stay in the
    // image); the essential packages mmdebstrap unpacks first bypass dpkg, hence the hook.
    const excluded = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/groff/*", "/usr/share/lintian/*", "/usr/share/linda/*", "/usr/share/locale/*"];
    for (const p of excluded) args.push(`--dpkgopt=path-exclude=${p}`);
    args.push("--dpkgopt=path-include=/usr/share/doc/*/copyright");
    args.push(
      `--customize-hook=cd "$1" && find usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete && find usr/share/doc -mindepth 1 -type d -empty -delete && rm -rf usr/share/man/* usr/share/info/* usr/share/groff/* usr/share/lintian/* usr/share/linda/* usr/share/locale/*`,
    );
  }
  args.push("bookworm", out);
  return args;
}

export interface EnsureOptions {
  /** Berth's state directory (default $BERTH_STATE_DIR or /var/lib/berth). */
  stateDir?: string;
  /** Rebuild and push everything, whatever the stamps say. */
  force?: boolean;
  /** Build in the build engine only: no registry, no push, no stamps (trying a Dockerfile). */
  noPush?: boolean;
  /** Only these directories (and nothing else: their parents must be built already). */
  only?: string[];
  log?: (line: string) => void;
}

export interface ImageReport {
  image: string; // repository:first tag
  action: "up to date" | "pushed" | "built and pushed" | "built";
  id?: string;
  sizeBytes?: number;
  seconds: number;
}

export function defaultStateDir(): string {
  return process.env.BERTH_STATE_DIR || "/var/lib/berth";
}

export function registryRoot(stateDir = defaultStateDir()): string {
  return path.join(stateDir, "registry");
}

interface Stamp {
  key: string;
  id: string;
  tags: string[];
}

/** What a run in progress has started, for the CLI's signal handler (see the end of this file). */
let running: { engine?: Engine; registry?: Registry; release?: () => void } | undefined;

/** Build whatever is missing or changed and push it; returns one line per image. */
export async function ensureLabImages(opts: EnsureOptions = {}): Promise<ImageReport[]> {
  const stateDir = opts.stateDir ?? defaultStateDir();
  const log = opts.log ?? ((l: string) => console.log(l));
  const work = path.join(stateDir, "image-builder");
  fs.mkdirSync(path.join(work, "stamps"), { recursive: true });
  const images = buildOrder(opts.only ? LAB_IMAGES.filter((i) => opts.only!.includes(i.dir)) : LAB_IMAGES);
  if (opts.only && images.length !== opts.only.length) throw new Error(`unknown image directory in --only: ${opts.only.filter((d) => !LAB_IMAGES.some((i) => i.dir === d)).join(", ")}`);
  const release = await lock(path.join(work, "lock"), log);
  let registry: Registry | undefined;
  let engine: Engine | undefined;
  running = { release };
  try {
    const keys = imageKeys();
    if (!opts.noPush) registry = running.registry = await startRegistry({ root: registryRoot(stateDir) });
    let todo: LabImage[] = [];
    for (const img of images) {
      const stamp = readStamp(work, img);
      if (registry && !opts.force && stamp?.key === keys.get(img.dir) && (await registryHas(registry, img))) continue;
      todo.push(img);
    }
    let reports: ImageReport[] = images.filter((i) => !todo.includes(i)).map((i) => ({ image: `${i.repository}:${i.tags[0]}`, action: "up to date", id: readStamp(work, i)?.id, seconds: 0 }));
    if (todo.length === 0) {
      log(`lab images: all ${images.length} up to date in the registry (${registryRoot(stateDir)}/data)`);
      return reports;
    }
    log(`lab images: ${todo.length} of ${images.length} to build or push: ${todo.map((i) => localName(i)).join(", ")}`);
    const socket = path.join(work, "docker.sock");
    // No container network: RUN steps use the host's (to reach Debian's archive), and a bridge of
    // this engine's own would only compete with the sandboxes' engines for names and subnets.
    engine = running.engine = await startEngine({ root: path.join(work, "engine"), socket, prebuild: [], network: { enabled: false }, log: () => {} });
    const host = `unix://${socket}`;
    // Build containers of a run that was killed (the engine marked them exited when it started).
    await capture(host, ["container", "prune", "-f"]).catch(() => {});
    // Push tags (127.0.0.1:<port>/...) left by a run that died before untagging them.
    for (const ref of (await capture(host, ["images", "--format", "{{.Repository}}:{{.Tag}}"])).split("\n")) {
      if (/^127\.0\.0\.1:\d+\//.test(ref)) await capture(host, ["rmi", ref]).catch(() => {});
    }
    // A parent that is up to date in the registry but missing from (or different in) the build
    // engine, whose state may have been wiped, is built again first: children must start FROM it.
    const needed = new Set(todo.map((i) => i.dir));
    for (const img of [...LAB_IMAGES].reverse()) {
      if (!needed.has(img.dir)) continue;
      for (const parent of labParents(img)) {
        if (!needed.has(parent.dir) && (await imageId(host, localName(parent))) !== readStamp(work, parent)?.id) needed.add(parent.dir);
      }
    }
    todo = LAB_IMAGES.filter((i) => needed.has(i.dir));
    reports = reports.filter((r) => !todo.some((i) => r.image === `${i.repository}:${i.tags[0]}`));
    // The builder's cache is keyed by parent and instruction, not by the builder's own code: after
    // a change to the builder, a cached step may hold what the old code made (an ADD that did not
    // extract, say). So the first run with a new builder builds without the cache.
    const builderFile = path.join(work, "builder-version");
    const builder = builderVersion();
    const noCache = opts.force || (fs.existsSync(builderFile) ? fs.readFileSync(builderFile, "utf8") : "") !== builder;
    if (noCache) log("lab images: the builder changed since the last build: building without its cache");
    for (const [n, img] of todo.entries()) {
      const t0 = Date.now();
      const key = keys.get(img.dir)!;
      const stamp = readStamp(work, img);
      const localId = await imageId(host, localName(img));
      const fresh = !opts.force && !opts.noPush && stamp?.key === key && localId === stamp.id;
      const prefix = `[${n + 1}/${todo.length}] ${localName(img)}`;
      let id = localId!;
      if (!fresh) {
        log(`${prefix}: building`);
        const ctx = await prepareContext(work, img, log);
        await runDocker(host, ["build", "--rm", ...(noCache ? ["--no-cache"] : []), ...img.tags.map((t) => ["-t", localName(img, t)]).flat(), ctx], path.join(work, "logs", `${img.dir}.log`), (line) => {
          if (/^Step \d+\/\d+ :/.test(line)) log(`  ${line.length > 120 ? `${line.slice(0, 117)}...` : line}`);
        });
        id = (await imageId(host, localName(img)))!;
      }
      const sizeBytes = Number((await capture(host, ["image", "inspect", "--format", "{{.Size}}", localName(img)])).trim());
      const seconds = () => Math.round((Date.now() - t0) / 100) / 10;
      if (!registry) {
        reports.push({ image: `${img.repository}:${img.tags[0]}`, action: "built", id, sizeBytes, seconds: seconds() });
        log(`${prefix}: built in ${seconds()} s (${(sizeBytes / 1e6).toFixed(1)} MB), not pushed (--no-push)`);
        continue;
      }
      log(`${prefix}: pushing ${img.tags.length} tag(s) to ${registry.address}/${img.repository}`);
      for (const t of img.tags) {
        const remote = `${registry.address}/${img.repository}:${t}`;
        await runDocker(host, ["tag", localName(img, t), remote], path.join(work, "logs", `${img.dir}.log`));
        try {
          await runDocker(host, ["push", remote], path.join(work, "logs", `${img.dir}.log`));
        } finally {
          // The port changes from run to run: a tag naming it would only clutter `docker images`.
          await capture(host, ["rmi", remote]).catch(() => {});
        }
      }
      writeStamp(work, img, { key, id, tags: img.tags });
      reports.push({ image: `${img.repository}:${img.tags[0]}`, action: fresh ? "pushed" : "built and pushed", id, sizeBytes, seconds: seconds() });
      log(`${prefix}: done in ${seconds()} s (${(sizeBytes / 1e6).toFixed(1)} MB)`);
    }
    fs.writeFileSync(builderFile, builder);
    return reports;
  } finally {
    running = undefined;
    await engine?.close().catch(() => {});
    await registry?.stop().catch(() => {});
    release();
  }
}

/** Parents first; refuses an order where an image is built before the lab image it starts FROM. */
export function buildOrder(images: LabImage[]): LabImage[] {
  for (const [n, img] of images.entries()) {
    for (const parent of parentsOf(img)) {
      const p = LAB_IMAGES.findIndex((i) => i.tags.some((t) => localName(i, t) === parent));
      if (p < 0) continue; // scratch
      const inList = images.indexOf(LAB_IMAGES[p]!);
      if (inList > n) throw new Error(`${img.dir} is built FROM ${parent}, which comes later in LAB_IMAGES`);
    }
  }
  return images;
}

/** The FROM images of an image's Dockerfile, as local names (`busybox` means `busybox:latest`). */
export function parentsOf(img: LabImage): string[] {
  const text = fs.readFileSync(path.join(HERE, img.dir, "Dockerfile"), "utf8");
  return [...text.matchAll(/^\s*FROM\s+(\S+)/gim)].map((m) => m[1]!).filter((r) => r !== "scratch").map((r) => (r.includes(":") ? r : `${r}:latest`));
}

/**
 * The builder's source version: a digest of packages/engine/src/build and of the engine's tar
 * (src/tar: it writes every layer's bytes, so a change there must rebuild and push the images).
 */
export function builderVersion(): string {
  return createHash("sha256")
    .update(hashTree(path.join(REPO, "packages/engine/src/build")))
    .update(hashTree(path.join(REPO, "packages/engine/src/tar")))
    .digest("hex");
}

/** The lab images an image's Dockerfile starts FROM. */
function labParents(img: LabImage): LabImage[] {
  return parentsOf(img).flatMap((ref) => LAB_IMAGES.filter((i) => i.tags.some((t) => localName(i, t) === ref)));
}

/** Each image's key: what went into it, its parent's key included (a new base rebuilds children). */
export function imageKeys(): Map<string, string> {
  const builder = builderVersion();
  const keys = new Map<string, string>();
  for (const img of LAB_IMAGES) {
    const h = createHash("sha256");
    h.update(JSON.stringify({ v: BUILD_VERSION, builder, dir: hashTree(path.join(HERE, img.dir)), tags: img.tags }));
    if (img.prepare === "busybox-rootfs") h.update(hashFile("/bin/busybox"));
    if (img.prepare === "debian-minbase" || img.prepare === "debian-slim") h.update(JSON.stringify(mmdebstrapArgs(img.prepare, "-")));
    for (const parent of parentsOf(img)) {
      const p = LAB_IMAGES.find((i) => i.tags.some((t) => localName(i, t) === parent));
      if (p) h.update(keys.get(p.dir) ?? "");
    }
    keys.set(img.dir, h.digest("hex"));
  }
  return keys;
}

/** A fresh copy of the image's directory, plus what `prepare` adds (the rootfs, the tarball). */
async function prepareContext(work: string, img: LabImage, log: (l: string) => void): Promise<string> {
  const ctx = path.join(work, "context", img.dir);
  fs.rmSync(ctx, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(ctx), { recursive: true });
  fs.cpSync(path.join(HERE, img.dir), ctx, { recursive: true });
  if (img.prepare === "busybox-rootfs") makeBusyboxRootfs(path.join(ctx, "rootfs"));
  if (img.prepare === "debian-minbase" || img.prepare === "debian-slim") {
    const tar = await debianTarball(work, img.prepare, log);
    fs.linkSync(tar, path.join(ctx, "rootfs.tar"));
  }
  return ctx;
}

/**
 * The mmdebstrap tarball for a Debian base, cached under a name that hashes its options (25-40 s
 * to make; kept so that a rebuild for another reason does not fetch Debian again). Written to a
 * temporary name and renamed when complete, so a killed run leaves no half tarball behind.
 */
export async function debianTarball(work: string, variant: "debian-minbase" | "debian-slim", log: (l: string) => void): Promise<string> {
  const dir = path.join(work, "debian");
  fs.mkdirSync(dir, { recursive: true });
  const name = `${variant}-${createHash("sha256").update(JSON.stringify(mmdebstrapArgs(variant, "-"))).digest("hex").slice(0, 16)}.tar`;
  const out = path.join(dir, name);
  if (fs.existsSync(out)) return out;
  for (const old of fs.readdirSync(dir)) if (old.startsWith(variant) || old.startsWith(".tmp-")) fs.rmSync(path.join(dir, old), { force: true });
  const tmp = path.join(dir, `.tmp-${process.pid}-${name}`);
  log(`  mmdebstrap --variant=minbase bookworm (${variant}): fetching from Debian's archive`);
  await runLogged("mmdebstrap", mmdebstrapArgs(variant, tmp), path.join(work, "logs", `${variant}-mmdebstrap.log`));
  fs.renameSync(tmp, out);
  return out;
}

/** Does the registry hold every tag of the image? */
async function registryHas(reg: Registry, img: LabImage): Promise<boolean> {
  for (const t of img.tags) {
    const res = await fetch(`${reg.url}/v2/${img.repository}/manifests/${t}`, {
      method: "HEAD",
      headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json" },
    });
    if (res.status !== 200) return false;
  }
  return true;
}

async function imageId(host: string, ref: string): Promise<string | undefined> {
  try {
    return (await capture(host, ["image", "inspect", "--format", "{{.Id}}", ref])).trim() || undefined;
  } catch {
    return undefined;
  }
}

function dockerEnv(host: string): NodeJS.ProcessEnv {
  // The legacy builder (POST /build): the engine has no BuildKit, and the sandbox's CLI has no buildx.
  return { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: "0", DOCKER_CLI_HINTS: "false" };
}

/** The CLI with its output appended to a log file; on failure the error carries the last lines. */
function runDocker(host: string, args: string[], logFile: string, onLine?: (line: string) => void): Promise<void> {
  return runLogged(DOCKER_CLI, args, logFile, onLine, dockerEnv(host));
}

function runLogged(cmd: string, args: string[], logFile: string, onLine?: (line: string) => void, env = process.env): Promise<void> {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const out = fs.createWriteStream(logFile, { flags: "a" });
  out.write(`\n$ ${cmd} ${args.join(" ")}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    let partial = "";
    const onData = (chunk: Buffer) => {
      out.write(chunk);
      const text = chunk.toString("utf8");
      tail = (tail + text).slice(-3000);
      if (!onLine) return;
      const lines = (partial + text).split("\n");
      partial = lines.pop()!;
      for (const l of lines) onLine(l.replace(/\r/g, ""));
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (e) => {
      out.end();
      reject(new Error(`${cmd} could not start: ${e.message}`));
    });
    child.on("close", (code) => {
      out.end();
      if (code === 0) return resolve();
      const last = tail.trim().split("\n").slice(-12).join("\n");
      reject(new Error(`${path.basename(cmd)} ${args.slice(0, 2).join(" ")} failed (exit ${code}); full log in ${logFile}\n${last}`));
    });
  });
}

function capture(host: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER_CLI, args, { env: dockerEnv(host), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`docker ${args.join(" ")}: ${stderr.trim()}`))));
  });
}

function stampFile(work: string, img: LabImage): string {
  return path.join(work, "stamps", `${img.dir}.json`);
}

function readStamp(work: string, img: LabImage): Stamp | undefined {
  try {
    return JSON.parse(fs.readFileSync(stampFile(work, img), "utf8")) as Stamp;
  } catch {
    return undefined;
  }
}

function writeStamp(work: string, img: LabImage, stamp: Stamp): void {
  const f = stampFile(work, img);
  fs.writeFileSync(`${f}.tmp`, JSON.stringify(stamp));
  fs.renameSync(`${f}.tmp`, f);
}

function hashFile(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

function hashTree(dir: string): string {
  const h = createHash("sha256");
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
    else {
      h.update(`${path.relative(dir, p)} ${st.mode & 0o777}\n`);
      h.update(st.isSymbolicLink() ? fs.readlinkSync(p) : fs.readFileSync(p));
    }
  };
  walk(dir);
  return h.digest("hex");
}

/**
 * One builder at a time per state dir. The lock file holds the owner's pid; a lock whose owner is
 * gone (a killed setup) is taken over, a live one is waited for.
 */
async function lock(file: string, log: (l: string) => void): Promise<() => void> {
  let told = false;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: "wx" });
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const owner = Number(fs.readFileSync(file, "utf8").trim());
    let alive = false;
    try {
      if (owner > 0) process.kill(owner, 0);
      alive = owner > 0 && owner !== process.pid;
    } catch {
      /* no such process */
    }
    if (!alive) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (!told) log(`lab images: waiting for another build (pid ${owner}) to finish`);
    told = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const only: string[] = [];
  let stateDir: string | undefined;
  let force = false;
  let noPush = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--force") force = true;
    else if (a === "--no-push") noPush = true;
    else if (a === "--state-dir") stateDir = argv[++i];
    else if (a === "--only") only.push(argv[++i]!);
    else {
      console.error(`unknown argument ${a}\nusage: tsx infra/images/build.ts [--state-dir DIR] [--force] [--no-push] [--only DIR ...]`);
      process.exit(2);
    }
  }
  if (process.getuid?.() !== 0) {
    console.error("building the lab images needs root (the engine makes namespaces and mounts)");
    process.exit(1);
  }
  // Interrupted (^C, a killed setup): stop the build containers (apt-get would run on), the
  // registry and the lock, so the next run starts clean.
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      console.error(`lab images: ${sig}: stopping the build engine and the registry`);
      const r = running;
      void (async () => {
        await r?.engine?.close().catch(() => {});
        await r?.registry?.stop().catch(() => {});
        r?.release?.();
        process.exit(sig === "SIGINT" ? 130 : 143);
      })();
    });
  }
  const t0 = Date.now();
  try {
    const reports = await ensureLabImages({ stateDir, force, noPush, only: only.length ? only : undefined });
    const built = reports.filter((r) => r.action !== "up to date");
    for (const r of built) console.log(`  ${r.image.padEnd(32)} ${r.action.padEnd(17)} ${r.sizeBytes ? `${(r.sizeBytes / 1e6).toFixed(1)} MB` : ""} ${r.seconds} s`);
    console.log(`lab images: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (e) {
    console.error(`lab images: ${(e as Error).message}`);
    process.exit(1);
  }
}
