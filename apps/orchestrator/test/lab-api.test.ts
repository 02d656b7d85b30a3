// The lab API of format v2 against a real orchestrator, a real database and real sandboxes, on a
// small fixture lab (test/fixtures/labs/v2-fixture) that uses every construct: variables, assets, a
// lab and a step setup, progressive hints with a cost, solutions, needs, a quiz, a gated step with
// an automatic check, a recap. Every response body is kept and scanned at the end for the texts
// that must never reach a browser before they are asked for.
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { io as connectSocket, type Socket } from "socket.io-client";
import { createNamespacesDriver } from "@berth/sandbox";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const LABS = path.join(import.meta.dirname, "fixtures", "labs");
const LAB = "v2-fixture";
const instance = `labapi${process.pid}`;
let dataDir: string;
let berth: Orchestrator;

/** Every body the server sent, with when: texts must not appear before they were asked for. */
const bodies: { at: number; text: string }[] = [];

async function start(): Promise<Orchestrator> {
  return startOrchestrator({
    port: 0,
    host: "127.0.0.1",
    serveWeb: false,
    warmPoolSize: 0,
    instance,
    labsDir: LABS,
    labSecretFile: path.join(dataDir, "lab-variables.key"),
    registry: { enabled: false, root: dataDir, port: 0 },
  });
}

beforeAll(async () => {
  dataDir = await freshDataDir("berth-lab-api-");
  process.env.BERTH_DATA_DIR = dataDir;
  berth = await start();
});
afterAll(async () => {
  await berth?.close();
  // The learners' sandboxes outlive the orchestrator by design: end them here.
  const driver = createNamespacesDriver();
  for (const s of await driver.list()) if (s.id.startsWith(`${instance}-`)) await driver.destroy(s.id);
});

