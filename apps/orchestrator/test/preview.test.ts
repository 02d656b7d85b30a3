// The web preview through a real orchestrator and a real sandbox: servers started inside the
// learner's sandbox (busybox httpd with a CGI, a busybox nc that upgrades) answer through
// /preview/<lab>/<port>/, for that learner only, with the headers that keep the page away from
// Berth's API, and every tunnel is closed afterwards.
import { createHash, randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespacesDriver } from "@berth/sandbox";
import { TUNNEL_WINDOW } from "@berth/protocol";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { TunnelClient } from "../src/preview/tunnel-client.js";
import { PASSWORD, attachTerminal, signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const LAB = "namespaces-by-hand";
const instance = `prev${process.pid}`;
const dataDir = await freshDataDir("berth-preview-");
const driver = createNamespacesDriver();
let berth: Orchestrator;
const terminals: { close(): void }[] = [];

/** Opens the lab's terminal (which starts the learner's sandbox) and waits for the prompt. */
async function openLab(cookie: string): Promise<void> {
  terminals.push(await attachTerminal(berth.url, cookie, LAB));
}

async function sh(userId: string, script: string): Promise<string> {
  const sb = berth.sandboxes.find(userId, LAB)!;
  const r = await berth.sandboxes.exec(sb, script, 30_000, 1024 * 1024);
  if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${r.stderr.toString("utf8")}`);
  return r.stdout.toString("utf8");
}

const get = (p: string, cookie?: string, init: RequestInit = {}) =>
  fetch(`${berth.url}${p}`, { redirect: "manual", ...init, headers: { ...(cookie ? { cookie } : {}), ...(init.headers as Record<string, string> | undefined) } });

let alice: { cookie: string; id: string; email: string };
let bob: { cookie: string; id: string; email: string };
let bigSha = "";
/** Alice's grant URL for port 8080, from the entry redirect. */
let base = "";

beforeAll(async () => {
  process.env.BERTH_DATA_DIR = dataDir;
  berth = await startOrchestrator({ port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, instance, reapIntervalMs: 3_600_000 });
  alice = await signUp(berth.url, "alice");
  bob = await signUp(berth.url, "bob");
  await openLab(alice.cookie);
  // A static site with a 3 MiB random file, a CGI that shows what reached it and tries to set a
  // cookie, one that hashes a request body, and a server on 9000 that accepts any upgrade after
  // 1.5 s (socket.io would end an upgrade that is silent for 1 s) and echoes. All in the
  // background: the agent's exec returns once the script does.
  bigSha = (
    await sh(
      alice.id,
      `set -e
mkdir -p /root/site/cgi-bin
echo '<h1>hello from the sandbox</h1>' > /root/site/index.html
head -c 3145728 /dev/urandom > /root/site/big.bin
cat > /root/site/cgi-bin/env <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\\r\\nSet-Cookie: evil=1; Path=/\\r\\n\\r\\n'
echo "cookie=[$HTTP_COOKIE] host=[$HTTP_HOST] prefix=[$HTTP_X_FORWARDED_PREFIX]"
EOF
cat > /root/site/cgi-bin/sum <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
head -c "$CONTENT_LENGTH" | sha256sum | cut -d' ' -f1
EOF
cat > /root/upgrade.sh <<'EOF'
#!/bin/sh
cr=$(printf '\\r')
while read -r line; do [ "$line" = "$cr" ] || [ -z "$line" ] && break; done
sleep 1.5
printf 'HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: echo\\r\\nConnection: Upgrade\\r\\n\\r\\n'
exec cat
EOF
chmod +x /root/site/cgi-bin/env /root/site/cgi-bin/sum /root/upgrade.sh
setsid busybox httpd -f -p 8080 -h /root/site </dev/null >/dev/null 2>&1 &
setsid busybox nc -ll -p 9000 -e /root/upgrade.sh </dev/null >/dev/null 2>&1 &
setsid node -e 'require("http").createServer((q, s) => s.end("hello over ipv6")).listen(8090, "::1")' </dev/null >/dev/null 2>&1 &
# (busybox may bind 8080 and 9000 dual-stack, so they show in tcp6: look in both)
listening() { cat /proc/net/tcp /proc/net/tcp6 | grep -q ":$1 0*:0000 0A"; }
for i in $(seq 100); do listening 1F90 && listening 2328 && listening 1F9A && break; sleep 0.1; done
sha256sum /root/site/big.bin | cut -d' ' -f1`,
    )
  ).trim();
  await openLab(bob.cookie);
});

afterAll(async () => {
  for (const t of terminals) t.close();
  await berth?.close();
  for (const s of (await driver.list()).filter((s) => s.id.startsWith(`${instance}-`))) await driver.destroy(s.id);
  rmSync(dataDir, { recursive: true, force: true });
});

describe("web preview", () => {
  it("sends the learner from the entry URL to a grant URL, and serves the page there", async () => {
    const entry = await get(`/preview/${LAB}/8080/`, alice.cookie);
    expect(entry.status).toBe(307);
    base = entry.headers.get("location")!.replace(/\/$/, "");
    expect(base).toMatch(/^\/preview\/~[A-Za-z0-9_-]{43}$/);

    // The page itself, from the sandboxed document's point of view: no cookie at all.
    const page = await get(`${base}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("hello from the sandbox");
    expect(page.headers.get("content-security-policy")).toBe("sandbox allow-scripts allow-forms allow-popups");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");

    // Deeper paths keep their rest, and a missing slash after the port is added.
    const again = await get(`/preview/${LAB}/8080/cgi-bin/env?x=1`, alice.cookie);
    expect(again.headers.get("location")).toBe(`${base}/cgi-bin/env?x=1`);
    const bare = await get(`/preview/${LAB}/8080`, alice.cookie);
    expect(bare.status).toBe(307);
    expect(bare.headers.get("location")).toBe(`${base}/`);
  });

  it("reaches a server that listens on the IPv6 loopback only", async () => {
    const entry = await get(`/preview/${LAB}/8090/`, alice.cookie);
    const res = await get(entry.headers.get("location")!);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("hello over ipv6");
  });

  it("never passes Berth's cookie in, nor the server's Set-Cookie out", async () => {
    const res = await get(`${base}/cgi-bin/env`, alice.cookie);
    expect(res.status).toBe(200);
    expect(res.headers.get("set-cookie")).toBeNull();
    const body = await res.text();
    expect(body).toContain("cookie=[]");
    expect(body).toContain("host=[localhost:8080]");
    expect(body).toContain(`prefix=[${base}]`);
  });

  it("is for that learner only: others get 404, strangers 401", async () => {
    // Bob has a sandbox for the same lab, but nothing on 8080: his entry URL is about his sandbox.
    const bobs = await get(`/preview/${LAB}/8080/`, bob.cookie);
    expect(bobs.status).toBe(307);
    const bobPage = await get(bobs.headers.get("location")!);
    expect(bobPage.status).toBe(502);
    // Alice's grant URL in Bob's signed-in browser: as if it did not exist.
    const stolen = await get(`${base}/`, bob.cookie);
    expect(stolen.status).toBe(404);
    expect(await stolen.text()).not.toContain("hello from the sandbox");
    // A lab nobody has a sandbox for: 404, whoever asks.
    expect((await get(`/preview/cgroups-by-hand/8080/`, alice.cookie)).status).toBe(404);
    // Not signed in.
    const anon = await get(`/preview/${LAB}/8080/`);
    expect(anon.status).toBe(401);
    expect(await anon.text()).toContain("/signin?next=");
    // A made-up grant.
    expect((await get(`/preview/~${"A".repeat(43)}/`)).status).toBe(404);
  });

  it("stops serving a grant once its session is signed out", async () => {
    // A second session of Alice's (another browser): its own grant.
    const signin = await fetch(`${berth.url}/api/auth/signin`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: alice.email, password: PASSWORD }),
    });
    const other = signin.headers.get("set-cookie")!.split(";")[0]!;
    const grant = (await get(`/preview/${LAB}/8080/`, other)).headers.get("location")!;
    expect(grant).not.toBe(`${base}/`);
    expect((await get(grant)).status).toBe(200);
    expect((await fetch(`${berth.url}/api/auth/signout`, { method: "POST", headers: { cookie: other } })).status).toBe(204);
    // The grant trusts its session for 5 s at most.
    await expect.poll(async () => (await get(grant)).status, { timeout: 10_000, interval: 1000 }).toBe(404);
    // The first session's grant is untouched.
    expect((await get(`${base}/`)).status).toBe(200);
  });

  it("answers a bad port with 400 and a closed one with a 502 that says so", async () => {
    for (const port of ["0", "abc", "70000", "80.5"]) {
      const res = await get(`/preview/${LAB}/${port}/`, alice.cookie);
      expect(res.status, port).toBe(400);
      expect(await res.text()).toContain("from 1 to 65535");
    }
    const entry = await get(`/preview/${LAB}/8081/`, alice.cookie);
    const closed = await get(entry.headers.get("location")!);
    expect(closed.status).toBe(502);
    expect(await closed.text()).toContain("Nothing listens on port 8081 in your sandbox");
  });

  it("streams a 3 MiB response and a 2 MiB request body byte-exact", async () => {
    const big = await get(`${base}/big.bin`);
    expect(big.status).toBe(200);
    const bytes = Buffer.from(await big.arrayBuffer());
    expect(bytes.length).toBe(3 * 1024 * 1024);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(bigSha);

    const body = randomBytes(2 * 1024 * 1024);
    const sum = await get(`${base}/cgi-bin/sum`, undefined, { method: "POST", body, headers: { "content-type": "application/octet-stream" } });
    expect(sum.status).toBe(200);
    expect((await sum.text()).trim()).toBe(createHash("sha256").update(body).digest("hex"));
  });

  it("passes an upgrade through, both ways, even when the server takes its time to agree", async () => {
    const entry = await get(`/preview/${LAB}/9000/`, alice.cookie);
    const url = new URL(entry.headers.get("location")! + "echo", berth.url);
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(url, { headers: { connection: "Upgrade", upgrade: "echo" } });
      req.on("upgrade", (res, socket) => {
        expect(res.statusCode).toBe(101);
        let got = "";
        socket.on("data", (d: Buffer) => {
          got += d.toString("utf8");
          if (got.includes("\n")) {
            socket.destroy();
            resolve(got);
          }
        });
        socket.write("ping through the tunnel\n");
      });
      req.on("response", (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
      req.on("error", reject);
      req.end();
    });
    expect(echoed).toBe("ping through the tunnel\n");
  });

  it("holds a reader that does not read to one window, then delivers every byte", async () => {
    const sb = berth.sandboxes.find(alice.id, LAB)!;
    const client = await TunnelClient.connect(await driver.connect(sb.id));
    try {
      const stream = await client.open(8080);
      stream.write("GET /big.bin HTTP/1.0\r\nHost: localhost\r\n\r\n");
      // Nobody reads: the agent must stop sending once a window is unacknowledged.
      await new Promise((r) => setTimeout(r, 1500));
      const held = stream.readableLength;
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThanOrEqual(TUNNEL_WINDOW + 64 * 1024);
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      const all = Buffer.concat(chunks);
      const body = all.subarray(all.indexOf("\r\n\r\n") + 4);
      expect(createHash("sha256").update(body).digest("hex")).toBe(bigSha);
    } finally {
      client.close();
    }
  });

  it("leaves no tunnel open in the agent afterwards", async () => {
    const sb = berth.sandboxes.find(alice.id, LAB)!;
    await expect.poll(async () => (await sb.agent.request({ op: "health" })).tunnels, { timeout: 5000 }).toBe(0);
    // And no connection the agent made is still established inside the sandbox (8080 = 1F90,
    // 9000 = 2328, 8090 = 1F9A).
    const tcp = await sh(alice.id, "cat /proc/net/tcp /proc/net/tcp6");
    const established = tcp.split("\n").filter((l) => / 01 /.test(l) && /:(1F90|2328|1F9A) /.test(l));
    expect(established).toEqual([]);
  });
});
