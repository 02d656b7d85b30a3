// The orchestrator with the uml driver (BERTH_SANDBOX_DRIVER=uml), as a real process started the way
// the shipped systemd unit starts it: the warm pool fills with a User-mode Linux guest and a learner
// opening a lab gets that guest; after a SIGKILL of the orchestrator and a start on the same data
// directory, the learner finds the same guest, shell, files and progress (and the pool guest left
// by the killed process is destroyed); an orchestrator whose learner never came back reaps the
// guest for idleness and no process of it is left on the host. Every guest boot costs ~10–70 s
// (load), so this file boots only two and is in `npm test`'s slow tier (scripts/test.mjs).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import type { Socket } from "socket.io-client";
import { createUmlDriver, type SandboxInfo } from "@berth/sandbox";
import { REPO_ROOT } from "../src/config.js";
import { signIn, signUp, openLabTerminal, typeLine, freePort, unitCommand } from "./helpers.js";

vi.setConfig({ testTimeout: 600_000, hookTimeout: 300_000 });

const LAB = "namespaces-by-hand";
const CHECK = "uts-hostname";

const instance = `umlo${process.pid}`;
const dataDir = mkdtempSync(path.join(os.tmpdir(), "berth-umlo-"));
// The test's own view of the same state directory the orchestrator's driver uses (list, destroy).
const driver = createUmlDriver();
const mine = async (): Promise<SandboxInfo[]> => (await driver.list()).filter((s) => s.id.startsWith(`${instance}-`));
let child: ChildProcess | undefined;
let port = 0;
const log: string[] = [];
const sockets: Socket[] = [];


/** Starts the orchestrator (uml driver, this test's instance and data dir); resolves with its URL. */
async function launch(env: Record<string, string>): Promise<string> {
  const [program, args] = unitCommand();
  child = spawn(program, args, {
    cwd: REPO_ROOT,
    env: {
      ...process.env, PORT: String(port), HOST: "127.0.0.1", BERTH_DATA_DIR: dataDir, BERTH_INSTANCE: instance,
      BERTH_SANDBOX_DRIVER: "uml", BERTH_SANDBOX_MEMORY_MB: "256", BERTH_SERVE_WEB: "0", BERTH_REGISTRY: "0", LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (b: Buffer) => log.push(b.toString()));
  child.stderr!.on("data", (b: Buffer) => log.push(b.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 240_000; // the first start may build the uml root image
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Berth exited early (${child.exitCode}):\n${log.join("")}`);
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) return url;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Berth did not answer within 240 s:\n${log.join("")}`);
}

async function stop(signal: NodeJS.Signals): Promise<NodeJS.Signals | null> {
  const c = child;
  if (!c || c.exitCode !== null || c.signalCode !== null) return null;
  const exited = new Promise<NodeJS.Signals | null>((resolve) => c.once("exit", (_code, sig) => resolve(sig)));
  c.kill(signal);
  const timer = setTimeout(() => c.kill("SIGKILL"), 60_000);
  const sig = await exited;
  clearTimeout(timer);
  return sig;
}

const warmPool = async (url: string) =>
  ((await fetch(`${url}/healthz`).then((r) => r.json(), () => ({}))) as { warmPool?: number }).warmPool ?? -1;

/** A process's state and start time (fields 3 and 22 of /proc/<pid>/stat), undefined once it is gone. */
function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0]!, start: fields[19]! };
  } catch {
    return undefined;
  }
}

