// The qemu driver: the shared conformance suite, then what only a VM has (a kernel of its own, the
// VM's memory as the limit, QEMU confined on the host). Real guests: under TCG (no KVM here) each
// boots in 30-60 s, so this file takes minutes; it runs as root wherever qemu-system-x86_64 is
// installed (setup installs it) and fails with the reason otherwise.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AgentClient } from "../src/agent-client.js";
import { createQemuDriver, type QemuDriver } from "../src/qemu/driver.js";
import { execText, sandboxDriverConformance } from "../src/testsuite/driver-conformance.js";
import { startRegistry, type Registry } from "@berth/registry";
import { requireQemu } from "./qemu-fixture.js";

vi.setConfig({ testTimeout: 600_000, hookTimeout: 900_000 });

requireQemu();

// The engine stays out here: under TCG its start would slow every other step (it is the same
// engine as in the namespaces driver, started the same way by the same agent).
const makeDriver = () => createQemuDriver({ engine: false });

// Under TCG everything in the guest runs ~10 times slower: the suite's own waits are stretched.
sandboxDriverConformance({ name: "qemu", makeDriver, timeScale: makeDriver().timeScale });

describe("qemu driver: a VM per learner", () => {
  // With the engine (docker inside is checked once here) and the lab registry: one guest for all.
  let driver: QemuDriver;
  let registry: Registry;
  let registryRoot: string;
  const id = `qm-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const owner = `vm-${process.pid}`;
  let client: AgentClient;

  beforeAll(async () => {
    registryRoot = mkdtempSync(join(tmpdir(), "berth-qm-reg-"));
    registry = await startRegistry({ root: registryRoot });
    driver = createQemuDriver({ registryUpstream: registry.url });
    await driver.prepare();
    await driver.create({ id, hostname: "qm", owner, limits: { memoryBytes: 256 << 20, diskBytes: 256 << 20, pids: 100 } });
    client = await AgentClient.connect(await driver.connect(id));
  });
  afterAll(async () => {
    client?.close();
    await driver?.destroy(id);
    await driver?.close();
    await registry?.stop();
    if (registryRoot) rmSync(registryRoot, { recursive: true, force: true });
  });

  it("says which accelerator runs it, in list() too", async () => {
    const accel = await driver.accelerator();
    expect(["kvm", "tcg"]).toContain(accel);
    expect((await driver.list()).find((s) => s.id === id)).toMatchObject({ state: "running", accelerator: accel });
    if (!existsSync("/dev/kvm")) expect(accel).toBe("tcg");
  });

  it("runs a kernel of its own, with the VM's memory and its own disk", async () => {
    const r = await execText(client, "uname -r; awk '/MemTotal/ {print $2}' /proc/meminfo; df -k --output=size / | tail -1; cat /proc/1/comm");
    const [kernel, memKb, diskKb, init] = r.stdout.trim().split("\n");
    expect(kernel).not.toBe(release());
    expect(kernel).toMatch(/-amd64$/);
    // The guest sees at most its 256 MiB (less what the kernel keeps for itself).
    expect(Number(memKb)).toBeGreaterThan(150 * 1024);
    expect(Number(memKb)).toBeLessThanOrEqual(256 * 1024);
    expect(Number(diskKb)).toBeLessThanOrEqual(256 * 1024);
    // The learner's world is a pid namespace whose PID 1 is tini (the agent's), not the guest's init.
    expect(init).toBe("tini");
  });

  it("a learner's writes stay in its own disk; the shared root image is never written", async () => {
    const base = JSON.parse(readFileSync(`${driver.sandboxDir(id)}/meta.json`, "utf8")).baseImage as string;
    const before = readFileSync(base).subarray(0, 1 << 20);
    expect((await execText(client, "echo mine > /etc/learner-file && rm -f /usr/bin/file && cat /etc/learner-file")).stdout).toBe("mine\n");
    expect(readFileSync(base).subarray(0, 1 << 20).equals(before)).toBe(true);
  });

  it("the same engine runs in the guest: docker run works on its bridge, the kernel loading bridge, veth and nf_tables on demand", async () => {
    const started = Date.now();
    while ((await execText(client, "docker version >/dev/null 2>&1")).exitCode !== 0) {
      if (Date.now() - started > 240_000) throw new Error("the engine did not answer within 240 s");
      await new Promise((r) => setTimeout(r, 1000));
    }
    const r = await execText(client, "docker run --rm busybox echo hello-from-a-vm", { timeoutMs: 240_000 });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hello-from-a-vm\n");
    const mods = (await execText(client, "lsmod | awk '{print $1}'")).stdout.split("\n");
    expect(mods).toEqual(expect.arrayContaining(["bridge", "veth", "overlay"]));
  });

  it("localhost:5000 is the lab registry, over the link: docker push and pull work, the lab's images are read-only, and the guest has no other way out", async () => {
    // No network device at all: loopback, and what the engine made inside (its bridge, veths).
    const net = await execText(client, "for d in /sys/class/net/*; do echo \"${d##*/} $(readlink -f $d)\"; done");
    for (const line of net.stdout.trim().split("\n")) expect(line).toMatch(/ \/sys\/devices\/virtual\/net\//);
    // The registry's real port on the host is not the guest's: its 127.0.0.1 is its own, and
    // QEMU's user-mode network (10.0.2.2) does not exist.
    const direct = await execText(client, `curl -s -m 5 -o /dev/null http://127.0.0.1:${registry.port}/v2/; echo rc=$?; curl -s -m 5 -o /dev/null http://10.0.2.2:${registry.port}/v2/; echo rc=$?`);
    expect(direct.stdout).toMatch(/^rc=7\nrc=(7|28)\n$/);
    expect((await execText(client, "curl -s -o /dev/null -w '%{http_code}' http://localhost:5000/v2/")).stdout).toBe("200");

    const push = await execText(client, "docker tag busybox localhost:5000/vmapp && docker push localhost:5000/vmapp", { timeoutMs: 300_000 });
    expect(push.stdout, push.stderr).toMatch(/latest: digest: sha256:/);
    // Upstream, in this learner's namespace (the gateway's mapping, as for a namespaces sandbox).
    const upstream = (await (await fetch(`${registry.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(upstream.repositories).toContain(`learners/${owner}/vmapp`);
    const pull = await execText(client, "docker rmi localhost:5000/vmapp >/dev/null && docker pull -q localhost:5000/vmapp && docker images --format '{{.Repository}}' | grep -c vmapp", { timeoutMs: 300_000 });
    expect(pull.stdout, pull.stderr).toMatch(/localhost:5000\/vmapp(:latest)?\n1\n$/);
    const denied = await execText(client, "docker tag busybox localhost:5000/library/busybox && docker push localhost:5000/library/busybox", { timeoutMs: 300_000 });
    expect(denied.exitCode).not.toBe(0);
    expect(denied.stderr).toMatch(/denied: library\/ holds the lab's images and is read-only/);
  });

  it("QEMU runs as the guest's own unprivileged uid, without capabilities, in its host cgroup", async () => {
    const view = (await driver.hostView(id))!;
    const status = readFileSync(`/proc/${view.qemuPid}/status`, "utf8");
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
    expect(uid).toBe(view.uid);
    expect(uid).toBeGreaterThanOrEqual(300_000);
    expect(/^CapEff:\s+(\S+)/m.exec(status)![1]).toBe("0000000000000000");
    expect(/^CapBnd:\s+(\S+)/m.exec(status)![1]).toBe("0000000000000000");
    expect(/^NoNewPrivs:\s+1/m.test(status)).toBe(true);
    // seccomp filter mode (QEMU's -sandbox).
    expect(/^Seccomp:\s+2/m.test(status)).toBe(true);
    const cgroups = readFileSync(`/proc/${view.qemuPid}/cgroup`, "utf8");
    expect(cgroups).toContain(`berth/${view.cgroupId}/box`);
    // The guest's files on the host are QEMU's own; the token and sockets are root's.
    const dir = driver.sandboxDir(id);
    const owner = (p: string) => `${statSync(p).uid} ${(statSync(p).mode & 0o777).toString(8)}`;
    expect(owner(`${dir}/vm`)).toBe(`${uid} 700`);
    expect([owner(`${dir}/token`), owner(`${dir}/agent.sock`)]).toEqual(["0 600", "0 600"]);
    // The initrd that carried the token to the guest is gone once the agent answered.
    expect(existsSync(`${dir}/vm/initrd`)).toBe(false);
  });

  it("root in the guest cannot see the host's processes or the check channel's state", async () => {
    const r = await execText(client, "ps -eo comm | sort -u | tr '\\n' ' '; ls /run/berth-vm | wc -l; test -e /run/berth/token && echo token-left || echo no-token");
    expect(r.stdout).not.toMatch(/qemu|vitest|berth-vmmux|guest-init/);
    expect(r.stdout.trim().endsWith("0\nno-token")).toBe(true);
  });

  it("a killed host mux is started again by the next driver's prepare(), and the same shell answers", async () => {
    const pty = await client.request({ op: "pty.start", key: "mux", cols: 80, rows: 24 });
    const before = (await driver.hostView(id))!;
    process.kill(before.muxPid!, "SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    await expect(AgentClient.connect(await driver.connect(id), { timeoutMs: 3000 })).rejects.toThrow();
    const next = createQemuDriver({ registryUpstream: registry.url });
    await next.prepare();
    const after = (await next.hostView(id))!;
    expect(after.muxPid).not.toBe(before.muxPid);
    client.close();
    client = await AgentClient.connect(await next.connect(id));
    expect((await client.request({ op: "pty.start", key: "mux", cols: 80, rows: 24 })).pid).toBe(pty.pid);
  });

  it("stop() ends the VM (list says stopped) and destroy() leaves no process, cgroup or file", async () => {
    const view = (await driver.hostView(id))!;
    await driver.stop(id);
    expect((await driver.list()).find((s) => s.id === id)?.state).toBe("stopped");
    await driver.destroy(id);
    expect(existsSync(`/proc/${view.qemuPid}`) && !/ Z /.test(readFileSync(`/proc/${view.qemuPid}/stat`, "utf8"))).toBe(false);
    expect(existsSync(`/proc/${view.muxPid}`) && !/ Z /.test(readFileSync(`/proc/${view.muxPid}/stat`, "utf8"))).toBe(false);
    expect(existsSync(driver.sandboxDir(id))).toBe(false);
    expect(readFileSync("/proc/self/mounts", "utf8")).not.toContain(id);
    for (const c of ["memory", "pids", "cpu"]) expect(existsSync(`/sys/fs/cgroup/${c}/berth/${view.cgroupId}`)).toBe(false);
  });
});
