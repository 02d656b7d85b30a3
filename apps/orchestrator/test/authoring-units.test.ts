// The authoring parts that need no server, root or sandbox (milliseconds): the tar reader and
// writer on what strangers may send, the draft lint (lines, the draft's own rules) and the
// content hash that gates publishing.
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { readTar, TarError, writeTar } from "../src/authoring/tar.js";
import { contentHash, frontMatterId, lintDraft, sha256 } from "../src/authoring/folder.js";

const limits = { maxBytes: 1024 * 1024, maxFiles: 10 };

function header(name: string, type: string, size = 0): Buffer {
  const h = writeTar([{ path: name, bytes: Buffer.alloc(size) }]).subarray(0, 512);
  h[156] = type.charCodeAt(0);
  h.write("        ", 148, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  return h;
}

describe("tar", () => {
  it("round-trips files, modes and names longer than 100 bytes, plain and gzipped", () => {
    const long = `lab/${"deep/".repeat(30)}file.txt`;
    const files = [
      { path: "lab/lab.md", bytes: Buffer.from("---\nid: lab\n---\n") },
      { path: long, bytes: Buffer.from("x".repeat(1000)) },
      { path: "lab/run.sh", bytes: Buffer.from("#!/bin/sh\n"), mode: 0o755 },
      { path: "lab/empty", bytes: Buffer.alloc(0) },
    ];
    for (const archive of [writeTar(files), gzipSync(writeTar(files))]) {
      const back = readTar(archive, limits);
      expect(back.map((f) => f.path)).toEqual(files.map((f) => f.path));
      expect(back.map((f) => f.bytes.toString())).toEqual(files.map((f) => f.bytes.toString()));
      expect(back[2]!.mode).toBe(0o755);
    }
    // The same folder makes the same bytes (mtime 0): exports can be compared and cached.
    expect(writeTar(files).equals(writeTar(files))).toBe(true);
  });

  it("reads folders (skipped), pax paths and ustar prefixes as GNU tar and others write them", () => {
    const pax = Buffer.from("30 path=lab/a-pax-named-file\n");
    const paxHeader = header("PaxHeader", "x", pax.length);
    const body = Buffer.concat([pax, Buffer.alloc(512 - pax.length)]);
    const file = writeTar([{ path: "short", bytes: Buffer.from("pax") }]).subarray(0, 1024);
    const dir = header("lab/", "5");
    const archive = Buffer.concat([dir, paxHeader, body, file, Buffer.alloc(1024)]);
    expect(readTar(archive, limits).map((f) => [f.path, f.bytes.toString()])).toEqual([["lab/a-pax-named-file", "pax"]]);
  });

  it("refuses links, devices, zip, damaged headers, cut archives, too many files and too many bytes", () => {
    expect(() => readTar(Buffer.concat([header("lab/link", "2"), Buffer.alloc(1024)]), limits)).toThrow(/not a plain file/);
    expect(() => readTar(Buffer.concat([header("lab/hard", "1"), Buffer.alloc(1024)]), limits)).toThrow(/not a plain file/);
    expect(() => readTar(Buffer.concat([header("dev", "3"), Buffer.alloc(1024)]), limits)).toThrow(TarError);
    expect(() => readTar(Buffer.from("PK\x03\x04...."), limits)).toThrow(/zip/);
    const damaged = writeTar([{ path: "a", bytes: Buffer.from("a") }]);
    damaged[0] = "b".charCodeAt(0);
    expect(() => readTar(damaged, limits)).toThrow(/checksum/);
    expect(() => readTar(writeTar([{ path: "a", bytes: Buffer.alloc(2000) }]).subarray(0, 1024), limits)).toThrow(/cut short/);
    const many = writeTar(Array.from({ length: 11 }, (_, i) => ({ path: `f${i}`, bytes: Buffer.from("x") })));
    expect(() => readTar(many, limits)).toThrow(/more than 10 files/);
    expect(() => readTar(writeTar([{ path: "big", bytes: Buffer.alloc(limits.maxBytes + 1) }]), limits)).toThrow(/more than/);
    // A gzip bomb stops at the cap instead of filling memory.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(100_000);
    expect(() => readTar(bomb, limits)).toThrow(/more than/);
  });
});

const LAB = (id: string) => `---
id: ${id}
title: T
summary: S.
duration: 5m
difficulty: beginner
---

Intro.

## Step {#step}

Look at ![the diagram](diagram.png).

\`\`\`check id=c title="C"
true
\`\`\`

\`\`\`solution
true
\`\`\`
`;

describe("draft lint and hash", () => {
  it("checks pictures against the draft's own files, and keeps the id", () => {
    const noFile = lintDraft({ labId: "x", markdown: LAB("x"), assets: [] }, () => true);
    expect(noFile.errors.map((e) => e.line)).toEqual([LAB("x").split("\n").findIndex((l) => l.includes("diagram.png")) + 1]);
    const withFile = lintDraft({ labId: "x", markdown: LAB("x"), assets: [{ path: "diagram.png" }] }, () => true);
    expect(withFile.errors).toEqual([]);
    expect(withFile.view?.steps[0]?.html).toContain("/api/labs/x/assets/diagram.png");
    const renamed = lintDraft({ labId: "x", markdown: LAB("y"), assets: [{ path: "diagram.png" }] }, () => true);
    expect(renamed.errors).toEqual([expect.objectContaining({ line: 2, message: expect.stringMatching(/not this draft's id/) })]);
    expect(frontMatterId(LAB("some-lab"))).toBe("some-lab");
    expect(frontMatterId("no front matter")).toBeUndefined();
  });

  it("the content hash changes with lab.md, with any file's bytes and with a file's name; not with file order", () => {
    const a = { path: "a", sha256: sha256(Buffer.from("1")) };
    const b = { path: "b", sha256: sha256(Buffer.from("2")) };
    const h = contentHash({ markdown: "m", assets: [a, b] });
    expect(contentHash({ markdown: "m", assets: [b, a] })).toBe(h);
    expect(contentHash({ markdown: "m2", assets: [a, b] })).not.toBe(h);
    expect(contentHash({ markdown: "m", assets: [a, { ...b, sha256: sha256(Buffer.from("3")) }] })).not.toBe(h);
    expect(contentHash({ markdown: "m", assets: [a, { ...b, path: "c" }] })).not.toBe(h);
  });
});
