// The steps `npm start` and `npm test` share: make a fresh machine of this kind ready to run Berth.
// Plain JavaScript on purpose: it runs before `npm ci` has installed tsx or TypeScript.
// Each step says what it does, and skips itself when its work is already done.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { debianPackages, requireHostPrograms } from "./host-programs.mjs";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Debian packages Berth needs at run time, and the test suite on top: both come from the one list of
 * host programs (scripts/host-programs.mjs), which .ci/run and the start-up check read too.
 */
export const RUNTIME_PACKAGES = debianPackages("runtime");
export const TEST_PACKAGES = debianPackages("test").filter((p) => !RUNTIME_PACKAGES.includes(p));

export function say(msg) {
  process.stdout.write(`\x1b[1m▸ ${msg}\x1b[0m\n`);
}

export function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { stdio: "inherit", cwd: ROOT, ...opts });
  if (res.status !== 0) {
    const why = res.error ? res.error.message : `exit ${res.status ?? res.signal}`;
    throw new Error(`${cmd} ${args.join(" ")} failed (${why})`);
  }
}

export function requireRoot(what) {
  if (process.getuid?.() !== 0) {
    console.error(`Berth needs root to ${what} (namespaces, cgroups, overlay mounts). Run it as root, e.g. \`sudo npm start\`.`);
    process.exit(1);
  }
}

function missingDebianPackages(pkgs) {
  return pkgs.filter((p) => spawnSync("dpkg-query", ["-W", "-f=${Status}", p], { encoding: "utf8" }).stdout?.includes("install ok installed") !== true);
}

export function ensureDebianPackages(pkgs) {
  const missing = missingDebianPackages(pkgs);
  if (missing.length === 0) return;
  say(`Installing Debian packages: ${missing.join(" ")}`);
  run("apt-get", ["update", "-qq"]);
  run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
}

/** `npm ci` when node_modules is missing or older than the lockfile. */
export function ensureNodeModules() {
  const marker = path.join(ROOT, "node_modules/.package-lock.json");
  const lock = path.join(ROOT, "package-lock.json");
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  say("Installing npm dependencies (npm ci)");
  run("npm", ["ci", "--no-audit", "--no-fund"]);
}

/** A digest of every file under `dirs` (skipping build output), to know when to rebuild. */
export function treeDigest(dirs, skip = ["node_modules", ".next", "dist"]) {
  const h = createHash("sha256");
  const walk = (p) => {
    const st = statSync(p);
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) if (!skip.includes(name)) walk(path.join(p, name));
    } else {
      h.update(path.relative(ROOT, p));
      h.update(readFileSync(p));
    }
  };
  for (const d of dirs) if (existsSync(path.join(ROOT, d))) walk(path.join(ROOT, d));
  return h.digest("hex");
}

/** Run `build` unless the digest of `inputs` matches the one stamped in `stampFile` last time. */
export function buildIfChanged(label, inputs, stampFile, build) {
  const digest = treeDigest(inputs);
  const stamp = path.join(ROOT, stampFile);
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === digest) return;
  say(label);
  build();
  mkdirSync(path.dirname(stamp), { recursive: true });
  writeFileSync(stamp, digest);
}

const tsx = (args, opts) => run(path.join(ROOT, "node_modules/.bin/tsx"), args, opts);

export function prepareDatabase(env = process.env) {
  say("Preparing the database (Prisma client and migrations)");
  tsx(["scripts/db.ts", "generate"], { env });
  tsx(["scripts/db.ts", "migrate"], { env });
}

export function buildWeb() {
  buildIfChanged("Building the web app (next build)", ["apps/web", "packages/protocol/src", "package-lock.json"], ".berth/stamps/web", () =>
    run(path.join(ROOT, "node_modules/.bin/next"), ["build"], { cwd: path.join(ROOT, "apps/web"), env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" } }),
  );
}

export function buildRootfs() {
  say("Checking the sandbox root filesystem (built from Debian packages the first time, then cached)");
  tsx(["packages/sandbox/src/rootfs/build.ts"]);
}

/**
 * The lab images (busybox, debian, nginx, redis, python, gcc, berth/clock ...): built by Berth's
 * own engine from infra/images/ and pushed to the lab registry's storage. Skips itself in about a
 * second when the registry already holds every image as built from the current Dockerfiles.
 */
export function buildLabImages() {
  say("Checking the lab images (built from Debian packages into the lab registry the first time, then cached)");
  tsx(["infra/images/build.ts"]);
}

/**
 * Everything both commands need, in order. `need` is "runtime" (`npm start`) or "test" (`npm test`):
 * after the packages are installed, every program on the list must be there, or setup stops and
 * names the package (a package can be installed and still lack a program someone removed).
 */
export function setup({ packages, need = "runtime" }) {
  ensureDebianPackages(packages);
  say("Checking the host programs Berth runs (scripts/host-programs.mjs)");
  requireHostPrograms(need);
  ensureNodeModules();
  prepareDatabase();
  buildRootfs();
  buildLabImages();
  buildWeb();
}
