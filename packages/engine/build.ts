// What a sandbox needs to run the engine, made on the host:
//   - dist/engine.mjs: src/main.ts bundled into one file with esbuild (pino inside);
//     the one native addon, fs-xattr (overlayfs's opaque markers), stays outside: the driver copies
//     its runtime files beside the bundle as node_modules/fs-xattr (FS_XATTR_DIR);
//   - berth-shim: src/runtime/shim.c compiled with the host's `cc` (the sandbox has no compiler).
// The sandbox driver copies both into the read-only directory it mounts at /opt/berth and starts
// the bundle with BERTH_SHIM pointing at the shim (see packages/agent/src/engine-process.ts).
//
// CLI: `tsx packages/engine/build.ts` prints the bundle's and the shim's paths.
import { build } from "esbuild";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildShim } from "./src/runtime/shim";
// The host side of shared images (src/images/shared.ts): a sandbox driver builds debian:bookworm
// into a store of its own with the engine's one mmdebstrap builder, then shares it read-only.
export { ImageStore } from "./src/images/store";
export { buildDebianImage, DEBIAN_REFERENCES } from "./src/images/debian";
export const DEBIAN_BUILDER_SOURCE = join(dirname(fileURLToPath(import.meta.url)), "src", "images", "debian.ts");

export const ENGINE_DIR = dirname(fileURLToPath(import.meta.url));
export const ENGINE_BUNDLE = join(ENGINE_DIR, "dist", "engine.mjs");
/** The fs-xattr package the bundle loads (index.js, package.json, build/Release/xattr.node). */
// (resolve the entry, not package.json: the package exports only index.js)
export const FS_XATTR_DIR = dirname(createRequire(import.meta.url).resolve("fs-xattr"));

/** Builds dist/engine.mjs (written to a temporary file and renamed: concurrent builders never see half). */
export async function buildEngineBundle(): Promise<string> {
  const result = await build({
    entryPoints: [join(ENGINE_DIR, "src", "main.ts")],
    outfile: ENGINE_BUNDLE,
    write: false,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    external: ["fs-xattr"],
    // Some dependencies are CommonJS and call require(); give the ESM bundle a real one.
    banner: { js: 'import { createRequire as __berthCreateRequire } from "node:module"; const require = __berthCreateRequire(import.meta.url);' },
    legalComments: "none",
    logLevel: "warning",
  });
  const out = result.outputFiles.find((f) => f.path === ENGINE_BUNDLE);
  if (!out) throw new Error(`esbuild produced no ${ENGINE_BUNDLE}`);
  await mkdir(dirname(ENGINE_BUNDLE), { recursive: true });
  const tmp = `${ENGINE_BUNDLE}.${process.pid}.tmp`;
  await writeFile(tmp, out.contents);
  await rename(tmp, ENGINE_BUNDLE);
  return ENGINE_BUNDLE;
}

/** Compiles berth-shim into `binDir` (named by a hash of shim.c; reused while the source is unchanged). */
export function buildEngineShim(binDir: string): string {
  return buildShim(binDir);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildEngineBundle().then(
    (p) => console.log(`${p}\n${buildEngineShim(join(ENGINE_DIR, "dist"))}`),
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
