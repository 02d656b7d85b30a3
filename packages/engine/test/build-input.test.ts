/**
 * The builder's input, hostile: build contexts sent straight to the API (as a script could) that try to write
 * outside the build directory with "../" names, absolute or climbing symbolic links, hard links,
 * and an ADD of an archive that tries the same. Each must fail with a message that names the
 * problem, and nothing may appear outside. (The parser and the expansion on their own:
 * unit/dockerfile.test.ts.)
 */
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request, startBerth, tmpDir, type Daemon } from "./harness";

// ---------- hostile contexts, straight to the API ----------

/** A ustar member: enough of the format to write the archives an attacker would. */
function member(name: string, opts: { type?: "0" | "1" | "2" | "5"; body?: string; link?: string; mode?: number } = {}): Buffer {
  const body = Buffer.from(opts.body ?? "");
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write(((opts.mode ?? (opts.type === "5" ? 0o755 : 0o644)).toString(8)).padStart(7, "0"), 100);
  h.write("0000000", 108);
  h.write("0000000", 116);
  h.write((opts.type === "0" || !opts.type ? body.length : 0).toString(8).padStart(11, "0"), 124);
  h.write("00000000000", 136);
  h.write("        ", 148);
  h.write(opts.type ?? "0", 156);
  if (opts.link) h.write(opts.link, 157, 100);
  h.write("ustar\u000000", 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148);
  const data = opts.type === "0" || !opts.type ? Buffer.concat([body, Buffer.alloc((512 - (body.length % 512)) % 512)]) : Buffer.alloc(0);
  return Buffer.concat([h, data]);
}
const archive = (...members: Buffer[]) => Buffer.concat([...members, Buffer.alloc(1024)]);

let berth: Daemon & { root: string };
let outside: string;

beforeAll(async () => {
  berth = await startBerth();
  outside = tmpDir("h1-outside-"); // a directory a context would love to write into
});

afterAll(async () => {
  await berth?.stop();
  fs.rmSync(outside, { recursive: true, force: true });
});

async function build(tar: Buffer, query = ""): Promise<{ status: number; body: string }> {
  return request(berth.socket, "POST", `/build?t=h1-input${query}`, tar, { "Content-Type": "application/x-tar" });
}

const dockerfile = (text: string) => member("Dockerfile", { body: text });

function leftovers(): string[] {
  const tmp = path.join(berth.root, "state", "tmp");
  return fs.existsSync(tmp) ? fs.readdirSync(tmp).filter((n) => n.startsWith("build-") || n.startsWith("add-")) : [];
}

