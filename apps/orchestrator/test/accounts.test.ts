// Accounts and the guards around them, against a real orchestrator and database: administrators
// only from the console (BERTH_ADMIN_* or the one-time setup link), sign-up answers that do not
// tell taken emails apart, sign-in and sign-up throttles per account and per address (127.0.0.1 and
// 127.0.0.2 are two addresses of one loopback), and the cross-site guard on state-changing requests.
import { request } from "node:http";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createNamespacesDriver } from "@berth/sandbox";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import type { OrchestratorConfig } from "../src/config.js";
import { freshDataDir } from "./fresh-data-dir.js";

const started: Orchestrator[] = [];
// One sandbox driver for every orchestrator of this file, prepared by the first start: these tests
// start Berth nine times for its accounts, never for a sandbox. (Handed in, it stays the file's.)
const driver = createNamespacesDriver();
afterEach(async () => {
  for (const b of started.splice(0)) await b.close();
});
afterAll(async () => {
  for (const b of started.splice(0)) await b.close();
  await driver.close?.();
});

async function start(overrides: Partial<OrchestratorConfig> = {}, dataDir?: string) {
  dataDir ??= await freshDataDir("berth-acct-");
  process.env.BERTH_DATA_DIR = dataDir;
  const b = await startOrchestrator({
    port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, registry: { enabled: false, root: "", port: 0 },
    instance: `acct${process.pid}`, admin: undefined, ...overrides,
  }, { driver });
  started.push(b);
  return { berth: b, dataDir };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  cookie: string | undefined;
}

