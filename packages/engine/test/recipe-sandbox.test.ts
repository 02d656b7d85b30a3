/**
 * The recipe tells the truth where learners read it: the engine inside a sandbox (a user
 * namespace, where the shim falls back to binds for sysfs and device nodes). For a running
 * container, every mount the recipe lists is in the container's /proc/<pid>/mountinfo at that
 * place with that type, every namespace inode is /proc/<pid>/ns/<type>'s, and "shared" means the
 * sandbox's own namespace. Also: GET /berth/xray answers a waiting request when a container starts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../../sandbox/src/index.js";
import { sandboxWithEngine, sh, testDriver, testId } from "../../sandbox/test/sandbox-fixture.js";

const driver = testDriver();
const id = testId("recipe");
let client: AgentClient;

const run = async (cmd: string, timeoutMs = 60_000) => {
  const r = await sh(client, cmd, { timeoutMs, maxOutputBytes: 8 * 1024 * 1024 });
  if (r.exitCode !== 0) throw new Error(`${cmd} -> ${r.exitCode}: ${r.stdout}${r.stderr}`);
  return r.stdout;
};
const api = async (path: string) => JSON.parse(await run(`curl -sS --fail-with-body --unix-socket /var/run/docker.sock 'http://engine${path}'`));

beforeAll(async () => {
  client = await sandboxWithEngine(driver, id, "recipe-lab");
}, 120_000);

afterAll(async () => {
  client?.close();
  await driver.destroy(id);
}, 60_000);

/** mountinfo lines -> { point, type } (mount point unescaped, type after the " - " separator). */
function parseMountinfo(text: string): { point: string; type: string }[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const f = l.split(" ");
      const dash = f.indexOf("-");
      return { point: f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), type: f[dash + 1]! };
    });
}

describe("the recipe in a sandbox", () => {
  it("lists only mounts and namespaces that are really there", async () => {
    await run("docker run -d --name rx --memory 48m -v rxdata:/data --tmpfs /scratch:size=1m -v /etc/hostname:/host-name:ro busybox sleep 300 >/dev/null");
    const r = await api("/berth/containers/rx/recipe");
    expect(r.hostPid).toBeGreaterThan(1);
    const mountinfo = parseMountinfo(await run(`cat /proc/${r.hostPid}/mountinfo`));
    const destinations = r.mounts.map((m: { destination: string }) => m.destination);
    for (const d of ["/", "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/data", "/scratch", "/host-name"]) {
      expect(destinations, d).toContain(d);
    }
    for (const m of r.mounts as { destination: string; type: string; fallback?: string }[]) {
      const there = mountinfo.filter((x) => x.point === m.destination);
      expect(there.length, `${m.destination} is not mounted in the container`).toBeGreaterThan(0);
      // The topmost mount at that place is what the container sees.
      expect(there[there.length - 1]!.type, m.destination).toBe(m.type);
    }
    // Nested in the sandbox's user namespace the shim cannot mknod: the recipe says it bound the
    // sandbox's device nodes instead, and the kernel agrees on what they became.
    const fallbacks = r.mounts.filter((m: { fallback?: string }) => m.fallback);
    expect(fallbacks.map((m: { destination: string }) => m.destination)).toEqual(["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]);
    expect(r.mounts.find((m: { destination: string }) => m.destination === "/").type).toBe("overlay");
    expect(r.mounts.find((m: { destination: string }) => m.destination === "/scratch").type).toBe("tmpfs");

    const sandboxNs = Object.fromEntries(
      (await run("for t in pid mnt uts ipc net cgroup user; do echo $t $(stat -L -c %i /proc/self/ns/$t); done"))
        .trim()
        .split("\n")
        .map((l) => l.split(" ")),
    );
    for (const n of r.namespaces as { type: string; inode: number; outer: number; shared: boolean }[]) {
      const link = (await run(`readlink /proc/${r.hostPid}/ns/${n.type}`)).trim();
      expect(link).toBe(`${n.type}:[${n.inode}]`);
      expect(String(n.outer), n.type).toBe(sandboxNs[n.type]);
      expect(n.shared, n.type).toBe(n.type === "user" || n.type === "cgroup");
    }
    expect(r.namespaces.map((n: { type: string }) => n.type)).toEqual(["pid", "mnt", "uts", "ipc", "net", "cgroup", "user"]);
    // Capabilities as the process holds them: Docker's default 14 for root.
    const status = await run(`grep CapEff /proc/${r.hostPid}/status`);
    const eff = BigInt(`0x${status.trim().split(/\s+/)[1]}`);
    expect(r.capabilitySets.effective.length).toBe(eff.toString(2).split("").filter((b) => b === "1").length);
    expect(r.exec).toEqual({ path: "/bin/sleep", argv: ["sleep", "300"] });
    expect(r.cgroup.writes.some((w: { file: string; value: string }) => /memory\.(limit_in_bytes|max)$/.test(w.file) && w.value === String(48 * 1024 * 1024))).toBe(true);
    // Every step carries where it was taken.
    for (const s of r.trace) expect(s.source.file).toMatch(/^packages\/engine\/src\//);
  }, 120_000);

  it("xray: a waiting request returns when a container starts, with its limit and live figures", async () => {
    const before = await api("/berth/xray?since=0");
    const t0 = Date.now();
    const waiting = sh(client, `curl -sS --unix-socket /var/run/docker.sock 'http://engine/berth/xray?since=${before.seq}&wait=20000'`, { timeoutMs: 30_000, maxOutputBytes: 8 * 1024 * 1024 });
    await new Promise((r) => setTimeout(r, 200));
    await run("docker run -d --name rx2 --memory 32m busybox sleep 300 >/dev/null");
    const answer = JSON.parse((await waiting).stdout);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(answer.seq).toBeGreaterThan(before.seq);
    // The first event (create) may answer before the start: ask again until it runs.
    let view = answer;
    for (let i = 0; i < 20 && !view.containers.find((c: { name: string; state: { running: boolean } }) => c.name === "rx2")?.state.running; i++) {
      view = await api(`/berth/xray?since=${view.seq}&wait=2000`);
    }
    const c = view.containers.find((x: { name: string }) => x.name === "rx2");
    expect(c.state.running).toBe(true);
    expect(c.live.memory.limit).toBe(32 * 1024 * 1024);
    expect(c.live.memory.usage).toBeGreaterThan(0);
    expect(c.live.pids.current).toBeGreaterThanOrEqual(1);
    expect(view.engine.namespaces.find((n: { type: string }) => n.type === "pid").inode).not.toBe(c.recipe.namespaces.find((n: { type: string }) => n.type === "pid").inode);
  }, 120_000);
});
