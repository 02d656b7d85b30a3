// The layer compressor push uses (src/images/layers.ts gzipBlocks): its output must be one valid
// gzip member that every reader takes (zlib here, GNU gzip, and Go's, which dockerd pulls with),
// the same bytes however the input arrives (a layer's blob digest depends on it), stored where
// deflate would not shrink the data and compressed where it would.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { gzipBlocks, worthCompressing } from "../../src/images/layers";

/** Deterministic bytes that deflate cannot shrink (sha256 in counter mode). */
function noise(size: number, seed: string): Buffer {
  const n = Math.floor(size);
  const out = Buffer.alloc(n);
  for (let i = 0, at = 0; at < n; i++) at += createHash("sha256").update(`${seed}:${i}`).digest().copy(out, at);
  return out;
}
const text = (size: number, n = Math.floor(size)) => Buffer.from("FROM debian:bookworm\nRUN apt-get update && apt-get install -y curl\n".repeat(Math.ceil(n / 66))).subarray(0, n);

async function gz(input: Buffer, piece: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  const chunks = function* () {
    for (let i = 0; i < input.length; i += piece) yield input.subarray(i, i + piece);
  };
  await pipeline(Readable.from(chunks()), gzipBlocks(), new Writable({ write: (c: Buffer, _e, cb) => (parts.push(c), cb()) }));
  return Buffer.concat(parts);
}

describe("gzipBlocks", () => {
  const MiB = 1 << 20;
  const cases: [string, Buffer][] = [
    ["empty", Buffer.alloc(0)],
    ["one byte", Buffer.from("x")],
    ["exactly two blocks of zeros", Buffer.alloc(2 * MiB)],
    ["noise, 3.3 MiB", noise(3.3 * MiB, "a")],
    ["text, 2.5 MiB", text(2.5 * MiB)],
    ["noise, text, noise", Buffer.concat([noise(1.5 * MiB, "b"), text(1.2 * MiB), noise(MiB + 7, "c")])],
  ];

  it.each(cases)("%s: gunzip (zlib and GNU gzip) gives the input back", async (_name, input) => {
    const out = await gz(input, 70_001);
    expect(zlib.gunzipSync(out).equals(input)).toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-gzip-blocks-"));
    try {
      fs.writeFileSync(path.join(dir, "x.gz"), out);
      expect(execFileSync("gzip", ["-dc", path.join(dir, "x.gz")], { maxBuffer: 64 << 20 }).equals(input)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives the same bytes however the input is cut into chunks", async () => {
    const input = Buffer.concat([noise(1.7 * MiB, "d"), text(1.1 * MiB), noise(0.6 * MiB, "e")]);
    const a = await gz(input, 1 << 20);
    for (const piece of [997, 4093, 65_536, 3 << 20]) expect((await gz(input, piece)).equals(a), `chunks of ${piece}`).toBe(true);
  });

  it("stores what deflate cannot shrink (a few bytes of framing per 64 KiB) and compresses the rest as gzip -6 would", async () => {
    const n = noise(4 * MiB, "f");
    const stored = await gz(n, 1 << 20);
    expect(stored.length).toBeGreaterThan(n.length);
    expect(stored.length).toBeLessThan(n.length + 1024);
    const t = text(4 * MiB);
    const packed = await gz(t, 1 << 20);
    expect(packed.length).toBeLessThan(zlib.gzipSync(t, { level: 6 }).length * 1.1);
  });

  it("worthCompressing: no for noise, yes for text and for small blocks", () => {
    expect(worthCompressing([noise(1 << 20, "g")], 1 << 20)).toBe(false);
    expect(worthCompressing([text(1 << 20)], 1 << 20)).toBe(true);
    expect(worthCompressing([noise(1000, "h")], 1000)).toBe(true);
    // the samples may straddle the pieces a block arrives in
    const pieces = [noise(300_000, "i"), noise(5, "j"), noise(748_571, "k")];
    expect(worthCompressing(pieces, 1 << 20)).toBe(false);
  });
});
