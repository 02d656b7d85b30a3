// Egress is default deny (src/namespaces/egress.ts, network.ts): a real sandbox reaches Debian's
// archive over HTTP (apt-get install works) and the host's nameserver, and nothing else: another
// name on a shared address, HTTPS, other ports, are refused at once, also on a kept-alive
// connection; new connections are rate-limited per sandbox. The only outside traffic this sends is
// to Debian's archive; the npm registry's name is only ever refused on this host.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lookup } from "node:dns/promises";
import { AgentClient } from "../src/index.js";
import { EGRESS_NEW_CONNECTIONS, EGRESS_PROXY_PORT } from "../src/namespaces/network.js";
import { sh, testDriver, testId } from "./sandbox-fixture.js";

const driver = testDriver();
const id = testId("egr");
let c: AgentClient;
let hostOnline = false;
const RELEASE = "http://deb.debian.org/debian/dists/bookworm/Release";

beforeAll(async () => {
  hostOnline = await fetch(RELEASE, { method: "HEAD", signal: AbortSignal.timeout(10_000) }).then(
    (r) => r.ok,
    () => false,
  );
  await driver.prepare();
  await driver.create({ id, hostname: "egress" });
  c = await AgentClient.connect(await driver.connect(id));
}, 120_000);

afterAll(async () => {
  c?.close();
  await driver.destroy(id).catch(() => {});
});

/** curl from inside: "<exit code> <http code> <seconds>". */
async function curl(url: string, extra = ""): Promise<{ exit: number; status: number; seconds: number; body: string }> {
  // (the body to a file and only its start back: the exec's output is capped)
  const r = await sh(c, `meta=$(curl -sS -m 10 ${extra} -o /tmp/body -w '%{http_code} %{time_total}' ${url} 2>/tmp/err); rc=$?; head -c 2000 /tmp/body /tmp/err 2>/dev/null; echo; echo "$meta"; echo "rc=$rc"; rm -f /tmp/body /tmp/err`, { timeoutMs: 20_000 });
  const lines = r.stdout.trimEnd().split("\n");
  const exit = Number(lines.pop()!.slice(3));
  const [status, seconds] = (lines.pop() ?? "0 0").split(" ").map(Number);
  return { exit, status: status!, seconds: seconds!, body: lines.join("\n") };
}

