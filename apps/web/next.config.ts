import path from "node:path";
import type { NextConfig } from "next";

// The workspace hoists node_modules to the repo root (two levels up), and @berth/protocol lives
// outside this app. Turbopack only resolves files under its root, and output tracing must see the
// hoisted packages, so both roots point at the repo, not at apps/web.
const repoRoot = path.join(__dirname, "..", "..");

const config: NextConfig = {
  turbopack: { root: repoRoot },
  outputFileTracingRoot: repoRoot,
  // @berth/protocol ships TypeScript source (its flow constants are imported, the rest is types).
  transpilePackages: ["@berth/protocol"],
  reactStrictMode: true,
  poweredByHeader: false,
};

export default config;
