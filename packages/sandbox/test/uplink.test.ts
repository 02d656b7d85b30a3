// A sandbox's uplink and firewall (src/namespaces/network.ts), on real veths, iptables and runc:
// out to Debian's archive yes (from the sandbox and from a container inside), the host, another
// sandbox, private ranges and the registry's TCP port no, and nothing the learner does inside
// (flush their iptables, take another sandbox's address) changes that.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentClient, createNamespacesDriver } from "../src/index.js";
import { attachUplink, claimSlot, detachUplink, removeStaleUplinks, DEFAULT_UPLINK_NET } from "../src/namespaces/network.js";
import { startRegistry, type Registry } from "@berth/registry";
import { sh, testDriver, testId, connectedSandboxes, endSandboxes } from "./sandbox-fixture.js";

const driver = testDriver();
const idA = testId("upa");
const idB = testId("upb");
let a: AgentClient;
let b: AgentClient;
let hostListener: http.Server;
let hostPort = 0;
let registry: Registry;
let registryRoot: string;
/** Whether this machine itself reaches Debian's archive (if not, the egress checks are skipped). */
let hostOnline = false;
const ARCHIVE = "http://deb.debian.org/debian/dists/bookworm/Release";

/** The host's own IPv4 addresses, apart from loopback and sandbox gateways (those come and go with other tests' sandboxes). */
function hostAddresses(): string[] {
  return execFileSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => !/^\d+:\s+berthv/.test(l))
    .map((l) => /inet (\d+\.\d+\.\d+\.\d+)\//.exec(l)?.[1])
    .filter((x): x is string => !!x && !x.startsWith("127."));
}

/** curl's exit code for a GET from inside a sandbox (0 = got an answer). */
async function curlFrom(c: AgentClient, url: string, timeout = 1): Promise<number> {
  const r = await sh(c, `curl -s -o /dev/null --connect-timeout ${timeout} -m ${timeout + 1} ${url}; echo $?`, { timeoutMs: (timeout + 5) * 1000 });
  return Number(r.stdout.trim());
}

/**
 * For checks that expect an answer from the outside: up to three tries, so a lost DNS reply on
 * the way (this machine's nameserver is not ours) does not read as a broken uplink.
 */
async function reachesFrom(c: AgentClient, url: string): Promise<number> {
  const r = await sh(c, `for i in 1 2 3; do curl -s -o /dev/null --connect-timeout 5 -m 15 ${url}; rc=$?; [ $rc = 0 ] && break; sleep 1; done; echo $rc`, { timeoutMs: 60_000 });
  return Number(r.stdout.trim());
}

beforeAll(async () => {
  hostOnline = await fetch(ARCHIVE, { method: "HEAD", signal: AbortSignal.timeout(10_000) }).then(
    (r) => r.ok,
    () => false,
  );
  registryRoot = mkdtempSync(join(tmpdir(), "berth-uplink-reg-"));
  registry = await startRegistry({ root: registryRoot });
  hostListener = http.createServer((_q, s) => s.end("host\n"));
  await new Promise<void>((r) => hostListener.listen(0, "0.0.0.0", r));
  hostPort = (hostListener.address() as AddressInfo).port;
  await driver.prepare();
  [a, b] = await connectedSandboxes(driver, [{ id: idA, hostname: "up-a" }, { id: idB, hostname: "up-b" }]);
}, 120_000);

afterAll(async () => {
  await endSandboxes(driver, [idA, idB], [a, b]);
  hostListener?.close();
  await registry?.stop();
  if (registryRoot) rmSync(registryRoot, { recursive: true, force: true });
});