describe("egress: default deny with an allow-list", () => {
  it("reaches Debian's archive over HTTP, through the host's proxy", async (ctx) => {
    if (!hostOnline) return ctx.skip(`this machine itself does not reach ${RELEASE}`);
    let r = await curl(RELEASE);
    for (let i = 0; i < 2 && r.status !== 200; i++) r = await curl(RELEASE); // a lost DNS answer is not the policy
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/^Origin: Debian$/m);
  });

  it("refuses another name at once, even one that resolves to an allowed address", async () => {
    const npm = "registry.npmjs.org";
    const [allowed, other] = await Promise.all([lookup("deb.debian.org", { family: 4 }).catch(() => undefined), lookup(npm, { family: 4 }).catch(() => undefined)]);
    if (allowed && other) console.log(`deb.debian.org -> ${allowed.address}, ${npm} -> ${other.address}${allowed.address === other.address ? " (one address: an address allow-list could not tell them apart)" : ""}`);
    const http = await curl(`http://${npm}/`);
    expect(http.status).toBe(403);
    expect(http.body).toContain(`${npm} is not on this sandbox's egress allow-list`);
    // (curl's own clock, inside: its -m 10 would end a hanging attempt at 10 s with exit 28)
    expect(http.seconds).toBeLessThan(5);
    // HTTPS is not forwarded at all: refused by the host's firewall ("No route to host", exit 7), not a timeout.
    const https = await curl(`https://${other?.address ?? npm}/`, "-k");
    expect(https.exit).toBe(7);
    expect(https.seconds).toBeLessThan(5);
  });

  it("refuses other ports on an allowed host, and checks every request on a kept-alive connection", async (ctx) => {
    const other = await curl("http://deb.debian.org:8080/");
    expect(other.exit).toBe(7);
    expect(other.seconds).toBeLessThan(5);
    if (!hostOnline) return ctx.skip("no route to Debian's archive from this machine");
    // One connection, two requests: the archive's, then another site's on the same socket.
    const r = await sh(
      c,
      `exec 3<>/dev/tcp/deb.debian.org/80 && printf 'HEAD /debian/dists/bookworm/Release HTTP/1.1\\r\\nHost: deb.debian.org\\r\\n\\r\\nGET / HTTP/1.1\\r\\nHost: registry.npmjs.org\\r\\n\\r\\n' >&3 && timeout 10 cat <&3 | grep -a -E '^HTTP/|allow-list'`,
      { timeoutMs: 20_000 },
    );
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.stdout).toMatch(/HTTP\/1\.1 403 [^\n]*\n\[Berth\] registry\.npmjs\.org is not on this sandbox's egress allow-list/);
  });

  it("apt-get installs a package from Debian's archive", async (ctx) => {
    if (!hostOnline) return ctx.skip("no route to Debian's archive from this machine");
    const r = await sh(c, "apt-get update -qq >/dev/null 2>&1 || apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq figlet >/dev/null 2>&1; figlet -v | head -1", { timeoutMs: 240_000 });
    expect(r.stdout).toMatch(/FIGlet/);
  }, 300_000);

  it("apt-get installs a package in a debian container inside the sandbox too (the engine's bridge, NAT, then the proxy)", async (ctx) => {
    if (!hostOnline) return ctx.skip("no route to Debian's archive from this machine");
    await sh(c, "until docker info >/dev/null 2>&1; do sleep 0.2; done", { timeoutMs: 30_000 });
    const r = await sh(c, "docker run --rm debian:bookworm sh -c 'apt-get update -qq >/dev/null 2>&1 || apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq figlet >/dev/null 2>&1; figlet -v | head -1'", { timeoutMs: 240_000 });
    expect(r.stdout, r.stderr).toMatch(/FIGlet/);
  }, 300_000);

  it("rate-limits new connections per sandbox, and lets them through again afterwards", async () => {
    const up = (await driver.uplinkOf(id))!;
    // To its own proxy (a host address), so nothing leaves the machine: a burst far above the
    // limit, from one process (node, no forks: the pids limit must not be what refuses).
    const attempts = EGRESS_NEW_CONNECTIONS.burst * 3;
    const burst = (n: number) =>
      sh(c, `node -e '
        const net = require("net"); let ok = 0, refused = 0;
        const done = () => ok + refused === ${n} && console.log(ok + " ok\\n" + refused + " refused");
        for (let i = 0; i < ${n}; i++) {
          const s = net.connect(${EGRESS_PROXY_PORT}, "${up.gateway}");
          s.setTimeout(3000, () => { refused++; s.destroy(); done(); });
          s.on("connect", () => { ok++; s.destroy(); done(); });
          s.on("error", () => { refused++; done(); });
        }'`, { timeoutMs: 30_000 });
    const r = await burst(attempts);
    const count = (what: string) => Number(new RegExp(`(\\d+) ${what}`).exec(r.stdout)?.[1] ?? 0);
    console.log(`rate limit: ${attempts} connections at once: ${count("ok")} accepted, ${count("refused")} refused (burst ${EGRESS_NEW_CONNECTIONS.burst}, ${EGRESS_NEW_CONNECTIONS.perSecond}/s)`);
    expect(count("refused")).toBeGreaterThan(0);
    expect(count("ok")).toBeGreaterThanOrEqual(EGRESS_NEW_CONNECTIONS.burst / 2);
    await new Promise((res) => setTimeout(res, 2000));
    expect((await burst(1)).stdout).toBe("1 ok\n0 refused\n");
  });
});
