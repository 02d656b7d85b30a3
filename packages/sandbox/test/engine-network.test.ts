// Container networking nested in a learner's sandbox (a user namespace with its own network
// namespace): the engine's bridge, veth pairs, iptables (nft, as the rootfs's `iptables` is) and
// the userland proxy all live in the sandbox's namespaces. Every command goes through the agent's
// exec, as the learner's terminal would run it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../src/index.js";
import { sh, testDriver, testId } from "./sandbox-fixture.js";

const driver = testDriver();
const id = testId("net");
let client: AgentClient;

async function waitForEngine(timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const r = await sh(client, "docker version --format '{{.Server.Version}}' 2>&1", { timeoutMs: 10_000 });
    if (r.exitCode === 0) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`the engine did not answer: ${r.stdout}\n${(await sh(client, "cat /var/log/berth-engine.log")).stdout}`);
    await new Promise((r2) => setTimeout(r2, 100));
  }
}

beforeAll(async () => {
  await driver.prepare();
  await driver.create({ id, hostname: "net-lab" });
  client = await AgentClient.connect(await driver.connect(id));
  await waitForEngine();
}, 120_000);

afterAll(async () => {
  client?.close();
  await driver.destroy(id);
});

const WEB = `sh -c 'mkdir -p /www && echo hello from web > /www/index.html && exec httpd -f -p 80 -h /www'`;

describe("networking in a sandbox", () => {
  it("publishes a web server the sandbox shell reaches with curl, on the port and on the container's address", async () => {
    const run = await sh(client, `docker run -d --name web --hostname web -p 8080:80 busybox ${WEB} >/dev/null && docker port web && docker inspect -f '{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}}' web`);
    expect(run.stderr).toBe("");
    expect(run.stdout, (await sh(client, "docker ps -a; docker logs web; tail /var/log/berth-engine.log")).stdout).not.toBe("");
    expect(run.stdout).toMatch(/^80\/tcp -> 0\.0\.0\.0:8080\n(80\/tcp -> \[::\]:8080\n)?172\.17\.0\.2 172\.17\.0\.1\n$/);
    const r = await sh(client, "for i in $(seq 50); do curl -s -m 2 http://127.0.0.1:8080/ && break; sleep 0.1; done; curl -s -m 2 http://172.17.0.2/; ping -c1 -W2 172.17.0.2 >/dev/null && echo ping-ok");
    expect(r.stdout).toBe("hello from web\nhello from web\nping-ok\n");
  });

  it("runs iptables inside the sandbox's own namespace (NAT and isolation chains)", async () => {
    const r = await sh(client, "iptables -V; iptables -S FORWARD | grep -c BERTH-FWD; iptables -t nat -S POSTROUTING | grep -c BERTH-NAT; grep -c 'network:' /var/log/berth-engine.log");
    expect(r.stdout).toMatch(/^iptables v1\.8\.\d+ \((nf_tables|legacy)\)\n1\n1\n0\n$/);
  });

  it("resolves names on a user network and isolates it from another", async () => {
    const r = await sh(
      client,
      "docker network create app >/dev/null && docker network create other >/dev/null && docker run -d --name db --network app --network-alias database busybox sleep 300 >/dev/null && " +
        "docker run --rm --network app busybox sh -c 'nslookup database | grep -A1 ^Name: ; ping -c1 -W2 db >/dev/null && echo db-reached' && " +
        "docker run --rm --network other busybox sh -c 'ping -c1 -W1 172.18.0.2 >/dev/null 2>&1 && echo leak || echo blocked; nslookup db >/dev/null 2>&1 && echo leak || echo unresolved'",
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("Name:\tdatabase\nAddress: 172.18.0.2\ndb-reached\nblocked\nunresolved\n");
  });

  it("NATs a container's traffic out through the sandbox's uplink, and forwards other names upstream", async () => {
    // The sandbox may only reach its DNS server (10.255.255.53) beyond its own namespace, and only
    // from its own address: an answer proves the container's packets were masqueraded. On a user
    // network the embedded DNS forwards the name itself.
    const r = await sh(
      client,
      "docker run --rm busybox sh -c 'nslookup deb.debian.org | grep -c ^Name:' && docker network create up >/dev/null && docker run --rm --network up busybox sh -c 'nslookup deb.debian.org | grep -c ^Name:' && docker network rm up >/dev/null",
      { timeoutMs: 30_000 },
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^[1-9]\n[1-9]\n$/);
  });

  it("tears everything down: no veth, no bridge of a removed network, proxies closed", async () => {
    const r = await sh(client, "docker rm -f web db >/dev/null && docker network rm app other >/dev/null && ip -o link | grep -cE 'veth|br-'; curl -s -m 1 http://127.0.0.1:8080/ || echo closed");
    expect(r.stdout).toBe("0\nclosed\n");
  });
});
