// labkit: the command line for lab authors and content CI.
//   labkit lint <dir> [--strict]              every error and warning as file:line: message (fix: ...);
//                                             exit 1 on any error (with --strict, on any warning too)
//   labkit render <dir>                       the browser's view of every lab, as JSON
//   labkit test <dir> [--lab id] [--driver namespaces|uml|qemu] [--jobs N]
//                                             prove each check fails before and passes after its
//                                             solution, one fresh Berth sandbox per lab (the driver:
//                                             --driver, else BERTH_SANDBOX_DRIVER, else namespaces,
//                                             as the orchestrator), N labs at a time (default 2);
//                                             exit 1 on failure. The lab registry (the storage setup
//                                             pushed the lab images to; BERTH_REGISTRY_ROOT) is
//                                             started for the run, so solutions can `docker pull`.
// This entry point is the only part of labkit that reads the environment: BERTH_SANDBOX_DRIVER,
// BERTH_STATE_DIR, BERTH_QEMU_* (sandboxOptionsFromEnv) and BERTH_REGISTRY_ROOT.
import path from "node:path";
import type { Lab, LabError } from "./lab.js";
import { loadLabs } from "./load.js";
import { renderLab } from "./render.js";
import { testLab, type LabTestReport } from "./test-lab.js";
import { createSandboxRunner, sandboxDriver, type DisposableRunner } from "./runners/index.js";
import { existsSync } from "node:fs";
import { startRegistry, type Registry } from "@berth/registry";
import { sandboxDriverFromEnv, sandboxOptionsFromEnv, type SandboxDriver } from "@berth/sandbox";

const USAGE = `usage:
  labkit lint <dir> [--strict]
  labkit render <dir>
  labkit test <dir> [--lab <id>] [--driver <name>] [--jobs <n>]

<dir> holds one folder per lab, each with a lab.md (e.g. labs/).`;

function formatError(e: LabError): string {
  return `${e.file}:${e.line}${e.column ? `:${e.column}` : ""}: ${e.severity === "warning" ? "warning: " : ""}${e.message} (fix: ${e.fix})`;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === "--strict") flags.set("strict", "1");
    else if (a.startsWith("--")) {
      const [k, v] = a.slice(2).split("=", 2);
      flags.set(k!, v ?? rest[++i] ?? "");
    } else positional.push(a);
  }
  const dir = positional[0];
  if (!cmd || !dir || cmd === "help" || cmd === "--help") {
    console.error(USAGE);
    return cmd === "help" || cmd === "--help" ? 0 : 2;
  }
  const { labs, errors, warnings } = await loadLabs(path.resolve(dir));
  const rel = (e: LabError) => {
    const r = path.relative(process.cwd(), e.file);
    return { ...e, file: r && !r.startsWith("..") ? r : e.file };
  };

  switch (cmd) {
    case "lint": {
      const all = [...errors, ...warnings].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
      for (const e of all) console.log(formatError(rel(e)));
      const files = labs.length + new Set(errors.map((e) => e.file)).size;
      const w = warnings.length ? `, ${warnings.length} warning(s)` : ", no warnings";
      console.error(errors.length ? `${errors.length} error(s)${w} in ${files} lab(s)` : `${labs.length} lab(s), no errors${w}`);
      return errors.length || (flags.has("strict") && warnings.length) ? 1 : 0;
    }
    case "render": {
      for (const e of errors) console.error(formatError(rel(e)));
      const titles = new Map(labs.map((l) => [l.id, l.title]));
      console.log(JSON.stringify(labs.map((l) => renderLab(l, undefined, { titleOf: (id) => titles.get(id) })), null, 2));
      return errors.length ? 1 : 0;
    }
    case "test": {
      for (const e of errors) console.error(formatError(rel(e)));
      if (errors.length) {
        console.error("fix the lint errors first");
        return 1;
      }
      const only = flags.get("lab");
      const selected = only ? labs.filter((l) => l.id === only) : labs;
      if (only && selected.length === 0) {
        console.error(`no lab "${only}" in ${dir}; labs: ${labs.map((l) => l.id).join(", ")}`);
        return 2;
      }
      if (flags.has("runner")) {
        // The host runner (an unshare box of labkit's own) is gone: a lab is proved only in the
        // kind of sandbox a learner gets.
        console.error("labkit: --runner is gone: labs are proved in a Berth sandbox; pick its driver with --driver <name>");
        return 2;
      }
      const jobs = Number(flags.get("jobs") ?? 2);
      if (!Number.isInteger(jobs) || jobs < 1 || jobs > 16) {
        console.error(`--jobs ${flags.get("jobs")}: give a whole number from 1 to 16`);
        return 2;
      }
      // The lab registry, as the orchestrator runs it: only where setup has pushed the lab images.
      const registryRoot = process.env.BERTH_REGISTRY_ROOT || path.join(process.env.BERTH_STATE_DIR || "/var/lib/berth", "registry");
      let registry: Registry | undefined;
      if (existsSync(path.join(registryRoot, "data"))) {
        registry = await startRegistry({ root: registryRoot, host: "127.0.0.1" });
      } else {
        console.error(`labkit: no lab registry at ${registryRoot} (setup pushes the lab images there): labs that pull images will fail`);
      }
      try {
        // The sandbox driver: --driver, else BERTH_SANDBOX_DRIVER, else namespaces (as the orchestrator).
        const driverName = flags.get("driver") || sandboxDriverFromEnv(process.env);
        let driver: SandboxDriver;
        try {
          driver = sandboxDriver(driverName, { ...sandboxOptionsFromEnv(process.env), ...(registry ? { registryUpstream: registry.url } : {}) }, (line) => console.error(line));
        } catch (e) {
          console.error(`labkit: ${(e as Error).message}`);
          return 2;
        }
        return await runTests(selected, driver, jobs);
      } finally {
        await registry?.stop();
      }
    }
    default:
      console.error(`unknown command "${cmd}"\n${USAGE}`);
      return 2;
  }
}

