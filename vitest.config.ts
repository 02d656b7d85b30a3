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
    // One process for the whole tier, modules kept loaded from file to file: a fresh fork per file
    // (start, then import and transform its module graph again) cost ~1-3 s each, minutes in all.
    // What a file changes in the process (environment, cwd, umask) is put back after it by
    // test/vitest-setup.ts; state a file makes (engines, sandboxes, servers) is its own to stop.
    poolOptions: { forks: { isolate: false, singleFork: true } },
    setupFiles: ["test/vitest-setup.ts"],
  },
});
