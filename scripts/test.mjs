// `npm test`: the whole suite. Sets up what is missing (as `npm start` does), then runs, in order:
// the typecheck, the unit tier (no root), the system tests (vitest, real sandboxes and engines), the
// slow tier (qemu VMs, the orchestrator on uml guests), `labkit lint`
// and `labkit test` over labs/, and the browser suite (Playwright in Debian's Chromium).
// Every stage runs even if an earlier one failed, so one run shows everything that is wrong.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, RUNTIME_PACKAGES, TEST_PACKAGES, requireRoot, say, setup } from "./setup.mjs";

requireRoot("run real sandboxes in the tests");
const started = Date.now();
try {
  setup({ packages: [...RUNTIME_PACKAGES, ...TEST_PACKAGES], need: "test" });
} catch (err) {
  console.error(`\nSetup failed: ${err.message}`);
  process.exit(1);
}

const bin = (name) => path.join(ROOT, "node_modules/.bin", name);
const reports = mkdtempSync(path.join(os.tmpdir(), "berth-test-"));
const stages = [];
let passed = 0;
let failed = 0;
// Names of failed tests, printed again in the summary: CI shows only the tail of the output.
const failures = [];

function stage(name, cmd, args, count) {
  say(name);
  const t0 = Date.now();
  const res = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit", env: { ...process.env, FORCE_COLOR: "0" } });
  const ok = res.status === 0;
  let counted = { passed: ok ? 1 : 0, failed: ok ? 0 : 1 };
  try {
    if (count) counted = count(ok);
  } catch {
    // No report written (the runner crashed): the stage's exit code stands for it.
  }
  passed += counted.passed;
  failed += counted.failed;
  stages.push({ name, ok, seconds: Math.round((Date.now() - t0) / 1000) });
}

stage("Typecheck", bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]);

// Two tiers: the fast one (no root, no sandbox: packages/*/test/unit, vitest.unit.config.ts,
// `npm run test:unit`) first, then the system tier (real sandboxes, engines, dockerd) without it.
const firstLine = (msg) => String(msg ?? "").split("\n").find((l) => l.trim()) ?? "";
const vitestCount = (file) => (ok) => {
  const r = JSON.parse(readFileSync(file, "utf8"));
  for (const suite of r.testResults ?? []) {
    const rel = path.relative(ROOT, suite.name);
    for (const t of suite.assertionResults ?? []) {
      if (t.status === "failed") failures.push(`${rel} > ${t.fullName}: ${firstLine(t.failureMessages?.[0])}`);
    }
    // A file that failed to load or whose hooks threw has no failed assertion to name.
    if (suite.status === "failed" && !(suite.assertionResults ?? []).some((t) => t.status === "failed")) {
      failures.push(`${rel}: ${firstLine(suite.message)}`);
    }
  }
  const f = r.numFailedTests + (ok ? 0 : r.numFailedTests === 0 ? 1 : 0);
  return { passed: r.numPassedTests, failed: f };
};
const unitJson = path.join(reports, "vitest-unit.json");
stage("Unit tests, no root (vitest, packages/*/test/unit)", bin("vitest"), ["run", "-c", "vitest.unit.config.ts", "--reporter=default", "--reporter=json", `--outputFile.json=${unitJson}`], vitestCount(unitJson));
const vitestJson = path.join(reports, "vitest.json");
// The slow tier: qemu guests (software emulation where the host has no usable KVM: minutes a file)
// and the orchestrator booting uml guests (its warm pool, a restart, the reaper: a minute or more),
// run after the system tier so every faster failure is known first.
const SLOW_TIER = ["packages/sandbox/test/qemu*.test.ts", "apps/orchestrator/test/uml-orchestrator.test.ts"];
stage("System tests (vitest: real sandboxes, engines, dockerd)", bin("vitest"), ["run", "--exclude", "packages/*/test/unit/**", ...SLOW_TIER.flatMap((glob) => ["--exclude", glob]), "--reporter=default", "--reporter=json", `--outputFile.json=${vitestJson}`], vitestCount(vitestJson));
const slowJson = path.join(reports, "vitest-slow.json");
// vitest takes file filters (parts of a path), not globs: each glob up to its "*" or ".test.ts".
const slowFilters = SLOW_TIER.map((glob) => glob.replace(/\*?\.test\.ts$/, ""));
stage("Slow tier (vitest: qemu VMs, the orchestrator on uml)", bin("vitest"), ["run", ...slowFilters, "--exclude", "packages/*/test/unit/**", "--reporter=default", "--reporter=json", `--outputFile.json=${slowJson}`], vitestCount(slowJson));

stage("Lint the labs (labkit lint labs)", bin("tsx"), ["packages/labkit/src/cli.ts", "lint", "labs"]);
stage("Prove every check (labkit test labs)", bin("tsx"), ["packages/labkit/src/cli.ts", "test", "labs"]);

const pwJson = path.join(reports, "playwright.json");
process.env.PLAYWRIGHT_JSON_OUTPUT_NAME = pwJson;
stage("Browser tests (Playwright, Chromium)", bin("playwright"), ["test", "-c", "test/e2e/playwright.config.ts"], (ok) => {
  const r = JSON.parse(readFileSync(pwJson, "utf8"));
  const walk = (suite) => {
    for (const spec of suite.specs ?? []) {
      for (const t of spec.tests ?? []) {
        if (t.status === "unexpected") {
          const err = t.results?.at(-1)?.error?.message;
          failures.push(`${spec.file}:${spec.line} > ${spec.title}: ${firstLine(err)}`);
        }
      }
    }
    for (const s of suite.suites ?? []) walk(s);
  };
  for (const s of r.suites ?? []) walk(s);
  const f = r.stats.unexpected ?? 0;
  return { passed: r.stats.expected ?? 0, failed: f + (!ok && f === 0 ? 1 : 0) };
});

console.log("\nSummary");
for (const s of stages) console.log(`  ${s.ok ? "ok  " : "FAIL"}  ${s.name} (${s.seconds} s)`);
console.log(`  total ${Math.round((Date.now() - started) / 1000)} s`);
if (failures.length) {
  console.log("Failed:");
  for (const f of failures) console.log(`  ${f.slice(0, 400)}`);
}
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(stages.every((s) => s.ok) ? 0 : 1);
