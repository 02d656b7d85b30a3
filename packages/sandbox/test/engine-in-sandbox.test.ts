// The container engine inside a learner's sandbox: the agent starts it, and the real docker CLI in
// the sandbox drives it. One sandbox for the whole file; every command goes through the agent's
// exec, exactly as a lab check or the learner's terminal would run it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AgentClient } from "../src/index.js";
import { sandboxRss, sh, testDriver, testId } from "./sandbox-fixture.js";

const driver = testDriver();
const id = testId("eng");
let client: AgentClient;
let createMs = 0;

/** Polls `docker version` until the engine answers (it starts after the agent's first health reply). */
async function waitForEngine(timeoutMs = 20_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const r = await sh(client, "docker version --format '{{.Server.Version}}' 2>&1", { timeoutMs: 10_000 });
    if (r.exitCode === 0) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`the engine did not answer within ${timeoutMs} ms: ${r.stdout}\n${(await sh(client, "cat /var/log/berth-engine.log")).stdout}`);
    await new Promise((r2) => setTimeout(r2, 100));
  }
}

beforeAll(async () => {
  await driver.prepare();
  const t0 = Date.now();
  await driver.create({ id, hostname: "docker-lab" });
  createMs = Date.now() - t0;
  client = await AgentClient.connect(await driver.connect(id));
  const readyMs = await waitForEngine();
  console.log(`sandbox create() ${createMs} ms; engine answering ${readyMs} ms after create() returned`);
}, 60_000);

afterAll(async () => {
  client?.close();
  await driver.destroy(id);
});

