// Trusted checks (SandboxDriver.execTrusted, berth-check): what a root learner can and cannot do to
// a check, each claim of docs/sandboxes.md ("What a root learner can and cannot influence") tried
// for real. Where a trick worked against the old way of running checks (`bash -s` through the
// agent, as the learner's own shell runs), the test shows it working there first, so a pass here
// cannot come from a trick that does nothing.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient, type NamespacesDriver } from "../src/index.js";
import { CGROUP_ROOT, detectCgroupVersion } from "../src/namespaces/cgroups.js";
import { sh, testDriver, testId } from "./sandbox-fixture.js";

/** A script run as grading ran it before trusted checks: `bash -s` through the agent, found on the sandbox's PATH. */
async function agentCheck(client: AgentClient, script: string, timeoutMs = 10_000) {
  const r = await client.request({
    op: "exec",
    cmd: ["bash", "-s"],
    stdin: Buffer.from(script).toString("base64"),
    cwd: "/root",
    env: { HOME: "/root", PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" },
    timeoutMs,
  });
  return { exitCode: r.exitCode, stdout: Buffer.from(r.stdout, "base64").toString("utf8") };
}

/** Runs a learner command and insists it worked (the setup of a trick must not fail silently). */
async function learner(client: AgentClient, script: string, timeoutMs = 20_000): Promise<string> {
  const r = await sh(client, script, { timeoutMs, maxOutputBytes: 8 * 1024 * 1024 });
  if (r.exitCode !== 0) throw new Error(`learner command failed (exit ${r.exitCode}): ${script}\n${r.stderr}`);
  return r.stdout;
}

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Host pids whose command line contains `needle`. */
function hostPidsWith(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ").includes(needle)) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * What a learner's shell can read of every other process while a check runs: each /proc/<pid>'s
 * cmdline and environ, and the contents of its open pipes and files (read with a short timeout).
 * The scanner's own processes are skipped; the host searches the output (the secret is never in
 * the scanner's own arguments).
 */
const SCAN = String.raw`
me=$$
for d in /proc/[0-9]*; do
  p=$(basename "$d")
  [ "$p" = "$me" ] && continue
  ppid=$(awk '/^PPid:/ { print $2 }' "$d/status" 2>/dev/null)
  [ "$ppid" = "$me" ] && continue
  echo "== $p"
  tr '\0' ' ' < "$d/cmdline" 2>/dev/null; echo
  tr '\0' ' ' < "$d/environ" 2>/dev/null; echo
  # (not the agent's and the engine's own pipes: reading them would take the agent's replies)
  case "$(cat "$d/comm" 2>/dev/null)" in node|tini) continue ;; esac
  for f in "$d"/fd/*; do
    t=$(readlink "$f" 2>/dev/null) || continue
    case "$t" in
      pipe:*|/*) (timeout 0.3 head -c 65536 "$f" 2>/dev/null; echo) & ;;
    esac
  done
done
wait
`;

describe("trusted checks: what a root learner cannot influence", () => {
  const driver: NamespacesDriver = testDriver();
  const id = testId("tc");
  const spoiled = testId("tcs");
  let client: AgentClient;
  let spoiledClient: AgentClient;

  beforeAll(async () => {
    await driver.prepare();
    await Promise.all([driver.create({ id, hostname: "trusted" }), driver.create({ id: spoiled, hostname: "spoiled" })]);
    client = await AgentClient.connect(await driver.connect(id));
    spoiledClient = await AgentClient.connect(await driver.connect(spoiled));
  }, 120_000);

  afterAll(async () => {
    client?.close();
    spoiledClient?.close();
    await Promise.all([driver.destroy(id), driver.destroy(spoiled)]);
    await driver.close();
  });

  it("runs a script: exit code, stdout and stderr, the sandbox's hostname, a fixed environment", async () => {
    const r = await driver.execTrusted(id, 'echo out; echo err >&2; hostname; echo "PATH=$PATH HOME=$HOME"; env | wc -l; exit 7', { timeoutMs: 10_000 });
    expect(r.exitCode).toBe(7);
    expect(r.timedOut).toBe(false);
    const lines = r.stdout.toString().trim().split("\n");
    expect(lines.slice(0, 3)).toEqual(["out", "trusted", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/"]);
    // PATH HOME CURL_HOME LANG TERM TMPDIR, and bash's own PWD SHLVL _: nothing of the host's
    expect(Number(lines[3])).toBeLessThanOrEqual(9);
    expect(r.stderr.toString()).toBe("err\n");
  });

  it("a learner's bash and grep earlier in PATH, and a replaced /usr/bin/bash, do not change the outcome", async () => {
    await learner(client, "printf '#!/bin/sh\\necho \"Well done!\"\\n' > /usr/local/bin/bash; cp /usr/local/bin/bash /usr/local/bin/grep; chmod +x /usr/local/bin/bash /usr/local/bin/grep");
    const check = "grep -q the-answer /root/answer.txt && echo 'Well done!'";
    // The old way: the learner's bash runs the check and passes it.
    const old = await agentCheck(client, check);
    expect(old).toEqual({ exitCode: 0, stdout: "Well done!\n" });
    const r = await driver.execTrusted(id, check, { timeoutMs: 10_000 });
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout.toString()).toBe("");

    // Now /usr/bin/bash itself (what `#!/bin/bash` and an absolute path would find).
    // (rm first: the shell running this is /usr/bin/bash, and a running binary cannot be written)
    await learner(client, "rm /usr/local/bin/bash /usr/local/bin/grep; cp /usr/bin/bash /root/real-bash; rm /usr/bin/bash; printf '#!/bin/sh\\necho \"Well done!\"\\n' > /usr/bin/bash; chmod +x /usr/bin/bash");
    try {
      const viaAbsolute = await sh(client, "/usr/bin/bash -c 'exit 1'");
      expect(viaAbsolute.stdout).toBe("Well done!\n");
      const r2 = await driver.execTrusted(id, `${check}; echo "bash is $BASH_VERSION"`, { timeoutMs: 10_000 });
      expect(r2.exitCode).toBe(0); // the echo's status: the grep failed
      expect(r2.stdout.toString()).toMatch(/^bash is 5\./);
      // The check reads the learner's /usr through /sandbox, and its own tools through /usr.
      const r3 = await driver.execTrusted(id, "cat /sandbox/usr/bin/bash | head -c 9; echo; head -c 4 /usr/bin/bash | od -c | head -1", { timeoutMs: 10_000 });
      expect(r3.stdout.toString()).toMatch(/^#!\/bin\/sh\n.*177\s+E\s+L\s+F/);
    } finally {
      // (not through learner(): its /bin/bash is the fake one now)
      const put = await client.request({ op: "exec", cmd: ["/root/real-bash", "-c", "rm /usr/bin/bash; cp /root/real-bash /usr/bin/bash"] });
      expect(put.exitCode).toBe(0);
    }
  });

  it("a learner's ~/.curlrc does not add to a check's curl output", async () => {
    await learner(client, "printf 'write-out = \"hello\"\\n' > /root/.curlrc");
    try {
      const check = '[ "$(curl -s --max-time 2 http://127.0.0.1:9/)" = hello ] && echo served';
      expect((await agentCheck(client, check)).stdout).toBe("served\n");
      const r = await driver.execTrusted(id, check, { timeoutMs: 10_000 });
      expect(r.stdout.toString()).toBe("");
      expect(r.exitCode).not.toBe(0);
    } finally {
      await learner(client, "rm -f /root/.curlrc");
    }
  });

  it("/etc/ld.so.preload and a replaced /dev/null in the sandbox do not reach a check", async () => {
    // A library that ends every process it is loaded into with status 0: every check would pass.
    const work = join(tmpdir(), `berth-preload-${randomBytes(4).toString("hex")}`);
    mkdirSync(work, { recursive: true });
    writeFileSync(join(work, "p.c"), '#include <unistd.h>\n__attribute__((constructor)) static void pass(void) { write(1, "Well done!\\n", 11); _exit(0); }\n');
    execFileSync("cc", ["-shared", "-fPIC", "-o", join(work, "libpass.so"), join(work, "p.c")]);
    const lib = readFileSync(join(work, "libpass.so"));
    rmSync(work, { recursive: true, force: true });
    await spoiledClient.request({ op: "file.write", path: "/root/libpass.so", data: lib.toString("base64"), mode: 0o755 });
    // The learner's /dev/null becomes a file that says something, and the preload goes in last
    // (after it, every new process in the sandbox passes).
    await learner(spoiledClient, "echo learner-was-here > /root/fake-null; mount --bind /root/fake-null /dev/null; echo /root/libpass.so > /etc/ld.so.preload");
    const old = await agentCheck(spoiledClient, "exit 1");
    expect(old).toEqual({ exitCode: 0, stdout: "Well done!\n" });
    const r = await driver.execTrusted(spoiled, "cat /dev/null; test -c /dev/null && echo char-device; exit 3", { timeoutMs: 10_000 });
    expect(r.stdout.toString()).toBe("char-device\n");
    expect(r.exitCode).toBe(3);
    // ... while it reads the learner's state: their preload file and their /dev/null.
    const seen = await driver.execTrusted(spoiled, "cat /sandbox/etc/ld.so.preload /sandbox/dev/null", { timeoutMs: 10_000 });
    expect(seen.stdout.toString()).toBe("/root/libpass.so\nlearner-was-here\n");
  });

  it("a running check's script is nowhere in the sandbox's /proc: not in any cmdline, environ or open fd", async () => {
    const secret = `check-secret-${randomBytes(6).toString("hex")}`;
    // The check sleeps until the test has looked (then the host ends the sleep: the script goes on
    // to its last line), so no fixed wait is paid; the sleep's length is only a safety net.
    const marker = `sleep 60.${Math.floor(Math.random() * 1000) + 1000}`;
    const script = `export MARK=${secret}\n${marker}\n# ${secret}\necho done\n`;
    const endSleep = () => {
      for (const pid of hostPidsWith(marker)) process.kill(pid, "SIGTERM");
    };
    // The old way leaks it: the check's sleep inherits MARK, and its environ is root's to read.
    const oldRun = agentCheck(client, script, 90_000);
    await waitFor(() => hostPidsWith(marker).length > 0);
    let oldScan = "";
    for (let i = 0; i < 10 && !oldScan.includes(secret); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 300));
      oldScan = await learner(client, SCAN);
    }
    expect(oldScan).toContain(secret);
    endSleep();
    expect((await oldRun).stdout).toBe("done\n");

    const run = driver.execTrusted(id, script, { timeoutMs: 90_000 });
    await waitFor(() => hostPidsWith(marker).length > 0);
    const scan = await learner(client, SCAN);
    // (still running when the scan ended: it looked while the check ran)
    expect(hostPidsWith(marker).length).toBeGreaterThan(0);
    // (the scan did look: it saw the agent, and read the learner's own processes)
    expect(scan).toContain("/opt/berth/agent.mjs");
    expect(scan).not.toContain(secret);
    // Nor in a file the learner can reach (the check wrote none; bash keeps small here-documents in pipes).
    expect(await learner(client, `grep -rlsF -- "$(printf '%s' '${secret.slice(0, 12)}')$(printf '%s' '${secret.slice(12)}')" /tmp /root /run /var/tmp /dev/shm; true`)).toBe("");
    endSleep();
    const r = await run;
    expect(r.stdout.toString()).toBe("done\n");
  });

  it("a long script's here-document stays out of the sandbox's /tmp (the check's TMPDIR is its own)", async () => {
    // bash keeps a here-document over 64 KiB in a deleted file in $TMPDIR; `head` holds it open
    // while the pipe is full, and the host reads where it is from head's fd 0.
    const tag = String(Math.floor(Math.random() * 100_000) + 100_000);
    const check = `head -c ${tag} <<'EOF' | (sleep 2; wc -c)\n${"x".repeat(70_000)}\nEOF\n`;
    const heredocOf = async (run: Promise<unknown>) => {
      await waitFor(() => hostPidsWith(`head -c ${tag}`).length > 0);
      const [pid] = hostPidsWith(`head -c ${tag}`);
      const where = readlinkSync(`/proc/${pid}/fd/0`);
      await run;
      return where;
    };
    expect(await heredocOf(agentCheck(client, check))).toMatch(/^\/tmp\/sh-thd.* \(deleted\)$/);
    expect(await heredocOf(driver.execTrusted(id, check, { timeoutMs: 10_000 }))).toMatch(/^\/check-tmp\/sh-thd.* \(deleted\)$/);
  });

  it("the learner cannot see, signal or ptrace a check: no pid of it exists in the sandbox", async () => {
    const digits = String(Math.floor(Math.random() * 1000) + 1000);
    const marker = `sleep 6.${digits}`;
    const check = `${marker} && echo survived`;
    // The old way: the learner finds the check's sleep and kills it. (The pattern is written so
    // that it does not match the killer's own command line.)
    const killer = `for i in $(seq 1 15); do pkill -9 -f 'sleep 6[.]${digits}' && exit 0; sleep 0.05; done; exit 1`;
    const oldRun = agentCheck(client, check);
    await learner(client, killer);
    expect((await oldRun).stdout).toBe("");

    const run = driver.execTrusted(id, check, { timeoutMs: 20_000 });
    await waitFor(() => hostPidsWith(marker).length > 0);
    // The host sees the check's processes; the learner sees none of them, whatever they look for.
    const checkPids = hostPidsWith(marker);
    expect(checkPids.length).toBe(1);
    // Every pid in the sandbox belongs to its own pid namespace; the check's does not.
    const status = readFileSync(`/proc/${checkPids[0]}/status`, "utf8");
    const checkNs = `${readlinkSync(`/proc/${checkPids[0]}/ns/pid`)}\n`;
    expect(status).toMatch(/^NSpid:\s+\d+\s+\d+$/m);
    expect(await learner(client, "readlink /proc/1/ns/pid")).not.toBe(checkNs);
    const found = await sh(client, killer.replace("exit 1", "exit 3"), { timeoutMs: 30_000 });
    expect(found.exitCode).toBe(3);
    // A tracer or a signal needs a pid: kill(2) on every pid the learner can name leaves it alone.
    await sh(client, "for d in /proc/[0-9]*; do p=${d#/proc/}; [ \"$(cat $d/comm)\" = sleep ] && kill -9 $p; done; true");
    const r = await run;
    expect(r.stdout.toString()).toBe("survived\n");
    expect(r.exitCode).toBe(0);
  });

  it("runs under the sandbox's limits, in a cgroup outside the learner's subtree", async () => {
    const marker = `sleep 2.${Math.floor(Math.random() * 1000) + 1000}`;
    const run = driver.execTrusted(id, marker, { timeoutMs: 20_000 });
    await waitFor(() => hostPidsWith(marker).length > 0);
    const [pid] = hostPidsWith(marker);
    expect(pid).toBeDefined();
    const cgroups = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    const under = detectCgroupVersion() === 2 ? [`0::/berth/${id}/check-`] : [`:memory:/berth/${id}/check-`, `:pids:/berth/${id}/check-`];
    for (const u of under) expect(cgroups).toContain(u);
    await run;
    // and the check's cgroup is gone afterwards
    const leftovers = readdirSync(join(CGROUP_ROOT, detectCgroupVersion() === 2 ? "" : "pids", "berth", id)).filter((n) => n.startsWith("check-"));
    expect(leftovers).toEqual([]);
  });

  it("a timeout kills the check's whole tree, background and double-forked processes too", async () => {
    const tag = Math.floor(Math.random() * 100) + 100;
    const script = `sleep 30${tag} & (sleep 31${tag} &) ; setsid sleep 32${tag} & nohup sleep 33${tag} >/dev/null 2>&1 & sleep 34${tag}`;
    const started = Date.now();
    const r = await driver.execTrusted(id, script, { timeoutMs: 1500 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    expect(Date.now() - started).toBeLessThan(5000);
    for (let i = 0; i < 40 && [30, 31, 32, 33, 34].some((n) => hostPidsWith(`sleep ${n}${tag}`).length); i++) await new Promise((res) => setTimeout(res, 50));
    for (const n of [30, 31, 32, 33, 34]) expect(hostPidsWith(`sleep ${n}${tag}`)).toEqual([]);
  });

  it("when a check ends, what it left running ends too (it cannot leave a process behind in the sandbox)", async () => {
    const tag = Math.floor(Math.random() * 100) + 100;
    const r = await driver.execTrusted(id, `setsid sleep 40${tag} >/dev/null 2>&1 < /dev/null & echo started`, { timeoutMs: 10_000 });
    expect(r.stdout.toString()).toBe("started\n");
    for (let i = 0; i < 40 && hostPidsWith(`sleep 40${tag}`).length; i++) await new Promise((res) => setTimeout(res, 50));
    expect(hostPidsWith(`sleep 40${tag}`)).toEqual([]);
  });

  it("sees the learner's state: processes in /proc, files in /root, cgroups, the network, docker through the sandbox's engine", async () => {
    const cg = detectCgroupVersion() === 2 ? "/sys/fs/cgroup/learner-made" : "/sys/fs/cgroup/pids/learner-made";
    await learner(
      client,
      `setsid sleep 4321 >/dev/null 2>&1 < /dev/null &
       echo from-the-learner > /root/note.txt
       mkdir -p ${cg}
       ip link add berth-seen type veth peer name berth-seen1
       for _ in $(seq 1 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
       docker run -d --name seen-by-check busybox sleep 1000 >/dev/null`,
      60_000,
    );
    const r = await driver.execTrusted(
      id,
      `pgrep -x sleep -a | grep -q 'sleep 4321' && echo process
       cat /root/note.txt
       [ -d ${cg} ] && echo cgroup
       ip link show berth-seen >/dev/null && echo network
       docker ps --format '{{.Names}}' | grep -x seen-by-check`,
      { timeoutMs: 30_000 },
    );
    expect(r.stdout.toString()).toBe("process\nfrom-the-learner\ncgroup\nnetwork\nseen-by-check\n");
    // A setup changes the learner's /etc under /sandbox (its own /etc is Berth's, read-only), and
    // runs the learner's programs with chroot /sandbox.
    const setup = await driver.execTrusted(id, "echo from-setup > /sandbox/etc/berth-note; touch /etc/x 2>/dev/null || echo etc-read-only; chroot /sandbox /bin/cat /etc/berth-note", { timeoutMs: 10_000 });
    expect(setup.stdout.toString()).toBe("etc-read-only\nfrom-setup\n");
    expect(await learner(client, "cat /etc/berth-note")).toBe("from-setup\n");
  }, 90_000);

  it("refuses a sandbox that is not running, with the reason", async () => {
    await expect(driver.execTrusted("no-such-sandbox", "true", { timeoutMs: 1000 })).rejects.toThrow(/no sandbox no-such-sandbox/);
    expect(existsSync(driver.sandboxDir(id))).toBe(true);
    // A stopped sandbox: its recorded init is gone, and berth-check says so (no check runs anywhere else).
    await driver.stop(spoiled);
    await expect(driver.execTrusted(spoiled, "true", { timeoutMs: 5000 })).rejects.toThrow(/the trusted check runner failed: (pidfd_open|setns|process \d+ is not in cgroup)/);
  });
});