async function api(method: string, url: string, cookie?: string, body?: unknown, contentType = "application/json") {
  const res = await fetch(berth.url + url, {
    method,
    headers: { ...(body !== undefined ? { "content-type": contentType } : {}), ...(cookie ? { cookie } : {}) },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  bodies.push({ at: Date.now(), text });
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** A socket that opens the lab's terminal (which makes the sandbox) and collects "check:result". */
async function openLab(cookie: string): Promise<{ socket: Socket; results: any[] }> {
  const socket = connectSocket(berth.url, { transports: ["websocket"], extraHeaders: { cookie }, reconnection: false });
  const results: any[] = [];
  socket.on("check:result", (m: unknown) => {
    bodies.push({ at: Date.now(), text: JSON.stringify(m) });
    results.push(m);
  });
  await new Promise<void>((resolve, reject) => {
    socket.on("connect_error", reject);
    socket.emit("term:attach", { labId: LAB, term: "1", cols: 80, rows: 24 }, (r: { ok: boolean; error?: string }) =>
      r.ok ? resolve() : reject(new Error(r.error)),
    );
  });
  return { socket, results };
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs a command in the learner's sandbox through the agent (as their shell would). */
async function inSandbox(userId: string, script: string): Promise<string> {
  const sb = berth.sandboxes.find(userId, LAB);
  if (!sb) throw new Error("no sandbox");
  const r = await berth.sandboxes.exec(sb, script, 10_000);
  return r.stdout.toString("utf8");
}

describe("the catalog and a lab's view", () => {
  it("lists labs signed out (no state) and signed in (with each lab's state)", async () => {
    const out = await api("GET", "/api/labs");
    expect(out.status).toBe(200);
    expect(out.json.labs.map((l: any) => l.id)).toEqual([LAB]);
    expect(out.json.labs[0].state).toBeUndefined();
    expect(out.json.labs[0]).toMatchObject({ difficulty: "beginner", tags: ["test"] });
    const { cookie } = await signUp(berth.url, "catalog");
    const signedIn = await api("GET", "/api/labs", cookie);
    expect(signedIn.json.labs[0].state).toEqual({ status: "not-started", percent: 0, score: 0, maxScore: 8 });
  });

  it("answers 404 for a missing lab and 401 signed out", async () => {
    const { cookie } = await signUp(berth.url, "missing");
    const missing = await api("GET", "/api/labs/no-such-lab", cookie);
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatch(/no lab called "no-such-lab"/);
    expect((await api("GET", `/api/labs/${LAB}`)).status).toBe(401);
  });

  it("substitutes the learner's variables and the sandbox facts, stable per learner, different between learners", async () => {
    const a = await signUp(berth.url, "vars-a");
    const b = await signUp(berth.url, "vars-b");
    const va = await api("GET", `/api/labs/${LAB}`, a.cookie);
    const va2 = await api("GET", `/api/labs/${LAB}`, a.cookie);
    const vb = await api("GET", `/api/labs/${LAB}`, b.cookie);
    expect(va.status).toBe(200);
    const port = (html: string) => /your port (\d+)/.exec(html)?.[1];
    expect(port(va.json.lab.introHtml)).toMatch(/^8\d{3}$/);
    expect(va.json.lab.introHtml).toBe(va2.json.lab.introHtml);
    expect(va.json.lab.introHtml).not.toContain("{{");
    expect(va.json.lab.introHtml).toMatch(new RegExp(`cgroup v[12] on ${os.machine()}`));
    // Two learners could draw the same port by chance (1 in 1000), but not the same port and name.
    expect(va.json.lab.introHtml).not.toBe(vb.json.lab.introHtml);
    const step = va.json.lab.steps[0];
    expect(step.checks.map((c: any) => [c.id, c.hintCount, c.hintCost, c.needs, c.auto])).toEqual([
      ["made", 2, 1, [], false],
      ["written", 0, 1, ["made"], false],
    ]);
    expect(va.json.lab.steps[1]).toMatchObject({ id: "flag", gated: true, hasSetup: true });
    expect(va.json.lab.steps[1].checks[0]).toMatchObject({ id: "flag", auto: true, pollMs: 2000 });
    expect(va.json.lab.recapHtml).toMatch(/raised a flag/);
    expect(va.json.progress).toMatchObject({ labId: LAB, checks: {}, hints: {}, solutions: {}, quizzes: {}, currentStep: null, score: 0, maxScore: 8, percent: 0, completed: false });
  });

  it("serves the lab's pictures, and nothing else of its folder", async () => {
    const img = await api("GET", `/api/labs/${LAB}/assets/diagram.png`);
    expect(img.status).toBe(200);
    expect(img.headers.get("content-type")).toBe("image/png");
    expect(img.headers.get("x-content-type-options")).toBe("nosniff");
    for (const bad of ["lab.md", "files/hello.txt", "..%2F..%2Flab-api.test.ts", "files%2F..%2Flab.md", "files/..%2F..%2F..%2Flab-api.test.ts", "nope.png", ".hidden.png"]) {
      const res = await api("GET", `/api/labs/${LAB}/assets/${bad}`);
      expect(res.status, bad).toBe(404);
      expect(res.json.error).toBeTruthy();
    }
    // Dots the URL parser resolves never reach the lab folder's route at all.
    const dotted = await api("GET", `/api/labs/${LAB}/assets/%2e%2e/%2e%2e/lab-api.test.ts`);
    expect(dotted.status).not.toBe(200);
    expect((await api("GET", `/api/labs/no-such-lab/assets/diagram.png`)).status).toBe(404);
  });
});

describe("a learner working through the lab", () => {
  let me: { cookie: string; id: string };
  let lab: { socket: Socket; results: any[] };

  beforeAll(async () => {
    me = await signUp(berth.url, "learner");
  });
  afterAll(() => lab?.socket.close());

  it("refuses checks, skips and step setups that need a sandbox before there is one", async () => {
    const check = await api("POST", `/api/labs/${LAB}/checks/made`, me.cookie);
    expect(check.status).toBe(409);
    expect(check.json.error).toMatch(/open the lab's terminal/);
  });

  it("delivers the assets and runs the lab's setup when the sandbox is made", async () => {
    lab = await openLab(me.cookie);
    expect(await inSandbox(me.id, "cat /root/lab/hello.txt; ls -a /root")).toMatch(/hello from the lab folder[\s\S]*\.lab-setup-ran/);
  });

  it("reveals hints one at a time, each costing points, and 409 when none is left", async () => {
    const view = await api("GET", `/api/labs/${LAB}`, me.cookie);
    expect(view.json.progress.hints).toEqual({});
    const first = await api("POST", `/api/labs/${LAB}/checks/made/hints`, me.cookie);
    expect(first.status).toBe(200);
    expect(first.json.progress.hints.made).toHaveLength(1);
    expect(first.json.progress.hints.made[0]).toMatchObject({ cost: 1 });
    expect(first.json.progress.hints.made[0].html).toContain("HINT-ONE-q7z");
    expect(first.text).not.toContain("HINT-TWO-k3v");
    const second = await api("POST", `/api/labs/${LAB}/checks/made/hints`, me.cookie);
    expect(second.json.progress.hints.made.map((h: any) => h.html.includes("HINT-TWO-k3v"))).toEqual([false, true]);
    const none = await api("POST", `/api/labs/${LAB}/checks/made/hints`, me.cookie);
    expect(none.status).toBe(409);
    expect(none.json.error).toMatch(/all 2 hints/);
    const noHints = await api("POST", `/api/labs/${LAB}/checks/written/hints`, me.cookie);
    expect(noHints.status).toBe(409);
  });

  it("orders checks by needs: 409 naming the check that must pass first", async () => {
    const res = await api("POST", `/api/labs/${LAB}/checks/written`, me.cookie);
    expect(res.status).toBe(409);
    expect(res.json.error).toMatch(/needs "The file exists" \(made\)/);
  });

  it("grades a check in the sandbox with the learner's variables; a pass earns points minus the hints taken", async () => {
    const fail = await api("POST", `/api/labs/${LAB}/checks/made`, me.cookie);
    expect(fail.status).toBe(200);
    expect(fail.json.result).toMatchObject({ checkId: "made", passed: false, points: 0, attempt: 1 });
    // The check's message names the file, with the learner's value in it.
    const file = /There is no (\/root\/\S+\.txt) yet/.exec(fail.json.result.message)?.[1];
    expect(file).toBeTruthy();
    await inSandbox(me.id, `touch '${file}'`);
    const pass = await api("POST", `/api/labs/${LAB}/checks/made`, me.cookie);
    expect(pass.json.result).toMatchObject({ passed: true, points: 1, attempt: 2 }); // 3 points - 2 hints
    expect(pass.json.progress.score).toBe(1);
  });

  it("reveals a solution on request only; the check then earns nothing", async () => {
    const before = await api("GET", `/api/labs/${LAB}`, me.cookie);
    expect(before.text).not.toContain("SOLUTION-WRITTEN-m4x");
    const shown = await api("POST", `/api/labs/${LAB}/checks/written/solution`, me.cookie);
    expect(shown.status).toBe(200);
    expect(shown.json.progress.solutions.written).toContain("SOLUTION-WRITTEN-m4x");
    expect(shown.text).not.toContain("SOLUTION-MADE-p9w");
    await inSandbox(me.id, `for f in /root/*.txt; do echo hello > "$f"; done`);
    const pass = await api("POST", `/api/labs/${LAB}/checks/written`, me.cookie);
    expect(pass.json.result).toMatchObject({ passed: true, points: 0 });
  });

  it("grades quizzes on the server and keeps the attempts", async () => {
    const view = await api("GET", `/api/labs/${LAB}`, me.cookie);
    const quiz = view.json.lab.steps[0].quizzes[0];
    expect(quiz.questions.map((q: any) => q.kind)).toEqual(["single", "multiple", "text"]);
    expect(JSON.stringify(quiz)).not.toMatch(/correct|accept|"echo"|printf/);
    const wrong = await api("POST", `/api/labs/${LAB}/quizzes/basics`, me.cookie, { answers: { q1: "a", q2: ["a"], q3: "cat" } });
    expect(wrong.status).toBe(200);
    expect(wrong.json.result).toMatchObject({ quizId: "basics", passed: false, perQuestion: { q1: false, q2: false, q3: false }, points: 0, attempt: 1 });
    expect(wrong.text).not.toMatch(/"echo"|printf/);
    const right = await api("POST", `/api/labs/${LAB}/quizzes/basics`, me.cookie, { answers: { q1: "b", q2: ["a", "c"], q3: "  Echo " } });
    expect(right.json.result).toMatchObject({ passed: true, perQuestion: { q1: true, q2: true, q3: true }, points: 2, attempt: 2 });
    expect(right.json.progress.quizzes.basics.passed).toBe(true);
    expect(right.json.progress.score).toBe(3);
  });

  it("runs the step's setup when the learner enters it (once per sandbox), records the step, and polls its automatic check", async () => {
    const entered = await api("POST", `/api/labs/${LAB}/steps/flag/enter`, me.cookie);
    expect(entered.status).toBe(200);
    expect(entered.json.progress.currentStep).toBe("flag");
    expect(await inSandbox(me.id, "ls -a /root")).toContain(".step-flag-setup-ran");
    await inSandbox(me.id, "rm /root/.step-flag-setup-ran");
    await api("POST", `/api/labs/${LAB}/steps/flag/enter`, me.cookie);
    expect(await inSandbox(me.id, "ls -a /root")).not.toContain(".step-flag-setup-ran");

    expect(lab.results).toEqual([]);
    // As a learner would: typed into the terminal (activity keeps the check at its 2 s interval).
    lab.socket.emit("term:input", { term: "1", data: "touch /root/flag\r" });
    const typedAt = Date.now();
    const pushed = await until("check:result", () => lab.results[0], 20_000);
    expect(Date.now() - typedAt).toBeLessThan(8_000);
    expect(pushed).toMatchObject({ labId: LAB, result: { checkId: "flag", passed: true, points: 1 } });
    expect(pushed.progress.completed).toBe(true);
    expect(pushed.progress.score).toBe(4);
    // Passed: no more polling, so no second push.
    await new Promise((r) => setTimeout(r, 4500));
    expect(lab.results).toHaveLength(1);
    const catalog = await api("GET", "/api/labs", me.cookie);
    expect(catalog.json.labs[0].state).toEqual({ status: "done", percent: 100, score: 4, maxScore: 8 });
  });
});

describe("skip, gating and another learner's ids", () => {
  let me: { cookie: string; id: string };
  let lab: { socket: Socket; results: any[] };
  beforeAll(async () => {
    me = await signUp(berth.url, "skipper");
    lab = await openLab(me.cookie);
  });
  afterAll(() => lab?.socket.close());

  it("keeps a gated step closed until the step before it is complete", async () => {
    const enter = await api("POST", `/api/labs/${LAB}/steps/flag/enter`, me.cookie);
    expect(enter.status).toBe(409);
    expect(enter.json.error).toMatch(/opens once step "Make a file" is complete/);
    expect((await api("POST", `/api/labs/${LAB}/checks/flag/solution`, me.cookie)).status).toBe(409);
    expect((await api("POST", `/api/labs/${LAB}/steps/flag/skip`, me.cookie)).status).toBe(409);
  });

  it("skips a step: its solutions run in the sandbox, then its checks, which earn nothing", async () => {
    const skipped = await api("POST", `/api/labs/${LAB}/steps/make/skip`, me.cookie);
    expect(skipped.status).toBe(200);
    expect(skipped.json.progress.checks.made).toMatchObject({ passed: true, points: 0 });
    expect(skipped.json.progress.checks.written).toMatchObject({ passed: true, points: 0 });
    // The quiz is the learner's to answer: the step is not complete until it passes.
    expect((await api("POST", `/api/labs/${LAB}/steps/flag/enter`, me.cookie)).status).toBe(409);
    await api("POST", `/api/labs/${LAB}/quizzes/basics`, me.cookie, { answers: { q1: "b", q2: ["a", "c"], q3: "printf" } });
    expect((await api("POST", `/api/labs/${LAB}/steps/flag/enter`, me.cookie)).status).toBe(200);
  });

  it.each([
    ["a check of no lab", "POST", `/api/labs/${LAB}/checks/nope`, undefined, 404, /no check "nope"/],
    ["a hint for a check of no lab", "POST", `/api/labs/${LAB}/checks/nope/hints`, undefined, 404, /no check/],
    ["a solution for another lab's check", "POST", `/api/labs/no-such-lab/checks/made/solution`, undefined, 404, /no lab/],
    ["a quiz that does not exist", "POST", `/api/labs/${LAB}/quizzes/nope`, { answers: {} }, 404, /no quiz "nope"/],
    ["a step that does not exist", "POST", `/api/labs/${LAB}/steps/nope/enter`, undefined, 404, /no step "nope"/],
    ["skipping a step that does not exist", "POST", `/api/labs/${LAB}/steps/nope/skip`, undefined, 404, /no step/],
    ["a quiz answer to a question the quiz lacks", "POST", `/api/labs/${LAB}/quizzes/basics`, { answers: { q9: "x" } }, 400, /no question "q9"/],
    ["an option the question lacks", "POST", `/api/labs/${LAB}/quizzes/basics`, { answers: { q1: "z" } }, 400, /no option "z"/],
    ["a list for single choice", "POST", `/api/labs/${LAB}/quizzes/basics`, { answers: { q1: ["b"] } }, 400, /one option id/],
    ["a body without answers", "POST", `/api/labs/${LAB}/quizzes/basics`, { nope: 1 }, 400, /answers/],
    ["a body that is not JSON", "POST", `/api/labs/${LAB}/quizzes/basics`, "{oops", 400, /not valid JSON/],
    ["a wrong method", "GET", `/api/labs/${LAB}/checks/made/hints`, undefined, 405, /not allowed/],
  ])("refuses %s", async (_name, method, url, body, status, message) => {
    const res = await api(method as string, url as string, me.cookie, body);
    expect(res.status).toBe(status);
    expect(res.json.error).toMatch(message as RegExp);
  });

  it("keeps each learner's hints and quiz attempts their own", async () => {
    const other = await signUp(berth.url, "other");
    await api("POST", `/api/labs/${LAB}/checks/made/hints`, other.cookie);
    const mine = await api("GET", `/api/labs/${LAB}`, me.cookie);
    expect(mine.json.progress.hints).toEqual({});
    const theirs = await api("GET", `/api/labs/${LAB}`, other.cookie);
    expect(theirs.json.progress.hints.made).toHaveLength(1);
    expect(theirs.json.progress.quizzes).toEqual({});
  });
});

describe("a file saved from the editor", () => {
  let me: { cookie: string; id: string };
  let lab: { socket: Socket; results: any[] };
  beforeAll(async () => {
    me = await signUp(berth.url, "editor");
    lab = await openLab(me.cookie);
  });
  afterAll(() => lab?.socket.close());

  it("wakes the step's automatic check as a command would: it passes without anything typed", async () => {
    // Step 1 done by hand (no skip: its solutions stay unrevealed), then the gated step with the
    // automatic check (poll=2s) is entered: the check runs at once and fails.
    const fail = await api("POST", `/api/labs/${LAB}/checks/made`, me.cookie);
    const file = /There is no (\/root\/\S+\.txt) yet/.exec(fail.json.result.message)![1]!;
    await inSandbox(me.id, `echo hello > '${file}'`);
    expect((await api("POST", `/api/labs/${LAB}/checks/made`, me.cookie)).json.result.passed).toBe(true);
    expect((await api("POST", `/api/labs/${LAB}/checks/written`, me.cookie)).json.result.passed).toBe(true);
    await api("POST", `/api/labs/${LAB}/quizzes/basics`, me.cookie, { answers: { q1: "b", q2: ["a", "c"], q3: "echo" } });
    const runs = berth.autoChecks.stats.runs;
    expect((await api("POST", `/api/labs/${LAB}/steps/flag/enter`, me.cookie)).status).toBe(200);
    await until("the first automatic run", () => berth.autoChecks.stats.runs > runs);
    expect(lab.results).toEqual([]);

    // Nothing typed since: a quiet terminal is looked at only every QUIET_FACTOR intervals (10 s
    // here). The save is what the check waits for: it runs one interval after its last run.
    const saved = await api("PUT", `/api/labs/${LAB}/file?path=/root/flag`, me.cookie, { content: "up\n", baseMtimeMs: null });
    expect(saved.status).toBe(200);
    const savedAt = Date.now();
    const pushed = await until("check:result after the save", () => lab.results[0], 15_000);
    expect(Date.now() - savedAt).toBeLessThan(6_000);
    expect(pushed).toMatchObject({ labId: LAB, result: { checkId: "flag", passed: true } });
  });
});

describe("after a restart of the orchestrator", () => {
  it("keeps progress, revealed hints, the current step and the learner's variables", async () => {
    const me = await signUp(berth.url, "restart");
    await api("POST", `/api/labs/${LAB}/checks/made/hints`, me.cookie);
    await api("POST", `/api/labs/${LAB}/quizzes/basics`, me.cookie, { answers: { q1: "b", q2: ["a", "c"], q3: "echo" } });
    await api("POST", `/api/labs/${LAB}/steps/make/enter`, me.cookie);
    const before = await api("GET", `/api/labs/${LAB}`, me.cookie);

    await berth.close();
    berth = await start();
    const after = await api("GET", `/api/labs/${LAB}`, me.cookie);
    expect(after.status).toBe(200);
    expect(after.json.progress).toEqual(before.json.progress);
    expect(after.json.progress).toMatchObject({ currentStep: "make", score: 2 });
    expect(after.json.progress.hints.made).toHaveLength(1);
    expect(after.json.lab.introHtml).toBe(before.json.lab.introHtml);
  });
});

describe("secrets stay on the server until asked for", () => {
  it("no response carried a solution, quiz answer or hint text before it was revealed", () => {
    // The learners who revealed things did so in order; the first learner's hint 2 was asked for
    // after hint 1. What must never appear in any body at all: the quiz's right answers as data,
    // the check scripts (test -f, grep -q), the setup scripts, the script wrapper, and the
    // solution of the flag step (shown to nobody).
    const all = bodies.map((b) => b.text).join("\n");
    for (const never of ["SOLUTION-FLAG-r2d", "test -f", "grep -q hello", ".lab-setup-ran", ".step-flag-setup-ran", "\"correct\"", "\"accept\"", "lab-script"]) {
      expect(all.includes(never), never).toBe(false);
    }
    // Texts that were revealed appear only from the response that revealed them on.
    const firstAt = (needle: string) => bodies.findIndex((b) => b.text.includes(needle));
    const firstHint2 = firstAt("HINT-TWO-k3v");
    expect(firstHint2).toBeGreaterThan(firstAt("HINT-ONE-q7z"));
    expect(bodies.slice(0, firstAt("HINT-ONE-q7z")).some((b) => b.text.includes("HINT-"))).toBe(false);
    expect(bodies.slice(0, firstAt("SOLUTION-WRITTEN-m4x")).some((b) => b.text.includes("SOLUTION-"))).toBe(false);
    expect(bodies.length).toBeGreaterThan(40);
  });
});
