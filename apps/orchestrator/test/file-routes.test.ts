// The editor's file routes through a real orchestrator and a real sandbox: a folder listing, a save
// that the shell then sees, a read of what the shell wrote, the 409 when the file changed underneath,
// and the refusals (relative paths, folders, devices, binaries, oversized files, other learners).
import { rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespacesDriver } from "@berth/sandbox";
import { startOrchestrator, type Orchestrator } from "../src/server.js";
import { MAX_EDITOR_FILE } from "../src/http/file-routes.js";
import { attachTerminal, signUp } from "./helpers.js";
import { freshDataDir } from "./fresh-data-dir.js";

const LAB = "namespaces-by-hand";
const instance = `files${process.pid}`;
const dataDir = await freshDataDir("berth-files-");
const driver = createNamespacesDriver();
let berth: Orchestrator;
const terminals: { close(): void }[] = [];
let alice: { cookie: string; id: string };
let bob: { cookie: string; id: string };

async function sh(userId: string, script: string): Promise<string> {
  const sb = berth.sandboxes.find(userId, LAB)!;
  const r = await berth.sandboxes.exec(sb, script, 30_000, 1024 * 1024);
  if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${r.stderr.toString("utf8")}`);
  return r.stdout.toString("utf8");
}

const api = (p: string, cookie: string | undefined, init: RequestInit = {}) =>
  fetch(`${berth.url}/api/labs/${LAB}${p}`, { ...init, headers: { ...(cookie ? { cookie } : {}), ...(init.headers as Record<string, string> | undefined) } });
const put = (file: string, cookie: string, body: unknown) =>
  api(`/file?path=${encodeURIComponent(file)}`, cookie, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

beforeAll(async () => {
  process.env.BERTH_DATA_DIR = dataDir;
  berth = await startOrchestrator({ port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, instance, reapIntervalMs: 3_600_000 });
  alice = await signUp(berth.url, "alice");
  bob = await signUp(berth.url, "bob");
  terminals.push(await attachTerminal(berth.url, alice.cookie, LAB));
}, 180_000);

afterAll(async () => {
  for (const t of terminals) t.close();
  await berth?.close();
  for (const sb of await driver.list()) if (sb.id.startsWith(`${instance}-`)) await driver.destroy(sb.id);
  rmSync(dataDir, { recursive: true, force: true });
}, 120_000);

describe("editor file routes", () => {
  it("lists the working folder, folders first, without symlinks or special files", async () => {
    await sh(alice.id, "mkdir -p /root/app && echo hi > /root/app/a.txt && echo x > /root/z.txt && ln -sf /etc/passwd /root/link && mkfifo /root/fifo");
    const res = await api("/files", alice.cookie);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { path: string; workdir: string; entries: { name: string; type: string; size: number }[] };
    expect(body.path).toBe("/root");
    expect(body.workdir).toBe("/root");
    const names = body.entries.map((e) => e.name);
    expect(names).toContain("app");
    expect(names).toContain("z.txt");
    expect(names).not.toContain("link");
    expect(names).not.toContain("fifo");
    expect(body.entries.findIndex((e) => e.name === "app")).toBeLessThan(body.entries.findIndex((e) => e.name === "z.txt"));
    const sub = (await (await api(`/files?path=${encodeURIComponent("/root/app/")}`, alice.cookie)).json()) as { path: string; entries: { name: string; type: string; size: number }[] };
    expect(sub.path).toBe("/root/app");
    expect(sub.entries).toEqual([expect.objectContaining({ name: "a.txt", type: "file", size: 3 })]);
  });

  it("saves a new file that the shell sees, and reads back what the shell wrote", async () => {
    const dockerfile = "FROM scratch\n# ünïcode stays\nCOPY a.txt /\n";
    const saved = await put("/root/app/Dockerfile", alice.cookie, { content: dockerfile, baseMtimeMs: null });
    expect(saved.status).toBe(200);
    const { mtimeMs } = (await saved.json()) as { mtimeMs: number };
    expect(await sh(alice.id, "cat /root/app/Dockerfile")).toBe(dockerfile);

    const read = await api(`/file?path=${encodeURIComponent("/root/app/Dockerfile")}`, alice.cookie);
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ content: dockerfile, mtimeMs, size: Buffer.byteLength(dockerfile) });

    // A save based on what was loaded works; the next one must be based on the new mtime.
    const again = await put("/root/app/Dockerfile", alice.cookie, { content: "FROM scratch\n", baseMtimeMs: mtimeMs });
    expect(again.status).toBe(200);
  });

  it("answers 409 when the file changed underneath, and when a new file already exists", async () => {
    const first = (await (await api(`/file?path=${encodeURIComponent("/root/app/a.txt")}`, alice.cookie)).json()) as { mtimeMs: number };
    await new Promise((r) => setTimeout(r, 20));
    await sh(alice.id, "echo changed-in-the-terminal >> /root/app/a.txt");
    const stale = await put("/root/app/a.txt", alice.cookie, { content: "editor\n", baseMtimeMs: first.mtimeMs });
    expect(stale.status).toBe(409);
    const body = (await stale.json()) as { error: string; mtimeMs: number };
    expect(body.error).toMatch(/changed since you opened it/);
    expect(body.mtimeMs).not.toBe(first.mtimeMs);
    // Nothing was lost: the terminal's line is still there.
    expect(await sh(alice.id, "cat /root/app/a.txt")).toBe("hi\nchanged-in-the-terminal\n");

    const exists = await put("/root/app/a.txt", alice.cookie, { content: "x", baseMtimeMs: null });
    expect(exists.status).toBe(409);
  });

  it("refuses what the editor cannot open, with a message", async () => {
    await sh(alice.id, `head -c ${MAX_EDITOR_FILE + 1} /dev/zero | tr '\\0' a > /root/big.txt; printf '\\377\\376\\000' > /root/bin.dat`);
    const cases: Array<[string, number, RegExp]> = [
      ["root/app/a.txt", 400, /must be absolute/],
      ["/root/app", 400, /is a folder/],
      ["/dev/zero", 400, /not a regular file/],
      ["/root/link", 400, /symbolic link/],
      ["/root/nope.txt", 404, /does not exist/],
      ["/root/big.txt", 413, /up to 1048576 bytes/],
      ["/root/bin.dat", 415, /not UTF-8/],
    ];
    for (const [p, status, message] of cases) {
      const res = await api(`/file?path=${encodeURIComponent(p)}`, alice.cookie);
      expect(res.status, p).toBe(status);
      expect(((await res.json()) as { error: string }).error, p).toMatch(message);
    }
    expect((await api("/file", alice.cookie)).status).toBe(400);
    expect((await api(`/files?path=${encodeURIComponent("/root/z.txt")}`, alice.cookie)).status).toBe(400);

    const tooBig = await put("/root/huge.txt", alice.cookie, { content: "a".repeat(MAX_EDITOR_FILE + 1), baseMtimeMs: null });
    expect(tooBig.status).toBe(413);
    const noFolder = await put("/root/no/such/dir.txt", alice.cookie, { content: "x", baseMtimeMs: null });
    expect(noFolder.status).toBe(404);
    const badBody = await put("/root/x.txt", alice.cookie, { content: 5 });
    expect(badBody.status).toBe(400);
    expect(await sh(alice.id, "ls /root/huge.txt /root/x.txt 2>&1 || true")).toMatch(/No such file/);
  });

  it("is the caller's own sandbox only", async () => {
    expect((await api("/files", undefined)).status).toBe(401);
    expect((await fetch(`${berth.url}/api/labs/no-such-lab/files`, { headers: { cookie: alice.cookie } })).status).toBe(404);
    // Bob has no sandbox yet: nothing to read (and never Alice's).
    const none = await api(`/file?path=${encodeURIComponent("/root/app/Dockerfile")}`, bob.cookie);
    expect(none.status).toBe(409);
    terminals.push(await attachTerminal(berth.url, bob.cookie, LAB));
    const own = await api(`/file?path=${encodeURIComponent("/root/app/Dockerfile")}`, bob.cookie);
    expect(own.status).toBe(404);
  }, 120_000);
});