/** The live host processes running as a uid (a guest kernel runs as a uid of its own), with their start times. */
function processesOf(uid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${name}/status`, "utf8"));
      const st = procStat(Number(name));
      if (Number(m?.[1]) === uid && st && st.state !== "Z") out.set(Number(name), st.start);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Which of these processes still run. The same pid with another start time is another process; a
 * zombie is gone too (its parent, a killed orchestrator, left it to an init that may reap late).
 */
const stillRunning = (procs: Map<number, string>): number[] =>
  [...procs].filter(([pid, start]) => {
    const st = procStat(pid);
    return st !== undefined && st.start === start && st.state !== "Z";
  }).map(([pid]) => pid);

const hostUidOf = (id: string): number => (JSON.parse(readFileSync(path.join(driver.sandboxDir(id), "meta.json"), "utf8")) as { hostUid: number }).hostUid;

afterAll(async () => {
  for (const s of sockets) s.close();
  await stop("SIGTERM");
  for (const s of await mine()) await driver.destroy(s.id);
  rmSync(dataDir, { recursive: true, force: true });
}, 180_000);

const openTerminal = (url: string, cookie: string) => openLabTerminal(url, cookie, LAB, sockets);
const type = typeLine;

/**
 * Types a command that prints `<tag>-<answer>-end` and returns the answer. The answer holds no "$",
 * "(" or space: the echo of the typed command itself ("pid-$$-end") is not taken for it.
 */
async function ask(term: { socket: Socket; screen(): string }, tag: string, expr: string): Promise<string> {
  type(term.socket, `echo ${tag}-${expr}-end`);
  let answer = "";
  await expect.poll(() => {
    answer = new RegExp(`${tag}-([^\\s$()]+)-end`).exec(term.screen())?.[1] ?? "";
    return answer;
  }, { timeout: 60_000, interval: 200 }).not.toBe("");
  return answer;
}

async function lifetime(url: string, cookie: string) {
  const res = await fetch(`${url}/api/labs/${LAB}/sandbox`, { headers: { cookie } });
  expect(res.status).toBe(200);
  return (await res.json()) as { sandboxId: string; driver: string; state: string; endedReason: string | null };
}

describe("the orchestrator with the uml driver", () => {
  let url = "";
  let cookie = "";
  let email = "";
  let learnerBox = "";
  let guestPid = 0;
  let shellPid = "";
  let poolBox = "";
  let poolProcs = new Map<number, string>();

  it("fills the warm pool with a guest and hands it to the first learner: a shell on the guest's own kernel", async () => {
    port = await freePort();
    url = await launch({ BERTH_WARM_POOL: "1" });
    await expect.poll(() => warmPool(url), { timeout: 300_000, interval: 1000 }).toBe(1);
    const [pooled, ...more] = await mine();
    expect(more).toEqual([]);
    expect(pooled!.state).toBe("running");

    ({ cookie, email } = await signUp(url, "umlo"));
    const term = await openTerminal(url, cookie);
    const view = await lifetime(url, cookie);
    expect(view).toMatchObject({ sandboxId: pooled!.id, driver: "uml", state: "running" });
    learnerBox = pooled!.id;
    guestPid = pooled!.pid!;

    // A kernel of its own: not the host's release, and UML's /proc/cpuinfo.
    const release = await ask(term, "rel", "$(uname -r)");
    expect(release).not.toBe(os.release());
    expect(await ask(term, "cpu", "$(grep -c 'User Mode Linux' /proc/cpuinfo)")).not.toBe("0");
    shellPid = await ask(term, "pid", "$$");
    expect(shellPid).toMatch(/^\d+$/);
    type(term.socket, `echo kept-${learnerBox} > /root/uml-orchestrator.txt`);

    // The check's task, typed as the learner would, and graded.
    type(term.socket, "setsid -f unshare --uts sh -c 'hostname berth-lab && exec sleep infinity' </dev/null >/dev/null 2>&1; sleep 2; echo task-$((6*7))");
    await expect.poll(() => term.screen(), { timeout: 60_000 }).toMatch(/task-42/);
    const graded = await fetch(`${url}/api/labs/${LAB}/checks/${CHECK}`, { method: "POST", headers: { cookie } });
    expect(graded.status).toBe(200);
    const { result } = (await graded.json()) as { result: { passed: boolean; message: string } };
    expect(result, result.message).toMatchObject({ passed: true });

    // The pool refills with a second guest (the one the killed orchestrator leaves behind below).
    await expect.poll(() => warmPool(url), { timeout: 300_000, interval: 1000 }).toBe(1);
    const refill = (await mine()).filter((s) => s.id !== learnerBox);
    expect(refill.map((s) => s.state)).toEqual(["running"]);
    poolBox = refill[0]!.id;
    poolProcs = processesOf(hostUidOf(poolBox));
    expect(poolProcs.size).toBeGreaterThan(0);
  });

  it("after a SIGKILL and a start on the same data dir: the same guest, shell, file and passed check; the orphaned pool guest is destroyed", async () => {
    expect(learnerBox).not.toBe("");
    const sockBefore = sockets.at(-1)!;
    expect(await stop("SIGKILL")).toBe("SIGKILL");
    await expect.poll(() => sockBefore.connected, { timeout: 10_000 }).toBe(false);
    sockBefore.close();
    // Both guests ran on without their orchestrator.
    expect((await mine()).map((s) => [s.id, s.state]).sort()).toEqual([[learnerBox, "running"], [poolBox, "running"]].sort());

    // What Restart=always does; no pool this time (one guest fewer to boot).
    url = await launch({ BERTH_WARM_POOL: "0" });
    ({ cookie } = await signIn(url, email));
    const term = await openTerminal(url, cookie);
    expect(await lifetime(url, cookie)).toMatchObject({ sandboxId: learnerBox, driver: "uml", state: "running" });
    expect(await ask(term, "again", "$$")).toBe(shellPid);
    expect(await ask(term, "file", "$(cat /root/uml-orchestrator.txt)")).toBe(`kept-${learnerBox}`);
    const [box] = await mine();
    expect(box).toMatchObject({ id: learnerBox, state: "running", pid: guestPid });

    const view = await fetch(`${url}/api/labs/${LAB}`, { headers: { cookie } });
    expect(view.status).toBe(200);
    const { progress } = (await view.json()) as { progress: { checks: Record<string, { passed: boolean }> } };
    expect(progress.checks[CHECK]?.passed).toBe(true);

    // recover() destroyed the pool guest the killed process had made: nothing of it on the host.
    expect((await mine()).map((s) => s.id)).toEqual([learnerBox]);
    expect(existsSync(driver.sandboxDir(poolBox))).toBe(false);
    await expect.poll(() => stillRunning(poolProcs), { timeout: 30_000 }).toEqual([]);
  });

  it("reaps the guest of a learner who did not come back, for idleness, and leaves no process of it", async () => {
    expect(guestPid).toBeGreaterThan(0);
    // The guest kernel's host processes (its launcher is guestPid, root's, not among them).
    const procs = processesOf(hostUidOf(learnerBox));
    expect(procs.size).toBeGreaterThan(0);
    procs.set(guestPid, procStat(guestPid)!.start);
    for (const s of sockets) s.close();
    // A clean stop keeps the learner's guest; the next start counts it idle after 3 s.
    await stop("SIGTERM");
    expect((await mine()).map((s) => s.id)).toEqual([learnerBox]);
    url = await launch({ BERTH_WARM_POOL: "0", BERTH_IDLE_MINUTES: "0.05", BERTH_REAP_SECONDS: "1" });
    ({ cookie } = await signIn(url, email));

    await expect.poll(async () => (await lifetime(url, cookie)).state, { timeout: 120_000, interval: 1000 }).toBe("ended");
    expect(await lifetime(url, cookie)).toMatchObject({ sandboxId: learnerBox, state: "ended", endedReason: "idle" });
    expect(await mine()).toEqual([]);
    await expect.poll(() => stillRunning(procs), { timeout: 30_000 }).toEqual([]);
  });
});