/** One HTTP request from a chosen local address (so tests can be two clients). */
function call(base: string, method: string, url: string, opts: { body?: unknown; cookie?: string; from?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const u = new URL(url, base);
  const body = opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1", port: u.port, path: u.pathname, method, localAddress: opts.from ?? "127.0.0.1",
        headers: {
          host: u.host,
          ...(body !== undefined ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) } : {}),
          ...(opts.cookie ? { cookie: opts.cookie } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (text += c));
        res.on("end", () => {
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          const set = res.headers["set-cookie"];
          resolve({ status: res.statusCode!, headers: res.headers, text, json, cookie: set?.[0]?.split(";")[0] });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const PASSWORD = "a long enough password";

describe("administrators come from the console", () => {
  it("BERTH_ADMIN_EMAIL/PASSWORD create the admin at start and update it at the next; no setup link", async () => {
    const { berth, dataDir } = await start({ admin: { email: "Root@Example.org", password: "first admin password" } });
    expect(berth.setupUrl).toBeUndefined();
    const me = await call(berth.url, "POST", "/api/auth/signin", { body: { email: "root@example.org", password: "first admin password" } });
    expect(me.status).toBe(200);
    expect(me.json.user.role).toBe("admin");
    await berth.close();

    // The same password at the next start: nothing changes, the session lives on.
    const same = (await start({ admin: { email: "root@example.org", password: "first admin password" } }, dataDir)).berth;
    expect((await call(same.url, "GET", "/api/me", { cookie: me.cookie })).status).toBe(200);
    await same.close();

    // A new password: the old one no longer signs in, and its sessions have ended.
    const again = (await start({ admin: { email: "root@example.org", password: "second admin password" } }, dataDir)).berth;
    expect((await call(again.url, "GET", "/api/me", { cookie: me.cookie })).status).toBe(401);
    expect((await call(again.url, "POST", "/api/auth/signin", { body: { email: "root@example.org", password: "first admin password" } })).status).toBe(401);
    expect((await call(again.url, "POST", "/api/auth/signin", { body: { email: "root@example.org", password: "second admin password" } })).json.user.role).toBe("admin");
  });

  it("a bad BERTH_ADMIN_PASSWORD stops the start with a message naming it", async () => {
    await expect(start({ admin: { email: "root@example.org", password: "short" } })).rejects.toThrow(/BERTH_ADMIN_PASSWORD.*8 characters/);
  });

  it("the first sign-up is a learner; the one-time setup link makes the admin, once", async () => {
    const { berth, dataDir } = await start();
    expect(berth.setupUrl).toMatch(/\/setup#[A-Za-z0-9_-]{40,}$/);
    const token = berth.setupUrl!.split("#")[1]!;

    expect((await call(berth.url, "POST", "/api/auth/signup", { body: { email: "first@example.org", password: PASSWORD } })).status).toBe(200);
    const first = await call(berth.url, "POST", "/api/auth/signin", { body: { email: "first@example.org", password: PASSWORD } });
    expect(first.json.user.role).toBe("learner");

    const wrong = await call(berth.url, "POST", "/api/setup/admin", { body: { token: "x".repeat(43), email: "boss@example.org", password: PASSWORD } });
    expect(wrong.status).toBe(403);
    expect(wrong.json.error).toMatch(/setup link is not valid/);

    const made = await call(berth.url, "POST", "/api/setup/admin", { body: { token, email: "boss@example.org", password: PASSWORD, name: "Boss" } });
    expect(made.status).toBe(201);
    expect(made.json.user).toMatchObject({ email: "boss@example.org", role: "admin", name: "Boss" });
    expect(made.cookie).toMatch(/^berth_session=/);
    expect((await call(berth.url, "GET", "/api/me", { cookie: made.cookie })).json.user.role).toBe("admin");

    // Single use: the same link again (even for another email) does nothing.
    const reused = await call(berth.url, "POST", "/api/setup/admin", { body: { token, email: "thief@example.org", password: PASSWORD } });
    expect(reused.status).toBe(403);
    expect((await call(berth.url, "POST", "/api/auth/signin", { body: { email: "thief@example.org", password: PASSWORD } })).status).toBe(401);

    // With an admin in the database, the next start prints no link.
    await berth.close();
    expect((await start({}, dataDir)).berth.setupUrl).toBeUndefined();
  });

  it("an expired setup link is refused", async () => {
    const { berth } = await start({ setupLinkTtlMs: 1 });
    const token = berth.setupUrl!.split("#")[1]!;
    await new Promise((r) => setTimeout(r, 20));
    expect((await call(berth.url, "POST", "/api/setup/admin", { body: { token, email: "late@example.org", password: PASSWORD } })).status).toBe(403);
  });
});

describe("sign-up does not tell which emails have accounts", () => {
  it("answers a taken email exactly as a new one: status, body, headers, no cookie", async () => {
    const { berth } = await start();
    const fresh = await call(berth.url, "POST", "/api/auth/signup", { body: { email: "taken@example.org", password: PASSWORD } });
    const taken = await call(berth.url, "POST", "/api/auth/signup", { body: { email: "taken@example.org", password: "another password" } });
    const other = await call(berth.url, "POST", "/api/auth/signup", { body: { email: "new@example.org", password: "another password" } });
    const strip = (a: Answer) => ({ status: a.status, text: a.text, headers: { ...a.headers, date: undefined } });
    expect(strip(taken)).toEqual(strip(other));
    expect(strip(fresh)).toEqual(strip(other));
    expect(fresh.cookie).toBeUndefined();
    expect(taken.cookie).toBeUndefined();
    // The taken account keeps its password.
    expect((await call(berth.url, "POST", "/api/auth/signin", { body: { email: "taken@example.org", password: PASSWORD } })).status).toBe(200);
    expect((await call(berth.url, "POST", "/api/auth/signin", { body: { email: "taken@example.org", password: "another password" } })).status).toBe(401);
  });
});

describe("throttles", () => {
  it("wrong passwords: free at first, then 429 with Retry-After per account, even with the right password, from any address", async () => {
    const { berth } = await start({ authLimits: { signupsPerIpPerHour: 30, signinFreeFailuresPerAccount: 5, signinFreeFailuresPerIp: 1000 } });
    await call(berth.url, "POST", "/api/auth/signup", { body: { email: "victim@example.org", password: PASSWORD } });
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 50; i++) {
      const r = await call(berth.url, "POST", "/api/auth/signin", { body: { email: "victim@example.org", password: `guess ${i}` } });
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers["retry-after"] as string;
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(40);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // Blocked means blocked: the right password waits too, and so does another address.
    const right = await call(berth.url, "POST", "/api/auth/signin", { body: { email: "victim@example.org", password: PASSWORD }, from: "127.0.0.2" });
    expect(right.status).toBe(429);
    expect(right.json.error).toMatch(/try again in \d+ s/);
    // An unknown email is throttled the same way (429s must not reveal which accounts exist).
    for (let i = 0; i < 6; i++) await call(berth.url, "POST", "/api/auth/signin", { body: { email: "ghost@example.org", password: `guess ${i}` } });
    expect((await call(berth.url, "POST", "/api/auth/signin", { body: { email: "ghost@example.org", password: "x" } })).status).toBe(429);
  });

  it("wrong passwords across many accounts from one address: that address waits, another does not", async () => {
    const { berth } = await start({ authLimits: { signupsPerIpPerHour: 30, signinFreeFailuresPerAccount: 1000, signinFreeFailuresPerIp: 10 } });
    await call(berth.url, "POST", "/api/auth/signup", { body: { email: "someone@example.org", password: PASSWORD } });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await call(berth.url, "POST", "/api/auth/signin", { body: { email: `spray${i}@example.org`, password: "nope nope" } })).status);
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(11).every((s) => s === 429)).toBe(true);
    expect((await call(berth.url, "POST", "/api/auth/signin", { body: { email: "someone@example.org", password: PASSWORD }, from: "127.0.0.2" })).status).toBe(200);
  });

  it("sign-ups per address: a burst, then 429 with Retry-After; another address still signs up", async () => {
    const { berth } = await start({ authLimits: { signupsPerIpPerHour: 3, signinFreeFailuresPerAccount: 5, signinFreeFailuresPerIp: 20 } });
    const statuses: number[] = [];
    let last: Answer | undefined;
    for (let i = 0; i < 6; i++) {
      last = await call(berth.url, "POST", "/api/auth/signup", { body: { email: `bulk${i}@example.org`, password: PASSWORD } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
    expect(Number(last!.headers["retry-after"])).toBeGreaterThan(60); // 3 an hour: the next in ~20 minutes
    expect((await call(berth.url, "POST", "/api/auth/signin", { body: { email: "bulk4@example.org", password: PASSWORD } })).status).toBe(401);
    expect((await call(berth.url, "POST", "/api/auth/signup", { body: { email: "elsewhere@example.org", password: PASSWORD }, from: "127.0.0.2" })).status).toBe(200);
  });
});

describe("cross-site requests change nothing", () => {
  it("a cross-site text/plain POST to signout is refused with 403 and the session lives on", async () => {
    const { berth } = await start();
    await call(berth.url, "POST", "/api/auth/signup", { body: { email: "csrf@example.org", password: PASSWORD } });
    const { cookie } = await call(berth.url, "POST", "/api/auth/signin", { body: { email: "csrf@example.org", password: PASSWORD } });
    const attacks: Record<string, string>[] = [
      { origin: "https://evil.example", "sec-fetch-site": "cross-site", "content-type": "text/plain" },
      { origin: "https://evil.example", "content-type": "text/plain" }, // plain HTTP: no Sec-Fetch-* sent
      { "sec-fetch-site": "same-site", "content-type": "text/plain" },
      { origin: "null", "content-type": "text/plain" }, // a sandboxed frame (the web preview)
    ];
    for (const headers of attacks) {
      const r = await call(berth.url, "POST", "/api/auth/signout", { cookie, headers, body: "x" });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.json.error).toMatch(/cross-site request refused/);
      expect(r.headers["set-cookie"]).toBeUndefined();
    }
    expect((await call(berth.url, "GET", "/api/me", { cookie })).status).toBe(200);
    // This site's own pages (Origin = Host), and clients that are not browsers (neither header), may.
    const own = await call(berth.url, "POST", "/api/auth/signout", { cookie, headers: { origin: berth.url, "sec-fetch-site": "same-origin" } });
    expect(own.status).toBe(204);
    expect((await call(berth.url, "GET", "/api/me", { cookie })).status).toBe(401);
  });
});
