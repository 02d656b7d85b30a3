// What a sandbox sees at /opt/berth (read-only): the agent bundle and the runtime parts of node-pty
// and fs-xattr (native addons),
// the container engine's bundle (engine.mjs) and its shim compiled on the host (bin/berth-shim),
// nothing else from the repository (labs/ with solutions must never be visible inside). The
// directory is named by a hash of its contents, so running sandboxes keep theirs when it changes.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildAgentBundle, buildEngineBundle, buildEngineShim, FS_XATTR_DIR, NODE_PTY_DIR } from "@berth/agent/build";

/** Inside the sandbox: where the agent finds the engine (see oci-spec.ts). */
export const SANDBOX_ENGINE_BUNDLE = "/opt/berth/engine.mjs";
export const SANDBOX_ENGINE_SHIM = "/opt/berth/bin/berth-shim";

export async function ensureAgentDir(stateDir: string): Promise<string> {
  const bundle = await readFile(await buildAgentBundle());
  const ptyNative = await readFile(join(NODE_PTY_DIR, "build", "Release", "pty.node"));
  const xattrNative = await readFile(join(FS_XATTR_DIR, "build", "Release", "xattr.node"));
  const engine = await readFile(await buildEngineBundle());
  // Compiled on the host with the project's own code (shim.c), never committed.
  const shim = await readFile(buildEngineShim(join(stateDir, "shim")));
  const key = createHash("sha256").update(bundle).update(ptyNative).update(xattrNative).update(engine).update(shim).digest("hex").slice(0, 16);
  const dir = join(stateDir, "agent", key);
  if (existsSync(join(dir, "agent.mjs"))) return dir;

  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  const pty = join(tmp, "node_modules", "node-pty");
  await mkdir(join(pty, "build", "Release"), { recursive: true });
  await cp(join(NODE_PTY_DIR, "lib"), join(pty, "lib"), { recursive: true });
  await cp(join(NODE_PTY_DIR, "package.json"), join(pty, "package.json"));
  await writeFile(join(pty, "build", "Release", "pty.node"), ptyNative);
  // The engine's native addon for xattrs (overlayfs's opaque markers), loaded as "fs-xattr".
  const xattr = join(tmp, "node_modules", "fs-xattr");
  await mkdir(join(xattr, "build", "Release"), { recursive: true });
  for (const f of ["index.js", "package.json"]) await cp(join(FS_XATTR_DIR, f), join(xattr, f));
  await writeFile(join(xattr, "build", "Release", "xattr.node"), xattrNative);
  await writeFile(join(tmp, "engine.mjs"), engine);
  await mkdir(join(tmp, "bin"));
  await writeFile(join(tmp, "bin", "berth-shim"), shim, { mode: 0o755 });
  // Last: agent.mjs present means the directory is complete.
  await writeFile(join(tmp, "agent.mjs"), bundle);
  try {
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (!existsSync(join(dir, "agent.mjs"))) throw err;
  }
  return dir;
}

/**
 * Removes agent directories that no sandbox uses any more. `inUse` holds the current one and those
 * named in sandboxes' meta.json; an hour's grace covers another process that is creating a sandbox
 * with a directory of its own right now.
 */
export async function removeUnusedAgentDirs(stateDir: string, inUse: Set<string>): Promise<void> {
  const root = join(stateDir, "agent");
  const hourAgo = Date.now() - 60 * 60 * 1000;
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const dir = join(root, name);
    if (inUse.has(dir)) continue;
    const st = await stat(dir).catch(() => undefined);
    if (st && st.mtimeMs < hourAgo) await rm(dir, { recursive: true, force: true });
  }
}
