// testLab against real sandboxes (the unshare runner): the workshop's labs must prove themselves,
// and a lab whose checks prove nothing must be caught.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadLabs, parseLab, runCheck, testLab, type Lab, type LabTestReport } from "../src/index.js";
import { createHostNamespacesRunner } from "../src/runners/index.js";
import { FILE, GOOD } from "./fixtures.js";

const LABS_DIR = path.resolve(import.meta.dirname, "../../../labs");

async function inSandbox(lab: Lab): Promise<LabTestReport> {
  const runner = await createHostNamespacesRunner();
  try {
    return await testLab(lab, runner);
  } finally {
    await runner.dispose();
  }
}

function parse(source: string): Lab {
  const res = parseLab(source, FILE);
  expect(res.errors).toEqual([]);
  return res.lab!;
}

describe("the workshop's labs", async () => {
  const { labs, errors } = await loadLabs(LABS_DIR);

  it("lint clean", () => {
    expect(errors).toEqual([]);
    expect(labs.map((l) => l.id)).toEqual(expect.arrayContaining(["namespaces-by-hand", "cgroups-by-hand"]));
  });

  for (const id of ["namespaces-by-hand", "cgroups-by-hand"]) {
    it(`${id}: every check fails on a fresh sandbox and passes after its solution`, async () => {
      const lab = labs.find((l) => l.id === id)!;
      const report = await inSandbox(lab);
      const problems = report.checks.flatMap((c) => c.problems.map((p) => `${c.checkId}: ${p}`));
      expect(problems).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.checks.length).toBeGreaterThanOrEqual(3);
      expect(report.checks.map((c) => c.checkId)).toEqual(lab.steps.flatMap((s) => s.checks.map((c) => c.id)));
      for (const c of report.checks) {
        expect(c.before).toMatchObject({ passed: false, timedOut: false });
        expect(c.after).toMatchObject({ passed: true });
        // every failure says something a learner can act on, not the generic default
        expect(c.before!.message.length).toBeGreaterThan(20);
        expect(c.before!.message).not.toMatch(/Not done yet/);
      }
      if (lab.setup) expect(report.setup).toMatchObject({ exitCode: 0 });
    });
  }
});

describe("testLab catches labs that prove nothing", () => {
  it("a check that passes before its solution, and one that fails after it", async () => {
    const lab = parse(
      GOOD.replace("test -f /root/made # CHECK-SECRET-1", "true").replace("echo yes > /root/second # SOLUTION-SECRET-2", "echo no > /root/second"),
    );
    const report = await inSandbox(lab);
    expect(report.ok).toBe(false);
    const [first, second] = report.checks;
    expect(first).toMatchObject({ checkId: "file-made", ok: false, before: { passed: true } });
    expect(first!.problems[0]).toMatch(/passes before its solution ran/);
    expect(second).toMatchObject({ checkId: "second-check", ok: false, before: { passed: false }, after: { passed: false } });
    expect(second!.problems[0]).toMatch(/fails after its solution ran: Write yes into \/root\/second/);
  });

  it("a solution that fails is reported with its error", async () => {
    const lab = parse(GOOD.replace("touch /root/made # SOLUTION-SECRET-1", "echo broken >&2; exit 4"));
    const report = await inSandbox(lab);
    expect(report.checks[0]!.problems).toEqual([
      "the solution of step make-file exited 4: broken",
      "fails after its solution ran: No /root/made yet.",
    ]);
    expect(report.checks[1]!.ok).toBe(true);
  });

  it("a failing setup fails every check without running it", async () => {
    const lab = parse(GOOD.replace("echo SETUP-SECRET > /root/setup-was-here", "exit 9"));
    const report = await inSandbox(lab);
    expect(report.ok).toBe(false);
    expect(report.setup!.exitCode).toBe(9);
    expect(report.checks.every((c) => !c.ok && c.before === undefined && /setup failed \(exit 9\)/.test(c.problems[0]!))).toBe(true);
  });

  it("runCheck: the lab's message when a failing check prints nothing, a timeout in words", async () => {
    const lab = parse(GOOD.replace("timeout=5s", "timeout=1s").replace("test -f /root/made # CHECK-SECRET-1", "[ -f /root/slow ] && sleep 5; test -f /root/made"));
    const runner = await createHostNamespacesRunner();
    try {
      const check = lab.steps[0]!.checks[0]!;
      expect(await runCheck(check, runner)).toMatchObject({ passed: false, message: "No /root/made yet." });
      await runner.exec("touch /root/made", { timeoutMs: 5000 });
      expect(await runCheck(check, runner)).toMatchObject({ passed: true, message: "Done." });
      await runner.exec("touch /root/slow", { timeoutMs: 5000 });
      expect(await runCheck(check, runner)).toMatchObject({ passed: false, timedOut: true, message: "The check did not finish within 1 s." });
    } finally {
      await runner.dispose();
    }
  });
});

