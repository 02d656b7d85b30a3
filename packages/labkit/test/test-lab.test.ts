// testLab against real Berth sandboxes (the namespaces driver, as `labkit test` runs it): the
// workshop's labs must prove themselves, and a lab whose checks prove nothing must be caught. As root.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { rm } from "node:fs/promises";
import { learnerVariables, loadLabs, parseLab, runCheck, testLab, TEST_LEARNER, type Lab, type LabTestReport } from "../src/index.js";
import { inLabSandbox, labSandbox } from "./lab-sandbox.js";
import { FILE, GOOD, V2, writeV2Lab } from "./fixtures.js";

const LABS_DIR = path.resolve(import.meta.dirname, "../../../labs");

function inSandbox(lab: Lab): Promise<LabTestReport> {
  return inLabSandbox(lab.id, (runner) => testLab(lab, runner));
}

function parse(source: string): Lab {
  const res = parseLab(source, FILE);
  expect(res.errors).toEqual([]);
  return res.lab!;
}

describe("the workshop's labs", async () => {
  const { labs, errors, warnings } = await loadLabs(LABS_DIR);

  it("lint clean", () => {
    expect(errors).toEqual([]);
    expect(labs.map((l) => l.id)).toEqual(expect.arrayContaining(["namespaces-by-hand", "cgroups-by-hand"]));
  });

  it("the first four labs use format v2: no warnings, hints for every check, a quiz, a recap, chained", () => {
    const four = ["networking", "volumes", "namespaces-by-hand", "cgroups-by-hand"].map((id) => labs.find((l) => l.id === id)!);
    expect(warnings.filter((w) => four.some((l) => l.file === w.file))).toEqual([]);
    for (const lab of four) {
      expect(lab.recap, lab.id).not.toBeNull();
      expect(lab.steps.flatMap((s) => s.quizzes).length, lab.id).toBeGreaterThanOrEqual(1);
      expect(lab.steps.flatMap((s) => s.checks).filter((c) => c.hints.length === 0).map((c) => c.id), lab.id).toEqual([]);
    }
    // The workshop runs in chapter order: 12, 13, (14), 15, 16, (17).
    expect(four.map((l) => l.next)).toEqual(["volumes", "limiting-resources", "cgroups-by-hand", "container-security"]);
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
      // A lab takes 25-40 s here alone (a loaded machine doubles that).
    }, 180_000);
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
    const runner = await labSandbox("run-check");
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

describe("testLab on format v2: assets, step setups in order, variables, facts, quizzes", () => {
  async function v2Lab(source = V2): Promise<{ lab: Lab; done: () => Promise<void> }> {
    const file = await writeV2Lab(source);
    const { labs, errors } = await loadLabs(path.dirname(file));
    expect(errors).toEqual([]);
    return { lab: labs[0]!, done: () => rm(path.dirname(path.dirname(file)), { recursive: true, force: true }) };
  }

  it("proves the v2 lab as the test learner, with the sandbox's facts", async () => {
    const { lab, done } = await v2Lab();
    try {
      const report = await inSandbox(lab);
      expect([...report.checks.flatMap((c) => c.problems), ...report.quizzes.flatMap((q) => q.problems), ...(report.assets?.problems ?? [])]).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.context.vars).toEqual(learnerVariables(lab, TEST_LEARNER));
      expect(["v1", "v2"]).toContain(report.context.facts.cgroup);
      expect(report.context.facts.arch).toMatch(/^[a-z0-9_]+$/);
      expect(report.assets).toMatchObject({ exitCode: 0, problems: [] });
      expect(report.stepSetups.map((s) => [s.stepId, s.run.exitCode])).toEqual([["asset", 0]]);
      expect(report.checks.map((c) => [c.checkId, c.before?.passed, c.after?.passed])).toEqual([
        ["ns-named", false, true],
        ["token-copied", false, true],
        ["asset-run", false, true],
      ]);
      expect(report.quizzes).toEqual([{ quizId: "v2-quiz", stepId: "asset", rightPassed: true, wrongTried: 5, wrongFailed: 5, ok: true, problems: [] }]);
    } finally {
      await done();
    }
  });

  it("catches a quiz that accepts a wrong answer and a step setup that fails", async () => {
    const { lab, done } = await v2Lab(V2.replace("~ cp( -[a-z]+)?", "~ .*").replace('echo "step two reached" > /root/step-two # STEP-SETUP-SECRET', "exit 3"));
    try {
      const report = await inSandbox(lab);
      expect(report.ok).toBe(false);
      expect(report.quizzes[0]!.problems).toEqual(['question q3 accepts the wrong answer "labkit: certainly not the answer"']);
      expect(report.stepSetups.map((s) => [s.stepId, s.run.exitCode])).toEqual([["asset", 3]]);
      expect(report.checks.find((c) => c.checkId === "asset-run")!.problems[0]).toMatch(/^not run: the setup of step asset exited 3/);
      expect(report.checks.find((c) => c.checkId === "ns-named")!.ok).toBe(true);
    } finally {
      await done();
    }
  });

  it("a check that relies on a variable fails when run without the learner's values", async () => {
    const { lab, done } = await v2Lab();
    try {
      const runner = await labSandbox("vars");
      try {
        await runner.exec(`echo ${learnerVariables(lab, TEST_LEARNER).netns} > /root/ns-name`, { timeoutMs: 5000 });
        const check = lab.steps[0]!.checks[0]!;
        expect((await runCheck(check, runner)).passed).toBe(false); // {{var.netns}} left as is, no BERTH_VAR_NETNS
        const report = await testLab(lab, runner, { context: { vars: { ...learnerVariables(lab, TEST_LEARNER) }, facts: { cgroup: "v2", arch: "x86_64" } } });
        expect(report.checks[0]!.before!.passed).toBe(true); // already done: the report says so
        expect(report.checks[0]!.problems[0]).toMatch(/passes before its solution ran/);
      } finally {
        await runner.dispose();
      }
    } finally {
      await done();
    }
  });
});

describe("the labs' checks turn down near misses, with a message that says what is off", async () => {
  const { labs } = await loadLabs(LABS_DIR);
  const check = (labId: string, checkId: string) => labs.find((l) => l.id === labId)!.steps.flatMap((s) => s.checks).find((c) => c.id === checkId)!;

  it("namespaces-by-hand", async () => {
    const runner = await labSandbox("near-ns");
    const lab = labs.find((l) => l.id === "namespaces-by-hand")!;
    const vars = learnerVariables(lab, TEST_LEARNER);
    const ctx = { vars, facts: { cgroup: "v1" as const, arch: "x86_64" } };
    const attempt = async (script: string, checkId: string) => {
      const r = await runner.exec(script, { timeoutMs: 10_000 });
      expect(r.stderr).toBe("");
      return runCheck(check("namespaces-by-hand", checkId), runner, ctx);
    };
    try {
      let res = await attempt("setsid -f unshare --uts sh -c 'hostname wrong-name && exec sleep infinity' </dev/null >/dev/null 2>&1; sleep 0.3", "uts-hostname");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/its hostname is not berth-lab/) });
      // a PID namespace without --mount-proc: its /proc still shows the sandbox's processes
      res = await attempt("setsid -f unshare --pid --fork sleep infinity </dev/null >/dev/null 2>&1; sleep 0.3", "pid-one");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/add --mount-proc/) });
      // a mount made in the sandbox's own mount namespace is seen by everyone
      res = await attempt(`mkdir -p /mnt/${vars.dir} && mount -t tmpfs tmpfs /mnt/${vars.dir}`, "mount-private");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/is mounted in the sandbox's own mount namespace/) });
      await attempt(`umount /mnt/${vars.dir}`, "mount-private");
      // root made the user namespace: root inside is root outside, not the learner's UID
      res = await attempt("setsid -f unshare --user --map-root-user sleep infinity </dev/null >/dev/null 2>&1; sleep 0.3", "userns-root");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(new RegExp(`uid_map: 0 0 1.*not root inside mapped from UID ${vars.uid}`)) });
      // a child started by the namespace's own PID 1 did not join from outside
      res = await attempt("setsid -f unshare --pid --fork --mount-proc sh -c 'sleep infinity & wait' </dev/null >/dev/null 2>&1; sleep 0.3", "nsenter-join");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/No process has joined/) });
      // joined the PID namespace, but not the berth-lab UTS namespace
      res = await attempt(
        "t=$(for s in /proc/[0-9]*/status; do [ \"$(awk '/^NSpid:/ { print $NF }' $s 2>/dev/null)\" = 1 ] && p=${s#/proc/} && [ \"$(cat /proc/${p%%/*}/comm 2>/dev/null)\" = sh ] && echo ${p%%/*}; done | head -n 1); setsid -f nsenter --target $t --pid --mount sleep infinity </dev/null >/dev/null 2>&1; sleep 0.3",
        "nsenter-join",
      );
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/joined the PID namespace from outside, but not the UTS namespace/) });
      const ns = `/run/netns/${vars.netns}`;
      res = await attempt(`ip netns add ${vars.netns}; ip link add veth-host type veth peer name veth-lab; ip link set veth-lab netns ${vars.netns}`, "netns-veth");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(new RegExp(`veth-host has no address 10\\.${vars.net}\\.0\\.1/24`)) });
      // wired and up, but no packet sent: the neighbour table is still empty
      res = await attempt(
        `ip addr add 10.${vars.net}.0.1/24 dev veth-host; ip link set veth-host up; nsenter --net=${ns} ip addr add 10.${vars.net}.0.2/24 dev veth-lab; nsenter --net=${ns} ip link set veth-lab up; nsenter --net=${ns} ip link set lo up`,
        "netns-veth",
      );
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/is wired .* but no IPv4 packet has crossed yet/) });
      // any IPv4 packet teaches the sandbox the other end's MAC (this machine may have no ping)
      res = await attempt(`timeout 2 bash -c 'exec 3<>/dev/tcp/10.${vars.net}.0.2/9' 2>/dev/null; true`, "netns-veth");
      expect(res).toMatchObject({ passed: true, message: expect.stringMatching(/a ping crossed/) });
    } finally {
      await runner.dispose();
    }
  });

  it("cgroups-by-hand", async () => {
    const runner = await labSandbox("near-cg");
    const v2 = (await runner.exec("test -f /sys/fs/cgroup/cgroup.controllers", { timeoutMs: 5000 })).exitCode === 0;
    const mem = v2 ? "/sys/fs/cgroup/berth-demo" : "/sys/fs/cgroup/memory/berth-demo";
    const pids = v2 ? "/sys/fs/cgroup/berth-bomb" : "/sys/fs/cgroup/pids/berth-bomb";
    const vars = learnerVariables(labs.find((l) => l.id === "cgroups-by-hand")!, TEST_LEARNER);
    const ctx = { vars, facts: { cgroup: v2 ? ("v2" as const) : ("v1" as const), arch: "x86_64" } };
    const busy = v2 ? "/sys/fs/cgroup/berth-busy" : "/sys/fs/cgroup/cpu/berth-busy";
    const freezer = v2 ? "/sys/fs/cgroup/berth-busy" : "/sys/fs/cgroup/freezer/berth-busy";
    const attempt = async (script: string, checkId: string) => {
      const r = await runner.exec(script, { timeoutMs: 10_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      return runCheck(check("cgroups-by-hand", checkId), runner, ctx);
    };
    try {
      // a line of the wrong hierarchy (on v1, the v2 one that holds no controllers here)
      let res = await attempt(v2 ? "echo 9:cpu:/ > /root/cgroup-line" : "echo 0::/ > /root/cgroup-line", "cgroup-version");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(v2 ? /is a hierarchy of cpu, not the one that holds memory/ : /is the v2 hierarchy's line/) });
      const want = Number(vars.mem) * 1024 * 1024;
      const setLimit = v2
        ? `mkdir /sys/fs/cgroup/init; for p in $(cat /sys/fs/cgroup/cgroup.procs); do echo $p > /sys/fs/cgroup/init/cgroup.procs; done; echo "+memory +pids" > /sys/fs/cgroup/cgroup.subtree_control; mkdir ${mem}; echo 64M > ${mem}/memory.max` : `mkdir ${mem}; echo 64M > ${mem}/memory.limit_in_bytes`;
      res = await attempt(setLimit, "memory-limit");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(new RegExp(`is 67108864, not ${want}`)) });
      // the right limit, with swap still open (on v1 a new cgroup inherits the sandbox's swappiness,
      // which is 0 in a Berth sandbox: open it as a host's default 60 would)
      res = await attempt(v2 ? `echo max > ${mem}/memory.swap.max; echo ${want} > ${mem}/memory.max` : `echo ${want} > ${mem}/memory.limit_in_bytes; echo 60 > ${mem}/memory.swappiness`, "memory-limit");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/would be swapped instead of stopped/) });
      res = await attempt(`setsid -f sh -c 'echo $$ > ${mem}/cgroup.procs; exec sleep infinity' </dev/null >/dev/null 2>&1; sleep 0.3`, "shell-inside");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/holds \d+\(sleep\), but no shell/) });
      // a bomb that is contained but still running
      res = await attempt(
        `mkdir ${pids}; echo 20 > ${pids}/pids.max; setsid -f bash -c "echo \\$\\$ > ${pids}/cgroup.procs; bomb() { bomb | bomb & }; bomb" </dev/null >/dev/null 2>&1; sleep 1`,
        "fork-bomb",
      );
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/contained \(\d+ processes, \d+ forks refused\) but still burning/) });
      // a quota of a whole CPU instead of the learner's share
      res = await attempt(
        v2
          ? `echo +cpu > /sys/fs/cgroup/cgroup.subtree_control; mkdir ${busy}; echo "100000 100000" > ${busy}/cpu.max`
          : `mkdir ${busy}; echo 100000 > ${busy}/cpu.cfs_quota_us`,
        "cpu-quota",
      );
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(new RegExp(`that is 100% of one CPU, not ${vars.cpu}%`)) });
      // frozen, then left frozen: the clean-up check names the process and why kill did not reach it
      const freeze = v2
        ? `setsid -f bash -c 'echo $$ > ${busy}/cgroup.procs; while :; do :; done' </dev/null >/dev/null 2>&1; sleep 0.3; echo 1 > ${freezer}/cgroup.freeze; sleep 0.3`
        : `mkdir ${freezer}; setsid -f bash -c 'echo $$ > ${busy}/cgroup.procs; echo $$ > ${freezer}/cgroup.procs; while :; do :; done' </dev/null >/dev/null 2>&1; sleep 0.3; echo FROZEN > ${freezer}/freezer.state; sleep 0.3`;
      res = await attempt(freeze, "cleanup");
      expect(res).toMatchObject({ passed: false, message: expect.stringMatching(/\(bash, state [DST]\) still runs in berth-busy/) });
    } finally {
      // thaw what the near misses froze, or nothing in the box can be killed
      await runner.exec(v2 ? `echo 0 > ${freezer}/cgroup.freeze` : `echo THAWED > ${freezer}/freezer.state`, { timeoutMs: 5000 }).catch(() => {});
      await runner.dispose();
    }
  });
});