describe("the engine in a sandbox", () => {
  it("answers `docker version` on the sandbox's own /var/run/docker.sock, with its log readable", async () => {
    const r = await sh(client, "docker version --format '{{.Server.Os}} {{.Server.APIVersion}}'; test -S /var/run/docker.sock && echo socket; grep -c 'serving the Docker API' /var/log/berth-engine.log");
    expect(r.stdout).toBe("linux 1.45\nsocket\n1\n");
    // The client carries no CLI plugins: no buildx, so `docker build` is the engine's legacy builder.
    const plugins = await sh(client, "docker buildx version 2>&1; ls /usr/libexec/docker/cli-plugins /usr/local/lib/docker/cli-plugins 2>&1 | grep -c 'No such file'");
    expect(plugins.stdout).toMatch(/unknown command|is not a docker command/);
    expect(plugins.stdout.trim().split("\n").pop()).toBe("2");
    expect(createMs).toBeLessThan(5000);
  });

  it("runs `docker run --rm busybox echo hello`", async () => {
    const r = await sh(client, "docker run --rm busybox echo hello");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hello\n");
    expect(r.exitCode).toBe(0);
  });

  it("gives a container the harmless devices and a read-only /sys, with limits in the sandbox's own cgroups", async () => {
    const r = await sh(
      client,
      "docker run --rm --memory 64m busybox sh -c 'echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c && touch /sys/x 2>&1 | grep -c Read-only && cat /proc/self/cgroup | grep memory:'",
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^4\n4\n1\n\d+:memory:\/berth-engine\/[0-9a-f]{64}\n$/);
  });

  it("replaces a directory that comes from the image (overlayfs markers in user.overlay.*), and diff/commit see it", async () => {
    // Without `userxattr` a nested overlay cannot mark /usr/sbin opaque and `rm -rf` fails with EIO.
    const r = await sh(
      client,
      "docker run --name cow busybox sh -c 'rm -rf /usr/sbin && mkdir /usr/sbin && touch /usr/sbin/new && ls /usr/sbin' && docker diff cow | grep -c '^D /usr/sbin/' && docker commit cow cow-img >/dev/null && docker run --rm cow-img ls /usr/sbin && docker rm cow >/dev/null",
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^new\n[1-9]\d*\nnew\n$/);
  });

  it("runs a detached container that `docker ps` lists and `docker exec` enters", async () => {
    // Docker's own rule (moby's RestrictedNamePattern): a name has at least two characters.
    expect((await sh(client, "docker run -d --name t busybox true 2>&1")).stdout).toContain("Invalid container name (t)");
    const run = await sh(client, "docker run -d --name t1 busybox sleep 1000");
    expect(run.exitCode).toBe(0);
    const cid = run.stdout.trim();
    expect(cid).toMatch(/^[0-9a-f]{64}$/);
    const ps = await sh(client, "docker ps --format '{{.Names}} {{.Status}}'");
    expect(ps.stdout).toMatch(/^t1 Up /m);
    const exec = await sh(client, "docker exec t1 hostname");
    expect(exec.stdout).toBe(`${cid.slice(0, 12)}\n`);
  });

  it("shows a container's processes in the sandbox's ps, and never the host's", async () => {
    // A process on the host with a name that must not show up inside.
    const marker = `berth-host-marker-${process.pid}`;
    const host: ChildProcess = spawn("bash", ["-c", `exec -a ${marker} sleep 60`], { stdio: "ignore" });
    try {
      await new Promise((r) => setTimeout(r, 100));
      expect(readFileSync(`/proc/${host.pid}/cmdline`, "utf8")).toContain(marker);
      const ps = (await sh(client, "ps -eo args --no-headers")).stdout;
      expect(ps).toMatch(/^sleep 1000$/m); // the container `t`, a child of the engine in this sandbox
      expect(ps).toMatch(/\/opt\/berth\/engine\.mjs --root \/var\/lib\/berth\/engine --socket \/var\/run\/docker\.sock/);
      expect(ps).not.toContain(marker);
      expect(ps).not.toMatch(/vitest|dockerd|containerd/);
    } finally {
      host.kill("SIGKILL");
    }
  });

  it("OOM-kills a container at its --memory limit while the sandbox survives", async () => {
    const before = await driver.oomKills(id);
    // tail keeps every byte while it looks for the last newline of /dev/zero: an endless hog.
    const r = await sh(client, "docker run --name hog --memory 32m busybox tail /dev/zero; echo exit=$?", { timeoutMs: 30_000 });
    expect(r.stdout).toBe("exit=137\n");
    const oom = await sh(client, "docker inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' hog");
    expect(oom.stdout).toBe("true 137\n");
    // The kill happened in the container's own cgroup (berth-engine/<id>, which the engine removes
    // when the container exits), not at the sandbox's limit: the sandbox's own cgroups saw none.
    expect(await driver.oomKills(id)).toBe(before);
    expect((await sh(client, "docker rm hog")).exitCode).toBe(0);
    // The sandbox, its agent and its engine are all still there.
    expect((await client.request({ op: "health" })).hostname).toBe("docker-lab");
    expect((await sh(client, "docker ps --format '{{.Names}}'")).stdout).toBe("t1\n");
  });

  it("measures `docker run --rm busybox true` and the idle memory of the sandbox", async () => {
    const r = await sh(client, "for i in $(seq 20); do s=$(date +%s%N); docker run --rm busybox true || exit 1; echo $(( ($(date +%s%N) - s) / 1000000 )); done", { timeoutMs: 60_000 });
    expect(r.exitCode).toBe(0);
    const ms = r.stdout.trim().split("\n").map(Number).sort((a, b) => a - b);
    expect(ms).toHaveLength(20);
    const p50 = ms[9]!;
    const p90 = ms[17]!;
    const stats = await driver.stats(id);
    const cgroupProcs = join("/sys/fs/cgroup/pids", "berth", id, "box", "cgroup.procs");
    let rss = 0;
    try {
      rss = sandboxRss(readFileSync(cgroupProcs, "utf8").trim().split("\n").map(Number));
    } catch {
      // v2 host: the per-process RSS figure is only printed on v1 here.
    }
    console.log(`docker run --rm busybox true in a sandbox: p50 ${p50} ms, p90 ${p90} ms; sandbox with engine + 1 container: cgroup memory ${(stats.memoryBytes / 1048576).toFixed(1)} MiB, RSS ${(rss / 1048576).toFixed(1)} MiB, ${stats.pids} tasks`);
    expect(p90).toBeLessThan(3000);
  });

  it("restarts the engine when it dies; docker fails clearly (never hangs) meanwhile", async () => {
    const kill = await sh(client, "kill -9 $(pgrep -f '^/usr/bin/node /opt/berth/engine.mjs'); t=$(date +%s%N); docker ps >/dev/null 2>/tmp/err; echo rc=$? ms=$(( ($(date +%s%N) - t) / 1000000 )); cat /tmp/err");
    // Right after the kill the socket is dead: the CLI says so at once (or the engine is back already).
    const m = /rc=(\d+) ms=(\d+)/.exec(kill.stdout)!;
    expect(Number(m[2])).toBeLessThan(5000);
    if (m[1] !== "0") expect(kill.stdout).toMatch(/Cannot connect to the Docker daemon|connection refused|no such file/i);
    await waitForEngine();
    // Containers live as long as their engine: `t1` was killed with it and is marked as exited.
    const after = await sh(client, "docker ps -a --format '{{.Names}} {{.State}}'; docker run --rm busybox echo back");
    expect(after.stdout).toMatch(/^t1 exited$/m);
    expect(after.stdout).toMatch(/back\n$/);
    // The agent said what happened in its log (on the host: the sandbox's agent.log).
    expect(readFileSync(join(driver.sandboxDir(id), "agent.log"), "utf8")).toMatch(/engine: exited \(SIGKILL\)[^\n]*restarting/);
  });
});
