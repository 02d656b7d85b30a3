import { readFileSync } from "node:fs";
import path from "node:path";
import type { NextConfig } from "next";

// The workspace hoists node_modules to the repo root (two levels up), and @berth/protocol lives
// outside this app. Turbopack only resolves files under its root, and output tracing must see the
// hoisted packages, so both roots point at the repo, not at apps/web.
const repoRoot = path.join(__dirname, "..", "..");

// Monaco's prebuilt browser build (min/vs) is served by this app from the installed package
// (app/monaco/[version]/[...path]/route.ts): no CDN, and no 35 MB of editor sources through the
// bundler. The version is in the URL so those files can be cached for good.
// (Its exports map hides package.json; its CommonJS entry is min/vs/index.js, two folders down.)
const monacoDir = path.resolve(path.dirname(require.resolve("monaco-editor", { paths: [__dirname] })), "..", "..");
const monacoVersion = (JSON.parse(readFileSync(path.join(monacoDir, "package.json"), "utf8")) as { version: string }).version;

const config: NextConfig = {
  // BERTH_WEB_DIST_DIR (relative to apps/web) builds and serves from another folder than .next: a
  // benchmark or a second checkout can build its own copy without replacing the chunks a running
  // server refers to. It must be the same at `next build` and when the orchestrator starts.
  ...(process.env.BERTH_WEB_DIST_DIR ? { distDir: process.env.BERTH_WEB_DIST_DIR } : {}),
  turbopack: { root: repoRoot },
  outputFileTracingRoot: repoRoot,
  // @berth/protocol ships TypeScript source (its flow constants are imported, the rest is types).
  transpilePackages: ["@berth/protocol"],
  reactStrictMode: true,
  poweredByHeader: false,
  env: {
    NEXT_PUBLIC_MONACO_VERSION: monacoVersion,
    BERTH_MONACO_MIN_DIR: path.join(monacoDir, "min"),
  },
};

export default config;
