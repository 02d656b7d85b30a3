// Bundles the agent into one file for the sandbox: dist/agent.mjs. node-pty stays external (a native
// addon built for the host's node, copied beside the bundle as node_modules/node-pty). ws's optional
// native helpers (bufferutil, utf-8-validate) are left out: ws falls back to JavaScript.
//
// CLI: `tsx packages/agent/build.ts` prints the bundle's path.
import { build } from "esbuild";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const AGENT_DIR = dirname(fileURLToPath(import.meta.url));
export const AGENT_BUNDLE = join(AGENT_DIR, "dist", "agent.mjs");
/** The node-pty package the bundle loads; the sandbox driver copies the runtime parts of it. */
export const NODE_PTY_DIR = dirname(createRequire(import.meta.url).resolve("node-pty/package.json"));

/**
 * Builds dist/agent.mjs and returns its path. Written to a temporary file and renamed, so that an
 * orchestrator and a `labkit test` building at the same time never read half a bundle.
 */
export async function buildAgentBundle(): Promise<string> {
  const result = await build({
    entryPoints: [join(AGENT_DIR, "src", "main.ts")],
    outfile: AGENT_BUNDLE,
    write: false,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    external: ["node-pty", "bufferutil", "utf-8-validate"],
    // ws is CommonJS and calls require(); give the ESM bundle a real one.
    banner: { js: 'import { createRequire as __berthCreateRequire } from "node:module"; const require = __berthCreateRequire(import.meta.url);' },
    legalComments: "none",
    logLevel: "warning",
  });
  const out = result.outputFiles.find((f) => f.path === AGENT_BUNDLE);
  if (!out) throw new Error(`esbuild produced no ${AGENT_BUNDLE}`);
  await mkdir(dirname(AGENT_BUNDLE), { recursive: true });
  const tmp = `${AGENT_BUNDLE}.${process.pid}.tmp`;
  await writeFile(tmp, out.contents);
  await rename(tmp, AGENT_BUNDLE);
  return AGENT_BUNDLE;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildAgentBundle().then((p) => console.log(p), (err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}

// The engine the agent supervises ships beside it: the sandbox driver puts both in /opt/berth.
export { buildEngineBundle, buildEngineShim, buildDebianImage, ImageStore, DEBIAN_BUILDER_SOURCE, FS_XATTR_DIR } from "@berth/engine/build";
