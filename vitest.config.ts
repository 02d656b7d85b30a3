import { defineConfig } from "vitest/config";

// One vitest run for every package's unit and integration tests. Browser tests are Playwright's
// (test/e2e), benchmarks are scripts (test/bench): neither runs here.
export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/orchestrator/test/**/*.test.ts", "test/repo/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Sandboxes and engines are real: keep files from fighting over two cores.
    fileParallelism: false,
    pool: "forks",
  },
});
