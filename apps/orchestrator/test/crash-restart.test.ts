// A crash keeps every learner's shell and grade: a real orchestrator process, started the way the
// shipped systemd unit starts it (its ExecStart line), is killed with SIGKILL (no close(), no exit
// hooks) after a learner passed a check; started again, the learner finds the same shell process
// and the passed check.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Socket } from "socket.io-client";
import { createNamespacesDriver } from "@berth/sandbox";
import { REPO_ROOT } from "../src/config.js";
import { signIn, openLabTerminal, typeLine, freePort, unitCommand } from "./helpers.js";

const LAB = "namespaces-by-hand";
const CHECK = "uts-hostname";
const ADMIN = { email: "crash-admin@example.org", password: "crash admin password" };


const instance = `crash${process.pid}`;
const dataDir = mkdtempSync(path.join(os.tmpdir(), "berth-crash-"));
const driver = createNamespacesDriver();
let child: ChildProcess | undefined;
let port = 0;
const log: string[] = [];
const sockets: Socket[] = [];

async function launch(): Promise<string> {
  const [program, args] = unitCommand();
  child = spawn(program, args, {
    cwd: REPO_ROOT,
    env: {
      ...process.env, PORT: String(port), HOST: "127.0.0.1", BERTH_DATA_DIR: dataDir, BERTH_INSTANCE: instance,
      BERTH_SERVE_WEB: "0", BERTH_REGISTRY: "0", BERTH_WARM_POOL: "0", LOG_LEVEL: "warn",
      BERTH_ADMIN_EMAIL: ADMIN.email, BERTH_ADMIN_PASSWORD: ADMIN.password,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (b: Buffer) => log.push(b.toString()));
  child.stderr!.on("data", (b: Buffer) => log.push(b.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Berth exited early (${child.exitCode}):\n${log.join("")}`);
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) return url;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Berth did not answer within 120 s:\n${log.join("")}`);
}

afterAll(async () => {
  for (const s of sockets) s.close();
  if (child && child.exitCode === null) {
    const c = child;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGTERM");
      setTimeout(() => c.kill("SIGKILL"), 30_000).unref();
    });
  }
  for (const s of await driver.list()) if (s.id.startsWith(`${instance}-`)) await driver.destroy(s.id);
}, 120_000); // a busy machine: the orchestrator's close() and the destroy must not be cut short

const openTerminal = (url: string, cookie: string) => openLabTerminal(url, cookie, LAB, sockets);
const type = typeLine;

async function shellPid(term: { socket: Socket; screen(): string }, tag: string): Promise<number> {
  type(term.socket, `echo ${tag}-$$-end`);
  let pid = 0;
  await expect.poll(() => {
    pid = Number(new RegExp(`${tag}-(\\d+)-end`).exec(term.screen())?.[1] ?? 0);
    return pid;
  }, { timeout: 30_000 }).toBeGreaterThan(0);
  return pid;
}

describe("a crash keeps every learner's shell and grade", () => {
  it("kill -9 of the orchestrator, then a restart: the same shell process and the passed check", async () => {
    port = await freePort();
    let url = await launch();
    // A learner (through the API, as the web form does: sign up, then sign in).
    const email = `crash-${process.pid}@example.org`;
    const password = "crash learner password";
    expect((await fetch(`${url}/api/auth/signup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password }) })).status).toBe(200);
    const { cookie } = await signIn(url, email, password);

    const before = await openTerminal(url, cookie);
    const pidBefore = await shellPid(before, "before");
    // The check's task, typed as the learner would.
    type(before.socket, "setsid -f unshare --uts sh -c 'hostname berth-lab && exec sleep infinity' </dev/null >/dev/null 2>&1; sleep 1; echo task-$((6*7))");
    await expect.poll(() => before.screen(), { timeout: 30_000 }).toMatch(/task-42/);
    const graded = await fetch(`${url}/api/labs/${LAB}/checks/${CHECK}`, { method: "POST", headers: { cookie } });
    expect(graded.status).toBe(200);
    const { result } = (await graded.json()) as { result: { passed: boolean; message: string } };
    expect(result, result.message).toMatchObject({ passed: true });

    // No close(), no exit hook: the process is gone at once.
    const pid = child!.pid!;
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child!.once("exit", (_code, signal) => resolve(signal)));
    process.kill(pid, "SIGKILL");
    expect(await exited).toBe("SIGKILL");
    await expect.poll(() => before.socket.connected, { timeout: 10_000 }).toBe(false);
    before.socket.close();
    expect((await driver.list()).filter((s) => s.id.startsWith(`${instance}-`)).length).toBe(1); // the sandbox ran on

    url = await launch(); // what Restart=always does
    const { cookie: again } = await signIn(url, email, password);
    const after = await openTerminal(url, again);
    await expect.poll(() => after.screen(), { timeout: 10_000 }).toMatch(/task-42/); // the screen came back
    expect(await shellPid(after, "after")).toBe(pidBefore);

    const view = await fetch(`${url}/api/labs/${LAB}`, { headers: { cookie: again } });
    expect(view.status).toBe(200);
    const { progress } = (await view.json()) as { progress: { checks: Record<string, { passed: boolean }> } };
    expect(progress.checks[CHECK]?.passed).toBe(true);
  }, 300_000);
});
