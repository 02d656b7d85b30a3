// Networking, differential: the chapter 12 sequences (and name resolution, isolation, bad input)
// run with the real docker CLI against our engine and against a real dockerd, each in a fresh
// network namespace of its own (its bridge, iptables rules and published ports vanish with it).
// "The host" is that namespace: curl and ping run there, as a learner's sandbox shell would.
// (The host's static busybox wget crashes resolving anything, so curl it is.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker, normalize, request, startBerthInNetns, startDockerd, type Daemon, type Result } from "./harness";

type NetDaemon = Daemon & { netns: { exec(cmd: string[], timeoutMs?: number): Result; name: string } };
let berth: NetDaemon;
let dockerd: NetDaemon;
const both = () => [berth, dockerd] as const;

beforeAll(async () => {
  const [b, d] = await Promise.all([startBerthInNetns(), startDockerd({ network: true })]);
  berth = b;
  dockerd = d as NetDaemon;
}, 120_000);

afterAll(async () => {
  await Promise.all([berth?.stop(), dockerd?.stop()]);
}, 60_000);

/** The same command on both; returns [ours, dockerd's]. */
async function on(args: string[]): Promise<[Result, Result]> {
  const [a, b] = await Promise.all(both().map((d) => docker(d, args)));
  return [a!, b!];
}

const ips = (s: string) => s.replace(/\b172\.(1[7-9]|2\d)\.\d+\.\d+\b/g, "<ip>");
const WEB = ["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"];

describe("a web server on a published port (chapter 12)", () => {
  it("answers on the host's port; port, ps and inspect agree with dockerd", async () => {
    for (const [a, b] of [await on(["run", "-d", "--name", "web", "--hostname", "web", "-p", "8080:80", ...[`busybox`], ...WEB])]) {
      expect(a.stderr).toBe(b.stderr);
      expect(a.code).toBe(0);
    }
    for (const d of both()) {
      let body = "";
      for (let i = 0; i < 50 && !body; i++) {
        body = d.netns.exec(["curl", "-s", "-m", "2", "http://127.0.0.1:8080/"]).stdout;
        if (!body) await new Promise((r) => setTimeout(r, 100));
      }
      expect(body, d.name).toBe("hello from web\n");
    }
    const [port, dport] = await on(["port", "web"]);
    expect(port.stdout).toBe(dport.stdout);
    expect(port.stdout).toContain("80/tcp -> 0.0.0.0:8080");
    const [ps, dps] = await on(["ps", "--format", "{{.Names}} {{.Ports}}"]);
    expect(ps.stdout).toBe(dps.stdout);
    const fmt = "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.IPPrefixLen}} {{.NetworkSettings.Gateway}} {{.NetworkSettings.MacAddress}} {{.NetworkSettings.Networks.bridge.IPAddress}} {{json .NetworkSettings.Ports}}";
    const [ins, dins] = await on(["inspect", "--format", fmt, "web"]);
    expect(ins.stdout).toBe(dins.stdout);
    expect(ins.stdout).toMatch(/^172\.17\.0\.2 16 172\.17\.0\.1 02:42:ac:11:00:02 172\.17\.0\.2 /);
  });

  it("reaches the container's own address from the host (ping, wget), and the host from the container", async () => {
    for (const d of both()) {
      expect(d.netns.exec(["busybox", "ping", "-c1", "-W2", "172.17.0.2"]).code, d.name).toBe(0);
      expect(d.netns.exec(["curl", "-s", "-m", "2", "http://172.17.0.2/"]).stdout, d.name).toBe("hello from web\n");
    }
    const [a, b] = await on(["run", "--rm", "busybox", "sh", "-c", "ip route; ping -c1 -W2 172.17.0.1 >/dev/null && echo gateway reached"]);
    expect(ips(a.stdout)).toBe(ips(b.stdout));
    expect(a.stdout).toContain("gateway reached");
  });

  it("refuses a port another container holds, in dockerd's words", async () => {
    const [a, b] = await on(["run", "-d", "--name", "web2", "-p", "8080:80", "busybox", ...WEB]);
    expect(normalize(a.stderr)).toBe(normalize(b.stderr));
    expect(a.stderr).toContain("Bind for 0.0.0.0:8080 failed: port is already allocated");
    expect(a.code).toBe(125);
    await on(["rm", "-f", "web2"]);
  });

  it("-P publishes EXPOSEd ports on ports from the ephemeral range; docker port lists them", async () => {
    const [a, b] = await on(["run", "-d", "--name", "exp", "-P", "--expose", "80", "--expose", "53/udp", "busybox", ...WEB]);
    expect(a.stderr).toBe(b.stderr);
    const [port, dport] = await on(["port", "exp"]);
    expect(port.stdout).toBe(dport.stdout);
    const [p80, dp80] = await on(["port", "exp", "80"]);
    expect(p80.stdout).toBe(dp80.stdout);
    const hostPort = /0\.0\.0\.0:(\d+)/.exec(p80.stdout)?.[1];
    expect(Number(hostPort)).toBeGreaterThanOrEqual(32768);
    expect(berth.netns.exec(["curl", "-s", "-m", "2", `http://127.0.0.1:${hostPort}/`]).stdout).toMatch(/^hello from /);
  });

  it("publishes on one address only (-p ip:h:c) and UDP ports (-p h:c/udp)", async () => {
    const cmd = ["run", "-d", "--name", "one", "-p", "127.0.0.1:5353:53/udp", "-p", "127.0.0.1:8081:80", "busybox", ...WEB];
    const [a, b] = await on(cmd);
    expect(a.stderr).toBe(b.stderr);
    expect(a.code).toBe(0);
    const [port, dport] = await on(["port", "one"]);
    expect(port.stdout).toBe(dport.stdout);
    expect(port.stdout).toBe("53/udp -> 127.0.0.1:5353\n80/tcp -> 127.0.0.1:8081\n");
    for (const d of both()) {
      let body = "";
      for (let i = 0; i < 50 && !body; i++) {
        body = d.netns.exec(["curl", "-s", "-m", "2", "http://127.0.0.1:8081/"]).stdout;
        if (!body) await new Promise((r) => setTimeout(r, 100));
      }
      expect(body, d.name).toMatch(/^hello from /);
    }
    await on(["rm", "-f", "one"]);
  });
});

