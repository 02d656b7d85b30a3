// The instructor's side against a real orchestrator and database (no sandbox is started): every
// admin and cohort route and every instructor socket event refuses a learner, another instructor
// and a visitor without a session; invites keep their seat limit and expiry; the board pushes a
// learner's row when they act and puts a learner whose check keeps failing first; messages reach
// the learner's sockets; the grade CSV has a row per learner and a column per lab and check.
import os from "node:os";
import path from "node:path";
import { io as connectSocket, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { signIn, signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const ADMIN = { email: "cohort-admin@example.org", password: "cohort test admin password" };
const LAB = "first-containers";

let berth: Orchestrator;
let url: string;
type Who = { cookie: string; id: string; email: string };
let admin: Who, inst: Who, other: Who, learner: Who, outsider: Who;
const sockets: Socket[] = [];

async function call(method: string, p: string, who?: { cookie: string }, body?: unknown): Promise<{ status: number; json: any; text: string }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await fetch(`${url}${p}`, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...(who ? { cookie: who.cookie } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

function socketOf(who: { cookie: string }): Promise<Socket> {
  const socket = connectSocket(url, { transports: ["websocket"], extraHeaders: { cookie: who.cookie }, reconnection: false });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

function emitAck<T>(socket: Socket, event: string, msg: unknown): Promise<T> {
  return new Promise((resolve) => socket.emit(event, msg, resolve));
}

function next<T>(socket: Socket, event: string, match: (m: T) => boolean = () => true, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    const on = (m: T) => {
      if (!match(m)) return;
      clearTimeout(timer);
      socket.off(event, on);
      resolve(m);
    };
    socket.on(event, on);
  });
}

beforeAll(async () => {
  process.env.BERTH_DATA_DIR = await freshDataDir("berth-cohorts-");
  berth = await startOrchestrator({
    port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, registry: { enabled: false, root: "", port: 0 },
    instance: `coh${process.pid}`, admin: ADMIN,
    authLimits: { signupsPerIpPerHour: 100_000, signinFreeFailuresPerAccount: 5, signinFreeFailuresPerIp: 1000 },
  });
  url = berth.url;
  admin = { ...(await signIn(url, ADMIN.email, ADMIN.password)), email: ADMIN.email };
  [inst, other, learner, outsider] = await Promise.all([signUp(url, "inst"), signUp(url, "other"), signUp(url, "learner"), signUp(url, "outsider")]);
}, 180_000);

afterAll(async () => {
  for (const s of sockets) s.close();
  await berth?.close();
});

describe("roles", () => {
  it("only an admin lists accounts and makes instructors; admins are not made here", async () => {
    for (const [who, status] of [[undefined, 401], [learner, 403], [inst, 403]] as const) {
      expect((await call("GET", "/api/admin/users", who)).status).toBe(status);
      expect((await call("PUT", `/api/admin/users/${other.id}/role`, who, { role: "instructor" })).status).toBe(status);
    }
    const list = await call("GET", `/api/admin/users?q=${encodeURIComponent(inst.email)}`, admin);
    expect(list.status).toBe(200);
    expect(list.json.users.map((u: { email: string }) => u.email)).toEqual([inst.email]);
    for (const who of [inst, other]) {
      const r = await call("PUT", `/api/admin/users/${who.id}/role`, admin, { role: "instructor" });
      expect(r.status).toBe(200);
      expect(r.json.user.role).toBe("instructor");
    }
    const me = await call("GET", "/api/admin/users", admin);
    const adminId = me.json.users.find((u: { email: string }) => u.email === ADMIN.email).id;
    expect((await call("PUT", `/api/admin/users/${adminId}/role`, admin, { role: "learner" })).status).toBe(409);
    expect((await call("PUT", `/api/admin/users/${learner.id}/role`, admin, { role: "admin" })).status).toBe(400);
    expect((await call("PUT", "/api/admin/users/nobody/role", admin, { role: "instructor" })).status).toBe(404);
  });
});

describe("cohorts", () => {
  let cohortId = "";
  let token = "";

  it("an instructor creates a cohort; a learner or a visitor cannot, and lists are per owner", async () => {
    expect((await call("POST", "/api/cohorts", undefined, { name: "x" })).status).toBe(401);
    expect((await call("POST", "/api/cohorts", learner, { name: "x" })).status).toBe(403);
    expect((await call("GET", "/api/cohorts", learner)).status).toBe(403);
    const bad = await call("POST", "/api/cohorts", inst, { name: "  " });
    expect(bad.status).toBe(400);
    expect(bad.json.field).toBe("name");
    const made = await call("POST", "/api/cohorts", inst, { name: "Monday class", stuckFails: 3 });
    expect(made.status).toBe(201);
    cohortId = made.json.cohort.id;
    expect((await call("GET", "/api/cohorts", inst)).json.cohorts.map((c: { id: string }) => c.id)).toContain(cohortId);
    expect((await call("GET", "/api/cohorts", other)).json.cohorts.map((c: { id: string }) => c.id)).not.toContain(cohortId);
    expect((await call("GET", "/api/cohorts", admin)).json.cohorts.map((c: { id: string }) => c.id)).toContain(cohortId);
  });

  it("takes labs of the catalog only, with due dates", async () => {
    const unknown = await call("PUT", `/api/cohorts/${cohortId}/labs`, inst, { labs: [{ labId: "no-such-lab" }] });
    expect(unknown.status).toBe(400);
    expect(unknown.json.field).toBe("labs.0.labId");
    expect((await call("PUT", `/api/cohorts/${cohortId}/labs`, inst, { labs: [{ labId: LAB, dueAt: "not a date" }] })).status).toBe(400);
    const ok = await call("PUT", `/api/cohorts/${cohortId}/labs`, inst, { labs: [{ labId: LAB, dueAt: "2030-01-01T12:00:00Z" }] });
    expect(ok.status).toBe(200);
    expect(ok.json.cohort.labs).toEqual([{ labId: LAB, title: "Your first containers", dueAt: "2030-01-01T12:00:00.000Z" }]);
  });

  it("an invite link admits learners up to its seat limit and not after it expires or is withdrawn", async () => {
    const invite = await call("POST", `/api/cohorts/${cohortId}/invites`, inst, { expiresInHours: 24, seatLimit: 1 });
    expect(invite.status).toBe(201);
    expect(invite.json.invite.url).toMatch(/^\/join#[\w-]{20,}$/);
    token = invite.json.invite.url.split("#")[1];
    expect((await call("POST", "/api/invites/join", undefined, { token })).status).toBe(401);
    expect((await call("POST", "/api/invites/lookup", undefined, { token: "x".repeat(30) })).status).toBe(404);
    const look = await call("POST", "/api/invites/lookup", undefined, { token });
    expect(look.json.invite).toMatchObject({ cohortName: "Monday class", seatsLeft: 1, closed: null });
    const joined = await call("POST", "/api/invites/join", learner, { token });
    expect(joined.status).toBe(200);
    expect(joined.json).toMatchObject({ cohortId, alreadyMember: false });
    expect((await call("POST", "/api/invites/join", learner, { token })).json.alreadyMember).toBe(true);
    const full = await call("POST", "/api/invites/join", outsider, { token });
    expect(full.status).toBe(410);
    expect(full.json.error).toMatch(/no seats left/);
    // Expired and withdrawn links.
    const soon = await call("POST", `/api/cohorts/${cohortId}/invites`, inst, { expiresInHours: 0.01, seatLimit: 5 });
    const soonToken = soon.json.invite.url.split("#")[1];
    await berth.db.cohortInvite.update({ where: { id: soon.json.invite.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect((await call("POST", "/api/invites/join", outsider, { token: soonToken })).json.error).toMatch(/expired/);
    const wide = await call("POST", `/api/cohorts/${cohortId}/invites`, inst, { expiresInHours: 1, seatLimit: 5 });
    expect((await call("DELETE", `/api/cohorts/${cohortId}/invites/${wide.json.invite.id}`, inst)).status).toBe(204);
    expect((await call("POST", "/api/invites/join", outsider, { token: wide.json.invite.url.split("#")[1] })).json.error).toMatch(/withdrawn/);
  });

  it("many joins at once never pass the seat limit", async () => {
    const invite = await call("POST", `/api/cohorts/${cohortId}/invites`, inst, { expiresInHours: 1, seatLimit: 3 });
    const t = invite.json.invite.url.split("#")[1];
    const crowd = await Promise.all(Array.from({ length: 8 }, (_, i) => signUp(url, `crowd${i}`)));
    const answers = await Promise.all(crowd.map((c) => call("POST", "/api/invites/join", c, { token: t })));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(3);
    expect(answers.filter((a) => a.status === 410)).toHaveLength(5);
    // (they leave again: the rest of the file counts one learner)
    for (const [i, a] of answers.entries()) if (a.status === 200) expect((await call("DELETE", `/api/cohorts/${cohortId}/learners/${crowd[i]!.id}`, inst)).status).toBe(204);
  });

  it("every cohort route refuses a visitor (401), a learner (403) and another instructor (404)", async () => {
    const routes: Array<[string, string, unknown?]> = [
      ["GET", `/api/cohorts/${cohortId}`],
      ["PATCH", `/api/cohorts/${cohortId}`, { name: "taken over" }],
      ["PUT", `/api/cohorts/${cohortId}/labs`, { labs: [] }],
      ["POST", `/api/cohorts/${cohortId}/invites`, { expiresInHours: 1, seatLimit: 1 }],
      ["DELETE", `/api/cohorts/${cohortId}/invites/whatever`],
      ["DELETE", `/api/cohorts/${cohortId}/learners/${learner.id}`],
      ["GET", `/api/cohorts/${cohortId}/board`],
      ["GET", `/api/cohorts/${cohortId}/learners/${learner.id}/events`],
      ["POST", `/api/cohorts/${cohortId}/messages`, { text: "hi" }],
      ["GET", `/api/cohorts/${cohortId}/grades.csv`],
      ["DELETE", `/api/cohorts/${cohortId}`],
    ];
    for (const [method, p, body] of routes) {
      expect([method, p, (await call(method, p, undefined, body)).status]).toEqual([method, p, 401]);
      expect([method, p, (await call(method, p, learner, body)).status]).toEqual([method, p, 403]);
      expect([method, p, (await call(method, p, other, body)).status]).toEqual([method, p, 404]);
    }
    // Nothing changed: still the owner's, with its lab and its learner.
    const mine = await call("GET", `/api/cohorts/${cohortId}`, inst);
    expect(mine.json.cohort).toMatchObject({ name: "Monday class", labCount: 1, learnerCount: 1 });
    expect((await call("GET", `/api/cohorts/${cohortId}/board`, admin)).status).toBe(200);
  });

  it("every instructor socket event refuses a learner and another instructor; no session, no socket", async () => {
    await expect(socketOf({ cookie: "berth_session=nope" })).rejects.toThrow(/sign in/);
    const mirror = { cohortId, userId: learner.id, labId: LAB, term: "1", cols: 80, rows: 24 };
    for (const who of [learner, other]) {
      const s = await socketOf(who);
      const watched = await emitAck<{ ok: boolean; error?: string }>(s, "board:watch", { cohortId });
      expect(watched.ok).toBe(false);
      expect(watched.error).toMatch(who === learner ? /only instructors/ : /no such cohort/);
      const opened = await emitAck<{ ok: boolean; error?: string }>(s, "mirror:open", mirror);
      expect(opened.ok).toBe(false);
      expect(opened.error).toMatch(who === learner ? /only instructors/ : /no such cohort/);
      // Refused watchers hear nothing of the board.
      let rows = 0;
      s.on("board:row", () => rows++);
      berth.classroom.activity(learner.id, LAB);
      await new Promise((r) => setTimeout(r, 400));
      expect(rows).toBe(0);
      s.close();
    }
    const s = await socketOf(inst);
    const bad = await emitAck<{ ok: boolean; error?: string }>(s, "mirror:open", { ...mirror, userId: outsider.id });
    expect(bad.error).toMatch(/not a learner of this cohort/);
    // Authorized, but the learner has no sandbox: nothing to mirror yet.
    const none = await emitAck<{ ok: boolean; error?: string }>(s, "mirror:open", mirror);
    expect(none.error).toMatch(/no terminal 1 open/);
    expect(berth.classroom.live.mirrorCount).toBe(0);
    s.close();
  });

  it("the board pushes a learner's row as they work and shows a learner whose check keeps failing first", async () => {
    const s = await socketOf(inst);
    const watched = await emitAck<{ ok: boolean; board: any }>(s, "board:watch", { cohortId }); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(watched.ok).toBe(true);
    expect(watched.board.rows.map((r: { userId: string }) => r.userId)).toEqual([learner.id]);
    expect(watched.board.labs[0].steps[0].items[0]).toMatchObject({ id: "hello-word", kind: "check" });
    expect(watched.board.rows[0].labs[LAB].cells["hello-word"]).toMatchObject({ status: "untried", attempts: 0 });
    const version = (await berth.db.labVersion.findFirst({ where: { labId: LAB } }))!;
    const attempt = (passed: boolean) =>
      berth.db.checkAttempt.create({ data: { userId: learner.id, labId: LAB, labVersionId: version.id, stepId: "hello", checkId: "hello-word", passed, message: passed ? "ok" : "not yet", output: "", durationMs: 5, points: passed ? 1 : 0 } });
    for (let i = 1; i <= 3; i++) {
      await attempt(false);
      const pushed = next<{ row: any }>(s, "board:row", (m) => m.row.labs[LAB].cells["hello-word"].attempts === i); // eslint-disable-line @typescript-eslint/no-explicit-any
      berth.classroom.activity(learner.id, LAB);
      const { row } = await pushed;
      expect(row.labs[LAB].cells["hello-word"]).toMatchObject({ status: "failing", failStreak: i });
      if (i < 3) expect(row.stuck).toBeNull();
      else expect(row.stuck.reason).toMatch(/failed 3 times in a row/);
    }
    await attempt(true);
    const pushed = next<{ row: any }>(s, "board:row", (m) => m.row.labs[LAB].cells["hello-word"].status === "passed"); // eslint-disable-line @typescript-eslint/no-explicit-any
    berth.classroom.activity(learner.id, LAB);
    const { row } = await pushed;
    expect(row.stuck).toBeNull();
    expect(row.labs[LAB].score).toBe(1);
    s.close();
  });

  it("a message reaches the learner's sockets and their player's list; not other learners", async () => {
    const mine = await socketOf(learner);
    const theirs = await socketOf(outsider);
    let strayed = 0;
    theirs.on("class:message", () => strayed++);
    const heard = next<{ text: string; direct: boolean; cohortName: string }>(mine, "class:message");
    const sent = await call("POST", `/api/cohorts/${cohortId}/messages`, inst, { text: "Ten minutes left" });
    expect(sent.status).toBe(201);
    expect(sent.json.recipients).toBe(1);
    expect(await heard).toMatchObject({ text: "Ten minutes left", direct: false, cohortName: "Monday class" });
    const direct = next<{ text: string; direct: boolean }>(mine, "class:message");
    expect((await call("POST", `/api/cohorts/${cohortId}/messages`, inst, { text: "Look at step 2", toUserId: learner.id })).status).toBe(201);
    expect((await direct).direct).toBe(true);
    expect((await call("POST", `/api/cohorts/${cohortId}/messages`, inst, { text: "x", toUserId: outsider.id })).status).toBe(400);
    expect((await call("GET", "/api/me/messages", learner)).json.messages.map((m: { text: string }) => m.text)).toEqual(["Ten minutes left", "Look at step 2"]);
    expect((await call("GET", "/api/me/messages", outsider)).json.messages).toEqual([]);
    expect(strayed).toBe(0);
    mine.close();
    theirs.close();
  });

  it("exports grades as CSV (a row per learner, columns per lab and check) and a learner's events", async () => {
    await berth.db.user.update({ where: { id: learner.id }, data: { name: "=HYPERLINK(\"x\")" } });
    await berth.db.hintReveal.create({ data: { userId: learner.id, labId: LAB, checkId: "hello-word", index: 0, cost: 0 } });
    const csv = await call("GET", `/api/cohorts/${cohortId}/grades.csv`, inst);
    expect(csv.status).toBe(200);
    const lines = csv.text.trim().split("\r\n");
    expect(lines).toHaveLength(2);
    const header = lines[0]!.split(",");
    expect(header.slice(0, 9)).toEqual(["email", "name", `${LAB}: points`, `${LAB}: max points`, `${LAB}: attempts`, `${LAB}: hints`, `${LAB}: solutions`, `${LAB}: minutes`, `${LAB}: completed`]);
    expect(header).toContain(`${LAB}/hello-word: attempts`);
    const cells = lines[1]!.split(",");
    const col = (name: string) => cells[header.indexOf(name)];
    expect(col("email")).toBe(learner.email);
    expect(lines[1]).toContain(`"'=HYPERLINK(""x"")"`); // a formula stays text
    expect(col(`${LAB}/hello-word: points`)).toBe("1");
    expect(col(`${LAB}/hello-word: attempts`)).toBe("4");
    expect(col(`${LAB}/hello-word: hints`)).toBe("1");
    expect(col(`${LAB}: attempts`)).toBe("4");
    const events = await call("GET", `/api/cohorts/${cohortId}/learners/${learner.id}/events`, inst);
    expect(events.json.events.map((e: { kind: string }) => e.kind)).toEqual(expect.arrayContaining(["check.passed", "check.failed", "hint.taken", "message"]));
    expect((await call("GET", `/api/cohorts/${cohortId}/learners/${outsider.id}/events`, inst)).status).toBe(404);
  });

  it("a demoted instructor loses the cohort at once", async () => {
    expect((await call("PUT", `/api/admin/users/${inst.id}/role`, admin, { role: "learner" })).status).toBe(200);
    expect((await call("GET", `/api/cohorts/${cohortId}`, inst)).status).toBe(403);
    const s = await socketOf(inst);
    expect((await emitAck<{ ok: boolean }>(s, "board:watch", { cohortId })).ok).toBe(false);
    s.close();
  });
});
