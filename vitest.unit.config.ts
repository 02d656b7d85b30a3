import { defineConfig } from "vitest/config";

// The fast tier: tests that need no root, no sandbox, no engine and no network, only the code
// (parsers, spec translation, path resolvers, the builder's planning). `npm run test:unit` runs it
// on its own in seconds; `npm test` runs it first, then everything else (vitest.config.ts).
// A package's test belongs here when it lives in packages/<name>/test/unit/.
export default defineConfig({
  test: {
    include: ["packages/*/test/unit/**/*.test.ts"],
    testTimeout: 10_000,
    // Workers keep their modules loaded from file to file (half the tier's time went to fresh
    // workers importing the same packages again); test/vitest-setup.ts puts back what a file changed.
    isolate: false,
    setupFiles: ["test/vitest-setup.ts"],
  },
});