describe("network modes", () => {
  it("--network none has only loopback", async () => {
    const [a, b] = await on(["run", "--rm", "--network", "none", "busybox", "sh", "-c", "ip addr; ip route"]);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).not.toContain("eth0");
  });

  it("--network container:<name> shares the other container's interfaces and name", async () => {
    const [a, b] = await on(["run", "--rm", "--network", "container:web", "busybox", "sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'; hostname; wget -qO- http://127.0.0.1/"]);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).toBe("172.17.0.2/16\nweb\nhello from web\n");
  });

  it("--link name:alias writes the alias into /etc/hosts and sets Docker's link variables", async () => {
    const [a, b] = await on(["run", "--rm", "--link", "web:site", "busybox", "sh", "-c", "grep -w site /etc/hosts; wget -qO- http://site/; env | grep ^SITE_ | sort"]);
    const name = (s: string) => s.replace(/^SITE_NAME=\/[^/]+\/site$/m, "SITE_NAME=/<name>/site");
    expect(name(ips(a.stdout))).toBe(name(ips(b.stdout)));
    expect(a.stdout).toMatch(/^172\.17\.0\.2\tsite web web\nhello from web\nSITE_NAME=\/[a-z_]+\/site\nSITE_PORT=tcp:\/\/172\.17\.0\.2:80\n/);
  });
});