/** Proves `labs`, `jobs` at a time, each in a sandbox of its own; reports in the order given. */
async function runTests(selected: Lab[], driver: SandboxDriver, jobs: number): Promise<number> {
  await driver.prepare((line) => console.error(line));
  const started = Date.now();
  const one = async (lab: Lab): Promise<{ ok: boolean; print: () => void }> => {
    let runner: DisposableRunner | undefined;
    try {
      runner = await createSandboxRunner(driver, lab.id);
      const report = await testLab(lab, runner);
      return { ok: report.ok, print: () => printReport(report) };
    } catch (e) {
      return { ok: false, print: () => console.log(`${lab.id}: could not run: ${(e as Error).message}`) };
    } finally {
      await runner?.dispose().catch(() => undefined);
    }
  };
  // A small pool of sandboxes.
  const width = Math.min(jobs, selected.length);
  const results: Promise<{ ok: boolean; print: () => void }>[] = [];
  let next = 0;
  const slots: Promise<void>[] = [];
  const settled = new Map<number, (r: { ok: boolean; print: () => void }) => void>();
  for (let i = 0; i < selected.length; i++) results.push(new Promise((resolve) => settled.set(i, resolve)));
  for (let w = 0; w < width; w++) {
    slots.push(
      (async () => {
        while (next < selected.length) {
          const i = next++;
          settled.get(i)!(await one(selected[i]!));
        }
      })(),
    );
  }
  let ok = true;
  for (const r of results) {
    const done = await r;
    done.print();
    ok &&= done.ok;
  }
  await Promise.all(slots);
  console.log(`\n${selected.length} lab(s) in ${((Date.now() - started) / 1000).toFixed(1)} s, ${width} at a time: ${ok ? "all proved" : "FAILURES above"}`);
  return ok ? 0 : 1;
}

function printReport(r: LabTestReport): void {
  const rows = [["step", "check", "before", "after", "result"]];
  for (const c of r.checks) {
    const show = (run?: { passed: boolean; timedOut: boolean }) => (!run ? "-" : run.timedOut ? "timeout" : run.passed ? "pass" : "fail");
    rows.push([c.stepId, c.checkId, c.waived ? "waived" : show(c.before), show(c.after), c.ok ? "ok" : "FAILED"]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  console.log(`\n${r.labId}: ${r.ok ? "ok" : "FAILED"} (${(r.durationMs / 1000).toFixed(1)} s)`);
  const vars = Object.entries(r.context.vars).map(([k, v]) => `${k}=${v}`).join(" ");
  console.log(`  as the test learner${vars ? ` (${vars})` : ""}; sandbox: cgroup ${r.context.facts.cgroup}, ${r.context.facts.arch}, cpuset ${r.context.facts.cpuset ?? "yes"}`);
  if (r.assets) console.log(`  assets: ${r.assets.problems.length ? "FAILED" : "delivered"}`);
  if (r.setup) console.log(`  setup: exit ${r.setup.exitCode}${r.setup.timedOut ? " (timed out)" : ""}`);
  for (const s of r.stepSetups) console.log(`  setup of ${s.stepId}: exit ${s.run.exitCode}${s.run.timedOut ? " (timed out)" : ""}`);
  for (const row of rows) console.log("  " + row.map((cell, i) => cell.padEnd(widths[i]!)).join("  "));
  for (const q of r.quizzes) console.log(`  quiz ${q.quizId}: right answers ${q.rightPassed ? "pass" : "FAIL"}, ${q.wrongFailed}/${q.wrongTried} wrong answers refused: ${q.ok ? "ok" : "FAILED"}`);
  for (const p of r.assets?.problems ?? []) console.log(`  assets: ${p}`);
  for (const c of r.checks) for (const p of c.problems) console.log(`  ${c.checkId}: ${p}`);
  for (const q of r.quizzes) for (const p of q.problems) console.log(`  ${q.quizId}: ${p}`);
}

main(process.argv.slice(2)).then(
  // Exit once stdout has drained: `render` prints megabytes, and exit() would cut a pipe short.
  (code) => void process.stdout.write("", () => process.exit(code)),
  (e: unknown) => {
    console.error(`labkit: ${(e as Error).stack ?? e}`);
    process.exit(2);
  },
);
