import { defineConfig } from "vitest/config";

// The fast tier: tests that need no root, no sandbox, no engine and no network, only the code
// (parsers, spec translation, path resolvers, the builder's planning). `npm run test:unit` runs it
// on its own in seconds; `npm test` runs it first, then everything else (vitest.config.ts).
// A package's test belongs here when it lives in packages/<name>/test/unit/.
export default defineConfig({
  test: {
    include: ["packages/*/test/unit/**/*.test.ts"],
    testTimeout: 10_000,
  },
});