describe("user-defined networks", () => {
  it("resolve container names and --network-alias through the embedded DNS", async () => {
    const [c1, c2] = await on(["network", "create", "app"]);
    expect(c1.code).toBe(0);
    expect(c2.code).toBe(0);
    await on(["run", "-d", "--name", "db", "--network", "app", "--network-alias", "database", "busybox", "sleep", "600"]);
    const script = "for n in db database; do nslookup $n | grep -A1 '^Name:'; done; ping -c1 -W2 db >/dev/null && echo db reached; grep -c nameserver /etc/resolv.conf";
    const [a, b] = await on(["run", "--rm", "--network", "app", "busybox", "sh", "-c", script]);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).toBe("Name:\tdb\nAddress: 172.18.0.2\nName:\tdatabase\nAddress: 172.18.0.2\ndb reached\n1\n");
    // A name no container has goes upstream or fails; it never resolves to a container.
    const [u, du] = await on(["run", "--rm", "--network", "app", "busybox", "sh", "-c", "nslookup nosuchcontainer >/dev/null 2>&1 || echo unresolved"]);
    expect(u.stdout).toBe(du.stdout);
  });

  it("network ls, inspect and connect/disconnect look like dockerd's", async () => {
    const [ls, dls] = await on(["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]);
    expect(ls.stdout).toBe(dls.stdout);
    const fmt = "{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{len .Containers}}";
    const [ins, dins] = await on(["network", "inspect", "--format", fmt, "app", "bridge"]);
    expect(ins.stdout).toBe(dins.stdout);
    await on(["network", "connect", "--alias", "frontend", "app", "web"]);
    // (busybox's static wget crashes in glibc's resolver on both engines: ping resolves instead.)
    const [a, b] = await on(["run", "--rm", "--network", "app", "busybox", "sh", "-c", "for n in frontend web; do ping -c1 -W2 $n | head -1; done"]);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).toMatch(/^PING frontend \(172\.18\.0\.\d+\)(.|\n)*PING web \(172\.18\.0\.\d+\)/);
    const [e, de] = await on(["exec", "web", "sh", "-c", "ip -o -4 addr | awk '{print $2, $4}'"]);
    expect(e.stdout).toBe(de.stdout);
    const [d1, d2] = await on(["network", "disconnect", "app", "web"]);
    expect(d1.stderr).toBe(d2.stderr);
    const [e2, de2] = await on(["exec", "web", "sh", "-c", "ip -o -4 addr | awk '{print $2, $4}'"]);
    expect(ips(e2.stdout)).toBe(ips(de2.stdout));
    expect(e2.stdout).not.toContain("eth1");
  });

  it("isolates networks: a container on one cannot reach (or resolve) one on another", async () => {
    await on(["network", "create", "other"]);
    const probe = "ping -c1 -W1 172.18.0.2 >/dev/null 2>&1 && echo ping-ok || echo ping-blocked; nslookup db >/dev/null 2>&1 && echo dns-ok || echo dns-blocked; wget -qO- -T 2 http://172.17.0.2/ >/dev/null 2>&1 && echo web-ok || echo web-blocked";
    const [a, b] = await on(["run", "--rm", "--network", "other", "busybox", "sh", "-c", probe]);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).toBe("ping-blocked\ndns-blocked\nweb-blocked\n");
    // ... while the same container on app reaches db.
    const [c, dc] = await on(["run", "--rm", "--network", "app", "busybox", "sh", "-c", "ping -c1 -W1 172.18.0.2 >/dev/null && echo ping-ok"]);
    expect(c.stdout).toBe(dc.stdout);
    expect(c.stdout).toBe("ping-ok\n");
  });

  it("refuses bad input in dockerd's words", async () => {
    const cases: string[][] = [
      ["network", "create", "app"], // duplicate name
      ["network", "create", "--subnet", "172.18.5.0/24", "overlapping"],
      ["network", "create", "--subnet", "not-a-cidr", "bad"],
      ["network", "rm", "nosuch"],
      ["network", "rm", "bridge"],
      ["network", "rm", "app"], // db is running on it
      ["network", "inspect", "nosuch"],
      ["network", "connect", "nosuch", "web"],
      ["run", "--rm", "--network", "nosuch", "busybox", "true"],
      ["run", "--rm", "--network", "container:nosuch", "busybox", "true"],
      ["run", "--rm", "-p", "99999:80", "busybox", "true"],
      ["run", "--rm", "-p", "abc", "busybox", "true"],
      ["run", "--rm", "-p", "1.2.3:80:80", "busybox", "true"],
      ["run", "--rm", "--network-alias", "x", "busybox", "true"],
      ["run", "--rm", "--link", "db:d", "busybox", "true"], // db is not on the default bridge
    ];
    for (const args of cases) {
      const [a, b] = await on(args);
      expect(normalize(a.stderr.replace(/\nexit status \d+\n$/, "\n")), args.join(" ")).toBe(normalize(b.stderr.replace(/\nexit status \d+\n$/, "\n")));
      expect(a.code, args.join(" ")).toBe(b.code);
      expect(a.code, args.join(" ")).not.toBe(0);
    }
    // Through the API, past the CLI's own checks.
    const bad = await request(berth.socket, "POST", "/v1.45/containers/create", JSON.stringify({ Image: "busybox", Cmd: ["true"], HostConfig: { PortBindings: { "80/tcp": [{ HostIp: "", HostPort: "70000" }] } } }));
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).message).toBe('invalid port specification: "70000"');
    const badKey = await request(berth.socket, "POST", "/v1.45/containers/create", JSON.stringify({ Image: "busybox", Cmd: ["true"], ExposedPorts: { "http/tcp": {} } }));
    expect(badKey.status).toBe(400);
    expect(JSON.parse(badKey.body).message).toBe('invalid port specification: "http/tcp"');
  });
});

describe("teardown", () => {
  it("removes veths, proxies, bridges and address leases with the containers and networks", async () => {
    await on(["rm", "-f", "web", "exp", "db"]);
    const [p1, p2] = await on(["network", "prune", "-f"]);
    expect(p1.stdout.split("\n").sort()).toEqual(p2.stdout.split("\n").sort());
    for (const d of both()) {
      const links = d.netns.exec(["ip", "-o", "link"]).stdout;
      expect(links, d.name).not.toMatch(/veth|br-/);
      expect(d.netns.exec(["curl", "-s", "-m", "1", "http://127.0.0.1:8080/"]).code, d.name).not.toBe(0);
    }
    // The kernel path of the published ports (DNAT rules) went with them.
    expect(berth.netns.exec(["sh", "-c", "iptables-save -t nat | grep -c -- '-j DNAT' || true"]).stdout).toBe("0\n");
    // Addresses are free again: the next container on the default bridge gets the first one.
    const r = await docker(berth, ["run", "--rm", "busybox", "sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'"]);
    expect(r.stdout).toBe("172.17.0.2/16\n");
  });
});