describe("hostile build contexts (Berth's API)", () => {
  it("refuses a member that climbs out with ../ and writes nothing outside", async () => {
    const name = `h1-escape-${process.pid}`;
    const r = await build(archive(dockerfile("FROM busybox\n"), member(`../../../../../../../../tmp/${name}`, { body: "pwned" }), member(`../${name}`, { body: "pwned" })));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).message).toMatch(/build context: archive member "\.\.\/.*" points outside the destination/);
    expect(fs.existsSync(`/tmp/${name}`)).toBe(false);
    expect(fs.existsSync(path.join(berth.root, "state", "tmp", name))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it("refuses an absolute symbolic link, and never writes through one", async () => {
    const r = await build(archive(dockerfile("FROM busybox\n"), member("evil", { type: "2", link: outside }), member("evil/pwned", { body: "pwned" })));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).message).toContain(`member "evil" is an absolute symbolic link (-> ${outside}) pointing outside the build context`);
    const climbing = await build(archive(dockerfile("FROM busybox\n"), member("dir/up", { type: "2", link: "../../../../../../../../tmp" })));
    expect(climbing.status).toBe(400);
    expect(JSON.parse(climbing.body).message).toContain('member "dir/up" is a symbolic link (-> ../../../../../../../../tmp) pointing outside the build context');
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it("refuses hard links that point outside or at nothing earlier in the archive", async () => {
    const r = await build(archive(dockerfile("FROM busybox\n"), member("hl", { type: "1", link: "../../../../../../etc/hostname" })));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).message).toMatch(/member "hl" is a hard link to "..\/..\/.*etc\/hostname", outside the build context/);
    const r2 = await build(archive(dockerfile("FROM busybox\n"), member("hl", { type: "1", link: "not-there" })));
    expect(JSON.parse(r2.body).message).toContain('which is not a file earlier in the archive');
  });

  it("says what is wrong with a body that is not a tar, and accepts a gzip-compressed context", async () => {
    const r = await build(Buffer.from("this is not a tar archive, just text that is long enough to fill a header block ".repeat(10)));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).message).toContain("invalid tar header");
    const ok = await build(zlib.gzipSync(archive(dockerfile("FROM busybox\nCOPY /abs/f /f\nRUN cat /f\n"), member("/abs/f", { body: "absolute names stay inside\n" }))));
    expect(ok.status).toBe(200);
    expect(ok.body).toContain("absolute names stay inside");
    expect(ok.body).toContain("Successfully tagged h1-input:latest");
  });

  it("ADD of an archive: ../ members are refused, links inside it are resolved inside the image", async () => {
    const bad = archive(member("../../../../../../../../tmp/h1-add-escape", { body: "x" }));
    const r = await build(archive(dockerfile("FROM busybox\nADD bad.tar /x/\n"), member("bad.tar", { body: bad.toString("latin1") })));
    expect(r.status).toBe(200); // the stream had started: the error is its last line
    expect(r.body).toMatch(/"error":"ADD failed: ADD bad.tar: archive member \\".*h1-add-escape\\" points outside the destination/);
    expect(fs.existsSync("/tmp/h1-add-escape")).toBe(false);
    const linky = archive(member("lib", { type: "2", link: outside }), member("lib/pwned", { body: "inside the image\n" }));
    const r2 = await build(archive(dockerfile(`FROM busybox\nADD linky.tar /\nRUN cat ${outside}/pwned\n`), member("linky.tar", { body: linky.toString("latin1") })));
    expect(r2.body).toContain("inside the image");
    expect(r2.body).toContain("Successfully built");
    expect(fs.readdirSync(outside)).toEqual([]); // landed in the image's own copy of that path
    expect(leftovers()).toEqual([]);
  });

  it("refuses an ADD of a URL (offline) and a COPY of a missing file, naming them", async () => {
    const r = await build(archive(dockerfile("FROM busybox\nADD https://example.org/x.tgz /x\n")));
    expect(r.body).toContain("ADD failed: ADD of a URL (https://example.org/x.tgz) is not supported: this engine builds offline");
    const r2 = await build(archive(dockerfile("FROM busybox\nCOPY missing.txt /\n")));
    expect(r2.body).toContain("COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist");
    const r3 = await build(archive(dockerfile("FROM busybox\nCOPY ../../etc/passwd /\n")));
    expect(r3.body).toContain("COPY failed: file not found in build context"); // ".." stops at the context's root
    const r4 = await build(archive(dockerfile("FROM busybox\n")), "&buildargs=notjson");
    expect(r4.status).toBe(400);
    expect(leftovers()).toEqual([]);
  });

  it("honours .dockerignore in a context sent without the CLI's filtering", async () => {
    const r = await build(archive(dockerfile("FROM busybox\nCOPY . /ctx/\nRUN find /ctx | sort\n"), member(".dockerignore", { body: "secret.env\n*.log\n" }), member("secret.env", { body: "x" }), member("a.log", { body: "x" }), member("keep.txt", { body: "x" })));
    expect(r.body).toContain("/ctx/keep.txt");
    expect(r.body).not.toContain("secret.env");
    expect(r.body).not.toContain("a.log");
  });
});

describe("a build the client abandons", () => {
  it("kills the running step when the connection closes (Ctrl-C on docker build), and keeps serving", async () => {
    const { default: http } = await import("node:http");
    const body = archive(dockerfile("FROM busybox\nRUN echo go-$((40+2)) && sleep 60\nRUN echo never\n"));
    const seen = await new Promise<string>((resolve, reject) => {
      const req = http.request({ socketPath: berth.socket, method: "POST", path: "/build?t=h1-cancel", headers: { "Content-Type": "application/x-tar" } }, (res) => {
        let text = "";
        res.on("data", (d: Buffer) => {
          text += d.toString();
          if (text.includes("go-42")) {
            req.destroy(); // what the CLI's Ctrl-C does to the connection
            resolve(text);
          }
        });
      });
      req.on("error", () => {});
      setTimeout(() => reject(new Error("the step never started")), 30_000);
      req.end(body);
    });
    expect(seen).toContain("Running in");
    const t0 = Date.now();
    let running: unknown[] = [1];
    while (running.length && Date.now() - t0 < 10_000) {
      await new Promise((r) => setTimeout(r, 200));
      running = JSON.parse((await request(berth.socket, "GET", "/containers/json")).body) as unknown[];
    }
    expect(running).toEqual([]); // killed long before its 60 s
    const all = JSON.parse((await request(berth.socket, "GET", "/containers/json?all=1")).body) as { Command: string }[];
    expect(all.filter((c) => c.Command.includes("sleep 60"))).toEqual([]); // and removed
    expect((await request(berth.socket, "GET", "/images/h1-cancel/json")).status).toBe(404);
  });
});
