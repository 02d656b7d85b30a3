// The orchestrator's REST API and socket gateway against a real database and real sandboxes:
// accounts, bad input, and the promise that check scripts and solutions never leave the server.
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { io as connectSocket } from "socket.io-client";
import { getCheck, getSetup, loadLabs, renderLab, solutionsFor } from "@berth/labkit";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { REPO_ROOT } from "../src/config.js";
import { freshDataDir } from "./fresh-data-dir.js";

let berth: Orchestrator;

beforeAll(async () => {
  const dataDir = await freshDataDir("berth-api-");
  process.env.BERTH_DATA_DIR = dataDir;
  berth = await startOrchestrator({ port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, instance: `api${process.pid}` });
});
afterAll(async () => {
  await berth?.close();
});

async function api(method: string, url: string, body?: unknown, cookie?: string, contentType = "application/json") {
  const res = await fetch(berth.url + url, {
    method,
    headers: { ...(body !== undefined ? { "content-type": contentType } : {}), ...(cookie ? { cookie } : {}) },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, cookie: res.headers.get("set-cookie")?.split(";")[0], text };
}

describe("accounts", () => {
  it("makes learners only, never signs in at sign-up, and gives httpOnly session cookies at sign-in", async () => {
    const first = await api("POST", "/api/auth/signup", { email: "Ada@Example.org", password: "correct horse" });
    expect(first.status).toBe(200);
    expect(first.cookie).toBeUndefined();
    await api("POST", "/api/auth/signup", { email: "bob@example.org", password: "battery staple" });
    const ada = await api("POST", "/api/auth/signin", { email: "ada@example.org", password: "correct horse" });
    expect(ada.json.user).toMatchObject({ email: "ada@example.org", role: "learner" });
    const bob = await api("POST", "/api/auth/signin", { email: "bob@example.org", password: "battery staple" });
    expect(bob.json.user.role).toBe("learner");

    const me = await api("GET", "/api/me", undefined, bob.cookie);
    expect(me.json.user.email).toBe("bob@example.org");
    expect((await api("GET", "/api/me")).status).toBe(401);
  });

  it("refuses a wrong password and an unknown account alike; a taken email's sign-up changes nothing", async () => {
    expect((await api("POST", "/api/auth/signup", { email: "ada@example.org", password: "whatever1" })).status).toBe(200);
    expect((await api("POST", "/api/auth/signin", { email: "ada@example.org", password: "whatever1" })).status).toBe(401);
    expect((await api("POST", "/api/auth/signin", { email: "ada@example.org", password: "wrong pass" })).status).toBe(401);
    expect((await api("POST", "/api/auth/signin", { email: "nobody@example.org", password: "wrong pass" })).status).toBe(401);
    const ok = await api("POST", "/api/auth/signin", { email: "ada@example.org", password: "correct horse" });
    expect(ok.status).toBe(200);
    expect(ok.cookie).toMatch(/^berth_session=/);
  });

  it("signs out: the session no longer works", async () => {
    const s = await api("POST", "/api/auth/signin", { email: "ada@example.org", password: "correct horse" });
    expect((await api("POST", "/api/auth/signout", undefined, s.cookie)).status).toBe(204);
    expect((await api("GET", "/api/me", undefined, s.cookie)).status).toBe(401);
  });
});

describe("bad input gets a 4xx with a message", () => {
  it.each([
    ["malformed JSON", "{not json", "application/json", 400, /not valid JSON/],
    ["a bad email", { email: "nope", password: "longenough" }, "application/json", 400, /email/],
    ["a short password", { email: "c@example.org", password: "short" }, "application/json", 400, /8 characters/],
    ["a form post (not JSON)", "email=a", "application/x-www-form-urlencoded", 415, /JSON/],
    ["an oversized body", { email: "d@example.org", password: "x".repeat(100_000) }, "application/json", 413, /too large/],
  ])("%s", async (_name, body, type, status, message) => {
    const res = await api("POST", "/api/auth/signup", body, undefined, type as string);
    expect(res.status).toBe(status);
    expect(res.json.error).toMatch(message as RegExp);
  });

  it("unknown endpoints, labs and checks are 404s; wrong methods 405", async () => {
    const s = await api("POST", "/api/auth/signin", { email: "bob@example.org", password: "battery staple" });
    expect((await api("GET", "/api/nope")).status).toBe(404);
    expect((await api("GET", "/api/labs/no-such-lab", undefined, s.cookie)).status).toBe(404);
    expect((await api("DELETE", "/api/labs")).status).toBe(405);
    const labs = (await api("GET", "/api/labs")).json.labs;
    expect((await api("POST", `/api/labs/${labs[0].id}/checks/no-such-check`, undefined, s.cookie)).status).toBe(404);
  });

  it("a check before the sandbox runs is a 409 that says what to do", async () => {
    const s = await api("POST", "/api/auth/signin", { email: "bob@example.org", password: "battery staple" });
    const lab = (await api("GET", "/api/labs")).json.labs[0];
    const view = (await api("GET", `/api/labs/${lab.id}`, undefined, s.cookie)).json.lab;
    const checkId = view.steps.flatMap((st: { checks: { id: string }[] }) => st.checks)[0].id;
    const res = await api("POST", `/api/labs/${lab.id}/checks/${checkId}`, undefined, s.cookie);
    expect(res.status).toBe(409);
    expect(res.json.error).toMatch(/open the lab/);
  });
});

describe("the socket gateway", () => {
  it("refuses a socket without a session", async () => {
    const socket = connectSocket(berth.url, { transports: ["websocket"], reconnection: false });
    const err = await new Promise<Error>((resolve) => socket.on("connect_error", resolve));
    expect(err.message).toMatch(/unauthorized/);
    socket.close();
  });

  it("refuses a socket from another site's page even with a valid cookie", async () => {
    const s = await api("POST", "/api/auth/signin", { email: "bob@example.org", password: "battery staple" });
    const socket = connectSocket(berth.url, {
      transports: ["websocket"],
      reconnection: false,
      extraHeaders: { cookie: s.cookie!, origin: "https://evil.example" },
    });
    const err = await new Promise<Error>((resolve) => socket.on("connect_error", resolve));
    expect(err).toBeTruthy();
    socket.close();
  });
});

describe("secrets stay on the server", () => {
  it("no API response carries a check script, a solution or a setup script", async () => {
    const s = await api("POST", "/api/auth/signin", { email: "bob@example.org", password: "battery staple" });
    const { labs } = await loadLabs(path.join(REPO_ROOT, "labs"));
    const secrets: string[] = [];
    for (const lab of labs) {
      const source = readFileSync(path.join(REPO_ROOT, "labs", lab.id, "lab.md"), "utf8");
      for (const text of secretTexts(lab)) {
        // Long, distinctive lines only (short ones such as "fi" appear in any prose), and only those
        // that stand once in the source: a solution may repeat a command the text shows on purpose.
        for (const line of text.split("\n").map((l) => l.trim())) {
          if (line.length >= 24 && source.split(line).length === 2) secrets.push(line);
        }
      }
    }
    expect(secrets.length).toBeGreaterThan(5);

    const bodies: string[] = [(await api("GET", "/api/labs")).text];
    for (const lab of labs) {
      const view = await api("GET", `/api/labs/${lab.id}`, undefined, s.cookie);
      bodies.push(view.text);
      for (const step of view.json.lab.steps) {
        // Every hint revealed (one request per hint): hints are shown, scripts still are not.
        for (const c of step.checks) {
          for (let i = 0; i <= c.hintCount; i++) bodies.push((await api("POST", `/api/labs/${lab.id}/checks/${c.id}/hints`, undefined, s.cookie)).text);
        }
      }
    }
    const all = bodies.join("\n");
    for (const secret of secrets) expect(all.includes(JSON.stringify(secret).slice(1, -1)), secret).toBe(false);
  });
});

/** Every script of a lab that must never reach a browser, through labkit's server-side accessors. */
function secretTexts(lab: Awaited<ReturnType<typeof loadLabs>>["labs"][number]): string[] {
  const out: string[] = [];
  const setup = getSetup(lab);
  if (setup) out.push(setup);
  for (const step of renderLab(lab).steps) {
    for (const s of solutionsFor(lab, step.id)) out.push(s.script);
    for (const c of step.checks) {
      out.push(getCheck(lab, c.id)!.script);
      for (const s of solutionsFor(lab, c.id)) out.push(s.script);
    }
  }
  return out;
}