describe("uplink", () => {
  it("gives the sandbox eth0, a default route to its host end, and the host's nameserver", async () => {
    const up = (await driver.uplinkOf(idA))!;
    expect(up.ifname).toMatch(/^berthv\d+$/);
    expect(existsSync(`/sys/class/net/${up.ifname}`)).toBe(true);
    // No IPv6 on the host end: an address the learner gives eth0 leads nowhere.
    expect(readFileSync(`/proc/sys/net/ipv6/conf/${up.ifname}/disable_ipv6`, "utf8")).toBe("1\n");
    const r = await sh(a, "ip -4 -o addr show dev eth0 | awk '{print $4}'; ip route show default; grep -c ^nameserver /etc/resolv.conf");
    expect(r.stdout).toBe(`${up.address}/30\ndefault via ${up.gateway} dev eth0 \n1\n`);
    // Two sandboxes, two different /30s.
    expect((await driver.uplinkOf(idB))!.address).not.toBe(up.address);
  });

  it("reaches Debian's archive: names resolve and HTTP answers", async (ctx) => {
    if (!hostOnline) return ctx.skip(`this machine itself does not reach ${ARCHIVE}: nothing to route to`);
    const r = await sh(a, `for i in 1 2 3; do getent hosts deb.debian.org >/dev/null && echo resolved && break; sleep 1; done; curl -sS -m 20 --retry 2 -o /dev/null -w '%{http_code}\\n' ${ARCHIVE}`, { timeoutMs: 60_000 });
    expect(r.stdout).toBe("resolved\n200\n");
  });

  it("reaches the archive from a container inside the sandbox too (--network host, and the engine's bridge)", async (ctx) => {
    if (!hostOnline) return ctx.skip("this machine has no route to Debian's archive");
    for (let i = 0; i < 100; i++) {
      if ((await sh(a, "docker version >/dev/null 2>&1; echo $?")).stdout === "0\n") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const net of ["--network host", ""]) {
      // The bridge's NAT (the engine's, inside the sandbox) stacks on the uplink's (the host's).
      const r = await sh(a, `docker run --rm ${net} busybox sh -c 'for i in 1 2 3; do wget -q -O - ${ARCHIVE} && break; sleep 1; done' | grep -m1 -o '^Origin: Debian'`, { timeoutMs: 60_000 });
      expect(r.stdout, `docker run ${net || "(default bridge)"}: ${r.stderr}`).toBe("Origin: Debian\n");
    }
  });

  it("cannot reach the host: a listener on 0.0.0.0, on every host address and the gateway", async () => {
    const up = (await driver.uplinkOf(idA))!;
    const targets = [...hostAddresses(), up.gateway];
    expect(targets.length).toBeGreaterThan(1);
    // (another sandbox's gateway is a host address too: the same INPUT rule covers it)
    for (const ip of targets) {
      // The control: the listener answers on that address from the host itself.
      expect(await (await fetch(`http://${ip}:${hostPort}/`)).text()).toBe("host\n");
      expect(await curlFrom(a, `http://${ip}:${hostPort}/`), `host listener at ${ip}:${hostPort}`).not.toBe(0);
    }
  });

  it("cannot reach the registry's TCP port (only its own gateway, see below)", async () => {
    expect((await fetch(`${registry.url}/v2/`)).status).toBe(200);
    for (const ip of hostAddresses()) expect(await curlFrom(a, `http://${ip}:${registry.port}/v2/`)).not.toBe(0);
  });

  it("cannot reach another sandbox, which can reach its own listener", async () => {
    const upB = (await driver.uplinkOf(idB))!;
    await sh(b, "nohup node -e 'require(\"http\").createServer((q,s)=>s.end(\"b\\n\")).listen(8080)' >/dev/null 2>&1 &");
    let own = 1;
    for (let i = 0; i < 50 && own !== 0; i++) {
      own = await curlFrom(b, `http://${upB.address}:8080/`);
      if (own !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(own).toBe(0);
    const t0 = Date.now();
    expect(await curlFrom(a, `http://${upB.address}:8080/`)).not.toBe(0);
    // Refused at once (icmp admin-prohibited), not a silent timeout.
    expect(Date.now() - t0).toBeLessThan(2000);
    // Nor at another private address or link-local (the cloud metadata address).
    expect(await curlFrom(a, "http://169.254.169.254/", 1)).not.toBe(0);
    expect(await curlFrom(a, "http://192.168.1.1/", 1)).not.toBe(0);
  });

  it("the learner cannot take the firewall down: it is in the host's netns", async (ctx) => {
    const up = (await driver.uplinkOf(idA))!;
    const r = await sh(a, "iptables -F; iptables -P OUTPUT ACCEPT; iptables -t nat -F; iptables -S | wc -l");
    expect(r.exitCode).toBe(0);
    expect(await curlFrom(a, `http://${hostAddresses()[0]}:${hostPort}/`)).not.toBe(0);
    // Nor pass as another sandbox: with B's address on eth0, nothing gets out at all.
    const upB = (await driver.uplinkOf(idB))!;
    await sh(a, `ip addr flush dev eth0 && ip addr add ${upB.address}/16 dev eth0 && ip route add default via ${up.gateway} dev eth0 onlink`);
    try {
      if (hostOnline) expect(await curlFrom(a, ARCHIVE, 3)).not.toBe(0);
      expect(await curlFrom(a, `http://${hostAddresses()[0]}:${hostPort}/`)).not.toBe(0);
    } finally {
      await sh(a, `ip addr flush dev eth0 && ip addr add ${up.address}/30 dev eth0 && ip route replace default via ${up.gateway} dev eth0`);
    }
    if (!hostOnline) return ctx.skip("no route out from this machine: the spoof check only covered the host");
    // Its own address back, and out again.
    expect(await reachesFrom(a, ARCHIVE)).toBe(0);
  });
});

describe("uplink lifecycle", () => {
  it("a rule lost on the host (a firewall flush) is put back by the next prepare(), and until then the sandbox is cut off, not unfiltered", async () => {
    const up = (await driver.uplinkOf(idA))!;
    const rule = ["-w", "-D", "BERTH-SANDBOXES", "-i", up.ifname, "-s", `${up.address}/32`, "-j", "BERTH-EGRESS"];
    execFileSync("iptables", rule);
    try {
      // Without its rule, everything from A is dropped as forged: out, and to the host alike.
      expect(await curlFrom(a, `http://${hostAddresses()[0]}:${hostPort}/`)).not.toBe(0);
      if (hostOnline) expect(await curlFrom(a, ARCHIVE, 3)).not.toBe(0);
      await createNamespacesDriver({ engine: false }).prepare();
      expect(execFileSync("iptables", ["-w", "-S", "BERTH-SANDBOXES"], { encoding: "utf8" })).toContain(`-s ${up.address}/32 -i ${up.ifname} -j BERTH-EGRESS`);
      if (hostOnline) expect(await reachesFrom(a, ARCHIVE)).toBe(0);
    } finally {
      // (put back by hand if the repair did not: later tests need A's uplink)
      if (!execFileSync("iptables", ["-w", "-S", "BERTH-SANDBOXES"], { encoding: "utf8" }).includes(`-i ${up.ifname} `)) execFileSync("iptables", ["-w", "-A", ...rule.slice(2)]);
    }
  });

  it("uplink: false gives loopback only", async () => {
    const d = createNamespacesDriver({ uplink: false, engine: false });
    const id = testId("upno");
    await d.create({ id, hostname: "no-uplink" });
    try {
      const c = await AgentClient.connect(await d.connect(id));
      const r = await sh(c, "ip -o link | awk -F': ' '{print $2}'; ip route | wc -l; curl -sS -m 2 http://1.1.1.1/ >/dev/null 2>&1; echo curl=$?");
      c.close();
      expect(r.stdout).toBe("lo\n0\ncurl=7\n");
      expect(await d.uplinkOf(id)).toBeUndefined();
    } finally {
      await d.destroy(id);
    }
  });

  it("destroy removes the link, the rule and the claim", async () => {
    const d = createNamespacesDriver({ engine: false });
    const id = testId("upgone");
    await d.create({ id, hostname: "gone" });
    const up = (await d.uplinkOf(id))!;
    const rules = () => execFileSync("iptables", ["-w", "-S", "BERTH-SANDBOXES"], { encoding: "utf8" });
    expect(rules()).toContain(`-i ${up.ifname} `);
    expect(existsSync(join(DEFAULT_UPLINK_NET.netDir, "slots", String(up.slot)))).toBe(true);
    await d.destroy(id);
    expect(existsSync(`/sys/class/net/${up.ifname}`)).toBe(false);
    expect(rules()).not.toContain(`-i ${up.ifname} `);
    expect(existsSync(join(DEFAULT_UPLINK_NET.netDir, "slots", String(up.slot)))).toBe(false);
  });

  it("prepare() cleans what a crashed run left: a claim without its sandbox, its link and its rule", async () => {
    // A "sandbox" that died mid-way: a network namespace held by a sleep, its uplink attached,
    // and its directory gone.
    const gone = mkdtempSync(join(tmpdir(), "berth-crashed-"));
    const holder = execFileSync("sh", ["-c", "unshare --net --fork sleep 60 >/dev/null 2>&1 & echo $!"], { encoding: "utf8" }).trim();
    let slot: Awaited<ReturnType<typeof claimSlot>> | undefined;
    try {
      // unshare forks: the sleep is its child, in the new netns.
      let pid = "";
      for (let i = 0; i < 50 && !pid; i++) {
        pid = execFileSync("sh", ["-c", `pgrep -P ${holder} || true`], { encoding: "utf8" }).trim();
        if (!pid) await new Promise((r) => setTimeout(r, 20));
      }
      slot = await claimSlot(gone, "crashed");
      await attachUplink(Number(pid), slot);
      expect(existsSync(`/sys/class/net/${slot.ifname}`)).toBe(true);
      rmSync(gone, { recursive: true, force: true });
      const freed = await removeStaleUplinks();
      expect(freed).toContain(slot.slot);
      expect(existsSync(`/sys/class/net/${slot.ifname}`)).toBe(false);
      expect(execFileSync("iptables", ["-w", "-S", "BERTH-SANDBOXES"], { encoding: "utf8" })).not.toContain(`-i ${slot.ifname} `);
      expect(existsSync(join(DEFAULT_UPLINK_NET.netDir, "slots", String(slot.slot)))).toBe(false);
    } finally {
      if (slot) await detachUplink(slot);
      execFileSync("sh", ["-c", `pkill -P ${holder} 2>/dev/null; kill ${holder} 2>/dev/null; true`]);
      rmSync(gone, { recursive: true, force: true });
    }
  });
});
