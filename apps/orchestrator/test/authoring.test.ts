// The authoring API (labs written in the browser) against a real orchestrator, a real SQLite
// database and real sandboxes: who may do what (signed out, a learner, another instructor), bad
// input (broken markdown with its lines, sizes, paths, archives), sanitized views, and the whole
// way of a lab: draft → Prove it (streamed, in a fresh sandbox) → publish → a learner opens it and
// keeps the version they started when a new one is published; export and import as tar.
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespacesDriver } from "@berth/sandbox";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { writeTar, readTar } from "../src/authoring/tar.js";
import { signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const LABS = path.join(import.meta.dirname, "fixtures", "labs");
const instance = `authoring${process.pid}`;
let dataDir: string;
let berth: Orchestrator;
let alice: { cookie: string; id: string }; // instructor, author of the drafts
let bob: { cookie: string; id: string }; // another instructor
let lena: { cookie: string; id: string }; // a learner

async function api(method: string, url: string, cookie?: string, body?: unknown, contentType = "application/json") {
  const res = await fetch(berth.url + url, {
    method,
    headers: { ...(body !== undefined ? { "content-type": contentType } : {}), ...(cookie ? { cookie } : {}) },
    body: body === undefined ? undefined : Buffer.isBuffer(body) || typeof body === "string" ? (body as string) : JSON.stringify(body),
  });
  const buf = Buffer.from(await res.arrayBuffer());
  let json: any;
  try {
    json = JSON.parse(buf.toString("utf8"));
  } catch {
    json = undefined;
  }
  return { status: res.status, json, buf, text: buf.toString("utf8"), headers: res.headers };
}

const LAB = (id: string, word = "hello", extra = "") => `---
id: ${id}
title: Greeting ${word}
summary: Leave a greeting in a file.
duration: 5m
difficulty: beginner
---

Say ${word}.${extra}

## Leave a greeting {#greet}

Write \`${word}\` into /root/greeting.

\`\`\`check id=greeting title="The greeting is there"
grep -qx ${word} /root/greeting
\`\`\`

\`\`\`solution
echo ${word} > /root/greeting
\`\`\`
`;

const start = () =>
  startOrchestrator({
    port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, instance, labsDir: LABS,
    labSecretFile: path.join(dataDir, "lab-variables.key"),
    registry: { enabled: false, root: dataDir, port: 0 },
  });

beforeAll(async () => {
  dataDir = await freshDataDir("berth-authoring-");
  process.env.BERTH_DATA_DIR = dataDir;
  berth = await start();
  alice = await signUp(berth.url, "alice");
  bob = await signUp(berth.url, "bob");
  lena = await signUp(berth.url, "lena");
  await berth.db.user.updateMany({ where: { id: { in: [alice.id, bob.id] } }, data: { role: "instructor" } });
}, 120_000);

afterAll(async () => {
  await berth?.close();
  const driver = createNamespacesDriver();
  for (const s of await driver.list()) if (s.id.startsWith(`${instance}-`)) await driver.destroy(s.id);
});

describe("who may author", () => {
  it("refuses the signed out (401), learners (403) and another instructor's draft (403)", async () => {
    expect((await api("POST", "/api/authoring/labs", alice.cookie, { id: "auth-owned" })).status).toBe(200);
    const routes: [string, string, unknown?, string?][] = [
      ["GET", "/api/authoring/labs"],
      ["POST", "/api/authoring/labs", { id: "auth-other" }],
      ["GET", "/api/authoring/labs/auth-owned"],
      ["PUT", "/api/authoring/labs/auth-owned", { markdown: LAB("auth-owned") }],
      ["DELETE", "/api/authoring/labs/auth-owned"],
      ["PUT", "/api/authoring/labs/auth-owned/files/a.txt", Buffer.from("x"), "application/octet-stream"],
      ["GET", "/api/authoring/labs/auth-owned/files/a.txt"],
      ["DELETE", "/api/authoring/labs/auth-owned/files/a.txt"],
      ["POST", "/api/authoring/labs/auth-owned/prove"],
      ["POST", "/api/authoring/labs/auth-owned/publish"],
      ["POST", "/api/authoring/labs/auth-owned/try"],
      ["GET", "/api/authoring/export/auth-owned"],
      ["POST", "/api/authoring/import", writeTar([{ path: "x/lab.md", bytes: Buffer.from(LAB("auth-imp")) }]), "application/octet-stream"],
    ];
    for (const [method, url, body, type] of routes) {
      expect((await api(method, url, undefined, body, type)).status, `${method} ${url} signed out`).toBe(401);
      const asLearner = await api(method, url, lena.cookie, body, type);
      expect(asLearner.status, `${method} ${url} as a learner`).toBe(403);
      expect(asLearner.json.error).toMatch(/instructors/);
    }
    // Another instructor: every route naming alice's draft is refused, and the draft is untouched.
    for (const [method, url, body, type] of routes.filter(([, u]) => u.includes("auth-owned"))) {
      expect((await api(method, url, bob.cookie, body, type)).status, `${method} ${url} as bob`).toBe(403);
    }
    expect((await api("GET", "/api/authoring/labs", bob.cookie)).json.drafts).toEqual([]);
    const mine = await api("GET", "/api/authoring/labs/auth-owned", alice.cookie);
    expect(mine.status).toBe(200);
    expect(mine.json.draft.markdown).toContain("id: auth-owned");
    // A cross-site page cannot drive an author's browser.
    const cross = await fetch(`${berth.url}/api/authoring/labs/auth-owned/publish`, { method: "POST", headers: { cookie: alice.cookie, origin: "http://evil.example" } });
    expect(cross.status).toBe(403);
  });
});

describe("bad input", () => {
  it("broken markdown gets its errors by line and cannot be proved or published", async () => {
    await api("POST", "/api/authoring/labs", alice.cookie, { id: "auth-broken" });
    const broken = LAB("auth-broken").replace("difficulty: beginner", "difficulty: impossible").replace('```check id=greeting title="The greeting is there"', "```check title=missing-id");
    const saved = await api("PUT", "/api/authoring/labs/auth-broken", alice.cookie, { markdown: broken });
    expect(saved.status).toBe(200);
    const lines = broken.split("\n");
    const diffLine = lines.findIndex((l) => l.startsWith("difficulty:")) + 1;
    expect(saved.json.errors.map((e: { line: number }) => e.line)).toContain(diffLine);
    expect(saved.json.view).toBeUndefined();
    const publish = await api("POST", "/api/authoring/labs/auth-broken/publish", alice.cookie);
    expect(publish.status).toBe(400);
    expect(publish.json.error).toMatch(new RegExp(`line ${diffLine}:`));
    expect((await api("POST", "/api/authoring/labs/auth-broken/prove", alice.cookie)).status).toBe(400);
    // A changed id is an error at the id's line.
    const renamed = await api("PUT", "/api/authoring/labs/auth-broken", alice.cookie, { markdown: LAB("auth-renamed") });
    expect(renamed.json.errors).toEqual([expect.objectContaining({ line: 2, message: expect.stringMatching(/not this draft's id/) })]);
  });

  it("refuses a huge draft, a huge file, too much in all and paths out of the folder, and keeps the draft", async () => {
    await api("POST", "/api/authoring/labs", alice.cookie, { id: "auth-sizes" });
    const huge = await api("PUT", "/api/authoring/labs/auth-sizes", alice.cookie, { markdown: LAB("auth-sizes") + "x".repeat(300 * 1024) });
    expect(huge.status).toBe(413);
    expect(huge.json.error).toMatch(/at most/);
    const bigFile = await api("PUT", "/api/authoring/labs/auth-sizes/files/big.bin", alice.cookie, Buffer.alloc(1024 * 1024 + 1), "application/octet-stream");
    expect(bigFile.status).toBe(413);
    expect(bigFile.json.error).toMatch(/too large/);
    for (const bad of ["..%2Fescape", "lab.md", ".hidden%2F..%2Fx"]) {
      const r = await api("PUT", `/api/authoring/labs/auth-sizes/files/${bad}`, alice.cookie, Buffer.from("x"), "application/octet-stream");
      expect(r.status, bad).toBe(400);
    }
    for (let i = 0; i < 8; i++) {
      expect((await api("PUT", `/api/authoring/labs/auth-sizes/files/f${i}.bin`, alice.cookie, Buffer.alloc(1024 * 1024), "application/octet-stream")).status).toBe(200);
    }
    const over = await api("PUT", "/api/authoring/labs/auth-sizes/files/f8.bin", alice.cookie, Buffer.alloc(1024), "application/octet-stream");
    expect(over.status).toBe(413);
    expect(over.json.error).toMatch(/add up/);
    const draft = (await api("GET", "/api/authoring/labs/auth-sizes", alice.cookie)).json.draft;
    expect(draft.markdown).toContain("id: auth-sizes");
    expect(draft.files).toHaveLength(8);
    expect((await api("DELETE", "/api/authoring/labs/auth-sizes/files/f0.bin", alice.cookie)).json.draft.files).toHaveLength(7);
    // Not JSON or not a file upload: refused by type (a cross-site form cannot send either).
    expect((await api("PUT", "/api/authoring/labs/auth-sizes", alice.cookie, "markdown", "text/plain")).status).toBe(415);
  });

  it("ids: taken by labs/, malformed, or taken by a draft", async () => {
    expect((await api("POST", "/api/authoring/labs", alice.cookie, { id: "v2-fixture" })).status).toBe(409);
    expect((await api("POST", "/api/authoring/labs", alice.cookie, { id: "Bad Id" })).status).toBe(400);
    expect((await api("POST", "/api/authoring/labs", bob.cookie, { id: "auth-owned" })).status).toBe(409);
  });

  it("archives: a zip, garbage, no lab.md, and a link are refused with a message", async () => {
    const zip = await api("POST", "/api/authoring/import", alice.cookie, Buffer.from("PK\x03\x04rest"), "application/octet-stream");
    expect(zip.status).toBe(400);
    expect(zip.json.error).toMatch(/zip/);
    expect((await api("POST", "/api/authoring/import", alice.cookie, Buffer.alloc(1024, 7), "application/octet-stream")).status).toBe(400);
    const noLab = await api("POST", "/api/authoring/import", alice.cookie, writeTar([{ path: "x/readme", bytes: Buffer.from("hi") }]), "application/octet-stream");
    expect(noLab.json.error).toMatch(/no lab\.md/);
    const link = writeTar([{ path: "x/lab.md", bytes: Buffer.from(LAB("auth-link")) }]);
    link[156] = "2".charCodeAt(0); // make it a symlink header (checksum fixed below)
    link.write("        ", 148, "ascii");
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += link[i]!;
    link.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
    const r = await api("POST", "/api/authoring/import", alice.cookie, link, "application/octet-stream");
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/not a plain file/);
  });
});

describe("the learner's view of a draft", () => {
  it("is sanitized exactly as learners get it: no script, no event handler, no javascript: link", async () => {
    await api("POST", "/api/authoring/labs", alice.cookie, { id: "auth-xss" });
    const evil = LAB("auth-xss", "hello", `\n\n<script>window.__pwned = 1</script>\n\n<img src="x" onerror="window.__pwned = 2">\n\n[click](javascript:alert(1))\n`);
    const saved = await api("PUT", "/api/authoring/labs/auth-xss", alice.cookie, { markdown: evil });
    expect(saved.json.errors).toEqual([]);
    const html = JSON.stringify(saved.json.view);
    // The author's tags arrive as text (escaped), never as elements or attributes.
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<[a-z][^>]*\son[a-z]+\s*=/i);
    expect(html).not.toMatch(/href=\\?"javascript:/i);
    expect(saved.json.view.introHtml).toContain("&lt;script&gt;");
    // and no check script or solution is in the view
    expect(html).not.toContain("grep -qx");
  });
});

describe("draft → prove → publish → learners", () => {
  it("proves in a fresh sandbox step by step, publishes that content only, and learners keep their version", async () => {
    await api("POST", "/api/authoring/labs", alice.cookie, { id: "auth-greet" });
    expect((await api("PUT", "/api/authoring/labs/auth-greet", alice.cookie, { markdown: LAB("auth-greet") })).json.errors).toEqual([]);
    const notYet = await api("POST", "/api/authoring/labs/auth-greet/publish", alice.cookie);
    expect(notYet.status).toBe(409);
    expect(notYet.json.error).toMatch(/prove/);

    const proof = await api("POST", "/api/authoring/labs/auth-greet/prove", alice.cookie);
    expect(proof.status).toBe(200);
    expect(proof.headers.get("content-type")).toMatch(/text\/event-stream/);
    const events = proof.text.split("\n\n").filter(Boolean).map((l) => JSON.parse(l.replace(/^data: /, "")));
    expect(events[0]).toMatchObject({ kind: "start", checks: 1 });
    const steps = events.filter((e) => e.kind === "step").map((e) => `${e.what}:${e.ok}`);
    expect(steps).toEqual(["greeting before its solution (must fail):true", "solution of step greet:true", "greeting after its solution (must pass):true"]);
    expect(events.at(-1)).toMatchObject({ kind: "done", ok: true, publishable: true });

    const v1 = await api("POST", "/api/authoring/labs/auth-greet/publish", alice.cookie);
    expect(v1.status).toBe(200);
    const first = v1.json.version.versionId;

    // A learner sees it in the catalog and opens it.
    expect((await api("GET", "/api/labs", lena.cookie)).json.labs.map((l: { id: string }) => l.id)).toContain("auth-greet");
    const opened = await api("GET", "/api/labs/auth-greet", lena.cookie);
    expect(opened.status).toBe(200);
    expect(opened.json.lab.title).toBe("Greeting hello");
    expect(opened.text).not.toContain("grep -qx");

    // A changed draft is not publishable until proved again.
    await api("PUT", "/api/authoring/labs/auth-greet", alice.cookie, { markdown: LAB("auth-greet", "howdy") });
    const stale = await api("POST", "/api/authoring/labs/auth-greet/publish", alice.cookie);
    expect(stale.status).toBe(409);
    expect(stale.json.error).toMatch(/changed since/);
    const again = await api("POST", "/api/authoring/labs/auth-greet/prove", alice.cookie);
    expect(again.text).toContain('"publishable":true');
    const v2 = await api("POST", "/api/authoring/labs/auth-greet/publish", alice.cookie);
    expect(v2.json.version.versionId).not.toBe(first);

    // Lena started version 1 and keeps it; a learner who starts now gets version 2.
    expect((await api("GET", "/api/labs/auth-greet", lena.cookie)).json.lab.title).toBe("Greeting hello");
    // Seeing the catalog is not starting a lab: nothing is recorded for a learner who only looks.
    const looker = await signUp(berth.url, "looker");
    expect((await api("GET", "/api/labs", looker.cookie)).json.labs.find((l: { id: string }) => l.id === "auth-greet").state.status).toBe("not-started");
    expect(await berth.db.authoredLabStart.count({ where: { userId: looker.id } })).toBe(0);
    const newcomer = await signUp(berth.url, "newcomer");
    expect((await api("GET", "/api/labs/auth-greet", newcomer.cookie)).json.lab.title).toBe("Greeting howdy");
    const starts = await berth.db.authoredLabStart.findMany({ where: { labId: "auth-greet" } });
    expect(new Map(starts.map((s) => [s.userId, s.versionId]))).toEqual(new Map([[lena.id, first], [newcomer.id, v2.json.version.versionId]]));
    // The draft list says what was published.
    const list = (await api("GET", "/api/authoring/labs", alice.cookie)).json.drafts;
    expect(list.find((d: { labId: string }) => d.labId === "auth-greet").versions).toHaveLength(2);

    // Deleting the draft leaves the published lab to its learners, and its id to its author.
    expect((await api("DELETE", "/api/authoring/labs/auth-greet", alice.cookie)).status).toBe(204);
    expect((await api("GET", "/api/labs/auth-greet", lena.cookie)).json.lab.title).toBe("Greeting hello");
    const hijack = await api("POST", "/api/authoring/labs", bob.cookie, { id: "auth-greet" });
    expect(hijack.status).toBe(409);
    expect(hijack.json.error).toMatch(/another instructor's published lab/);
    expect((await api("POST", "/api/authoring/labs", alice.cookie, { id: "auth-greet" })).status).toBe(200);
  }, 120_000);

  it("a proof that fails says which check and why, and does not make the draft publishable", async () => {
    await api("POST", "/api/authoring/labs", alice.cookie, { id: "auth-weak" });
    // The check passes before its solution: it proves nothing.
    const weak = LAB("auth-weak").replace("grep -qx hello /root/greeting", "true");
    await api("PUT", "/api/authoring/labs/auth-weak", alice.cookie, { markdown: weak });
    const proof = await api("POST", "/api/authoring/labs/auth-weak/prove", alice.cookie);
    const done = proof.text.split("\n\n").filter(Boolean).map((l) => JSON.parse(l.slice(6))).at(-1);
    expect(done).toMatchObject({ kind: "done", ok: false, publishable: false });
    expect(done.problems.join("\n")).toMatch(/greeting: passes before its solution/);
    expect((await api("POST", "/api/authoring/labs/auth-weak/publish", alice.cookie)).status).toBe(409);
  }, 60_000);
});

describe("Try it", () => {
  it("opens the draft in the player under <lab>--draft, for its author only", async () => {
    await api("POST", "/api/authoring/labs", alice.cookie, { id: "auth-try" });
    const tried = await api("POST", "/api/authoring/labs/auth-try/try", alice.cookie);
    expect(tried.json).toEqual({ previewId: "auth-try--draft", url: "/labs/auth-try--draft" });
    const mine = await api("GET", "/api/labs/auth-try--draft", alice.cookie);
    expect(mine.status).toBe(200);
    expect(mine.json.lab.title).toMatch(/\(draft\)$/);
    expect((await api("GET", "/api/labs/auth-try--draft", bob.cookie)).status).toBe(404);
    expect((await api("GET", "/api/labs/auth-try--draft", lena.cookie)).status).toBe(404);
    expect((await api("GET", "/api/labs", alice.cookie)).json.labs.map((l: { id: string }) => l.id)).not.toContain("auth-try--draft");
  });
});

describe("export and import", () => {
  it("a lab of labs/ exports as a tar folder and imports as a draft under a new id", async () => {
    const tar = await api("GET", "/api/authoring/export/v2-fixture", alice.cookie);
    expect(tar.status).toBe(200);
    expect(tar.headers.get("content-type")).toBe("application/x-tar");
    const files = readTar(tar.buf, { maxBytes: 1e7, maxFiles: 100 }).map((f) => f.path);
    expect(files[0]).toBe("v2-fixture/lab.md");
    expect(files).toContain("v2-fixture/diagram.png");
    // Same id as the file lab: refused with what to do.
    const same = await api("POST", "/api/authoring/import", alice.cookie, tar.buf, "application/octet-stream");
    expect(same.status).toBe(409);
    const imported = await api("POST", "/api/authoring/import?id=auth-fixture-copy", alice.cookie, tar.buf, "application/octet-stream");
    expect(imported.status).toBe(200);
    expect(imported.json.draft.markdown).toMatch(/^id: auth-fixture-copy$/m);
    expect(imported.json.draft.files.map((f: { path: string }) => f.path)).toContain("diagram.png");
    expect(imported.json.draft.errors).toEqual([]);
    // Its picture: to its author from the draft, never to anyone else; in Try it, from the preview.
    const pic = await api("GET", "/api/authoring/labs/auth-fixture-copy/files/diagram.png", alice.cookie);
    expect(pic.status).toBe(200);
    expect(pic.headers.get("content-type")).toBe("image/png");
    expect(pic.headers.get("content-security-policy")).toMatch(/sandbox/);
    expect((await api("GET", "/api/authoring/labs/auth-fixture-copy/files/diagram.png", bob.cookie)).status).toBe(403);
    expect((await api("GET", "/api/authoring/labs/auth-fixture-copy/files/diagram.png", lena.cookie)).status).toBe(403);
    const text = await api("GET", "/api/authoring/labs/auth-fixture-copy/files/files/hello.txt", alice.cookie);
    expect(text.status).toBe(200);
    expect(text.headers.get("content-type")).toBe("application/octet-stream");
    expect(text.headers.get("content-disposition")).toMatch(/attachment/);
    expect((await api("POST", "/api/authoring/labs/auth-fixture-copy/try", alice.cookie)).status).toBe(200);
    const shown = await api("GET", "/api/labs/auth-fixture-copy--draft/assets/diagram.png", alice.cookie);
    expect(shown.status).toBe(200);
    expect(shown.buf.equals(pic.buf)).toBe(true);
    expect((await api("GET", "/api/labs/auth-fixture-copy--draft/assets/diagram.png", bob.cookie)).status).toBe(404);
    expect((await api("GET", "/api/labs/auth-fixture-copy--draft/assets/diagram.png")).status).toBe(404);
  });

  it("a draft exports and imports back byte for byte (tar.gz too)", async () => {
    await api("PUT", "/api/authoring/labs/auth-owned/files/files/notes.txt", alice.cookie, Buffer.from("some notes\n"), "application/octet-stream");
    const tar = await api("GET", "/api/authoring/export/auth-owned", alice.cookie);
    const files = readTar(tar.buf, { maxBytes: 1e7, maxFiles: 100 });
    expect(files.map((f) => f.path)).toEqual(["auth-owned/lab.md", "auth-owned/files/notes.txt"]);
    const { gzipSync } = await import("node:zlib");
    const back = await api("POST", "/api/authoring/import?id=auth-owned-copy", alice.cookie, gzipSync(tar.buf), "application/octet-stream");
    expect(back.status).toBe(200);
    const copy = (await api("GET", "/api/authoring/export/auth-owned-copy", alice.cookie)).buf;
    const copied = readTar(copy, { maxBytes: 1e7, maxFiles: 100 });
    expect(copied[1]!.bytes.toString()).toBe("some notes\n");
    expect(copied[0]!.bytes.toString()).toBe(files[0]!.bytes.toString().replace("id: auth-owned", "id: auth-owned-copy"));
  });
});

describe("after a restart", () => {
  it("published labs come back from the database, each learner still on the version they started", async () => {
    const before = (await api("GET", "/api/labs/auth-greet", lena.cookie)).json.lab.title;
    await berth.close();
    // The unpacked folders are a cache: without them the versions come back from their bundles.
    const { rm } = await import("node:fs/promises");
    await rm(path.join(dataDir, "authored"), { recursive: true, force: true });
    berth = await start();
    expect((await api("GET", "/api/labs/auth-greet", lena.cookie)).json.lab.title).toBe(before);
    const late = await signUp(berth.url, "late");
    expect((await api("GET", "/api/labs/auth-greet", late.cookie)).json.lab.title).toBe("Greeting howdy");
    expect((await api("GET", "/api/authoring/labs/auth-sizes", alice.cookie)).json.draft.files).toHaveLength(7);
  }, 120_000);
});