describe("the labs' checks turn down near misses, with a message that says what is off", async () => {
  const { labs } = await loadLabs(LABS_DIR);
  const check = (labId: string, checkId: string) => labs.find((l) => l.id === labId)!.steps.flatMap((s) => s.checks).find((c) => c.id === checkId)!;

  it("namespaces-by-hand", async () => {
    const runner = await createHostNamespacesRunner();
    const attempt = async (script: string, checkId: string) => {
      const r = await runner.exec(script, { timeoutMs: 10_000 });
      expect(r.stderr).toBe("");
      return runCheck(check("namespaces-by-hand", checkId), runner);
    };
    try {
      let res = await attempt("setsid -f unshare --uts sh -c 'hostname wrong-name && exec sleep infinity' </dev/null >/dev/null 2>&1; sleep 0.3", "uts-hostname");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/its hostname is not berth-lab/) });
      // a PID namespace without --mount-proc: its /proc still shows the sandbox's processes
      res = await attempt("setsid -f unshare --pid --fork sleep infinity </dev/null >/dev/null 2>&1; sleep 0.3", "pid-one");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/add --mount-proc/) });
      // a child started by the namespace's own PID 1 did not join from outside
      res = await attempt("setsid -f unshare --pid --fork --mount-proc sh -c 'sleep infinity & wait' </dev/null >/dev/null 2>&1; sleep 0.3", "nsenter-join");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/No process has joined/) });
      res = await attempt("ip netns add berth-net; ip link add veth-host type veth peer name veth-lab; ip link set veth-lab netns berth-net", "netns-veth");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/veth-host has no address 10\.200\.0\.1\/24/) });
    } finally {
      await runner.dispose();
    }
  });

  it("cgroups-by-hand", async () => {
    const runner = await createHostNamespacesRunner();
    const v2 = (await runner.exec("test -f /sys/fs/cgroup/cgroup.controllers", { timeoutMs: 5000 })).exitCode === 0;
    const mem = v2 ? "/sys/fs/cgroup/berth-demo" : "/sys/fs/cgroup/memory/berth-demo";
    const pids = v2 ? "/sys/fs/cgroup/berth-bomb" : "/sys/fs/cgroup/pids/berth-bomb";
    const attempt = async (script: string, checkId: string) => {
      const r = await runner.exec(script, { timeoutMs: 10_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      return runCheck(check("cgroups-by-hand", checkId), runner);
    };
    try {
      let res = await attempt(`echo ${v2 ? 1 : 2} > /root/cgroup-version`, "cgroup-version");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/says '[12]'. Look again/) });
      const setLimit = v2
        ? `mkdir /sys/fs/cgroup/init; for p in $(cat /sys/fs/cgroup/cgroup.procs); do echo $p > /sys/fs/cgroup/init/cgroup.procs; done; echo "+memory +pids" > /sys/fs/cgroup/cgroup.subtree_control; mkdir ${mem}; echo 64M > ${mem}/memory.max` : `mkdir ${mem}; echo 64M > ${mem}/memory.limit_in_bytes`;
      res = await attempt(setLimit, "memory-limit");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/is 67108864, not 33554432/) });
      res = await attempt(`setsid -f sh -c 'echo $$ > ${mem}/cgroup.procs; exec sleep infinity' </dev/null >/dev/null 2>&1; sleep 0.3`, "shell-inside");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/holds \d+\(sleep\), but no shell/) });
      // a bomb that is contained but still running
      res = await attempt(
        `mkdir ${pids}; echo 20 > ${pids}/pids.max; setsid -f bash -c "echo \\$\\$ > ${pids}/cgroup.procs; bomb() { bomb | bomb & }; bomb" </dev/null >/dev/null 2>&1; sleep 1`,
        "fork-bomb",
      );
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/contained \(\d+ processes, \d+ forks refused\) but still burning/) });
    } finally {
      await runner.dispose();
    }
  });
});
