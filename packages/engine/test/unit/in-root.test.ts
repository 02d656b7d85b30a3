/**
 * The one walker that resolves a path inside a root (paths/in-root.ts), against hostile trees: the
 * links an image or a build context may carry. Needs no root: a temporary directory stands for a
 * container's root filesystem, a second one for a volume, a third for "the host" that must never
 * be reached.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PathError, resolveInRoot, walkInRoot } from "../../src/paths/in-root";

let base: string;
let root: string; // the container's root filesystem
let vol: string; // a volume's files, mounted at /data
let host: string; // outside everything: a link that reaches it is a hole

beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), "berth-in-root-"));
  root = path.join(base, "root");
  vol = path.join(base, "vol");
  host = path.join(base, "host");
  for (const d of [root, vol, host, `${root}/etc`, `${root}/usr/lib`, `${host}/etc`]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(`${root}/etc/passwd`, "root:x:0:0::/root:/bin/sh\n");
  fs.writeFileSync(`${host}/etc/passwd`, "the host's\n");
  fs.symlinkSync(`${host}/etc`, `${root}/abs-host`); // absolute: means /<host>/etc inside the root
  fs.symlinkSync("/etc", `${root}/abs`); // absolute, inside: /etc of the container
  fs.symlinkSync("../../../../../../../../etc", `${root}/usr/lib/climb`); // climbs past the root
  fs.symlinkSync("loop-b", `${root}/loop-a`);
  fs.symlinkSync("loop-a", `${root}/loop-b`);
  fs.symlinkSync("/nowhere/file", `${root}/dangling`);
  fs.symlinkSync("/etc", `${vol}/etc-link`); // inside the volume: still the container's /etc
  fs.symlinkSync("/data/inner", `${root}/to-volume`);
  fs.mkdirSync(`${vol}/inner`);
  // A chain of 41 links: one more than the kernel follows.
  for (let i = 0; i < 41; i++) fs.symlinkSync(`chain-${i + 1}`, `${root}/chain-${i}`);
  fs.mkdirSync(`${root}/chain-41`);
});

afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

const mounts = () => [{ destination: "/data", source: vol }];

describe("walkInRoot", () => {
  it("stops .. at the root", () => {
    expect(resolveInRoot(root, "../../../../etc/passwd")).toBe(`${root}/etc/passwd`);
    expect(resolveInRoot(root, "/usr/../../..")).toBe(root);
    expect(walkInRoot(root, "usr/lib/../../etc").logical).toBe("/etc");
  });

  it("resolves absolute links from the root, never from the host's /", () => {
    expect(resolveInRoot(root, "/abs/passwd")).toBe(`${root}/etc/passwd`);
    // A link naming a real host directory lands at that name inside the root.
    expect(resolveInRoot(root, "/abs-host/passwd")).toBe(path.join(root, host, "etc/passwd"));
    expect(walkInRoot(root, "/abs-host/passwd").host.startsWith(`${root}/`)).toBe(true);
  });

  it("keeps relative links that climb inside the root", () => {
    expect(walkInRoot(root, "/usr/lib/climb/passwd")).toEqual({ host: `${root}/etc/passwd`, logical: "/etc/passwd" });
  });

  it("returns the link itself when the last component is not to be followed", () => {
    expect(resolveInRoot(root, "/abs", { followLast: false })).toBe(`${root}/abs`);
    expect(resolveInRoot(root, "/abs")).toBe(`${root}/etc`);
    // A link in the middle is followed either way.
    expect(resolveInRoot(root, "/abs/passwd", { followLast: false })).toBe(`${root}/etc/passwd`);
  });

  it("refuses loops and chains longer than the kernel's limit", () => {
    expect(() => resolveInRoot(root, "/loop-a/x")).toThrow(/too many levels of symbolic links/);
    expect(() => resolveInRoot(root, "/chain-0")).toThrow(PathError);
    expect(resolveInRoot(root, "/chain-1")).toBe(`${root}/chain-41`);
  });

  it("follows a dangling link to where its target would be, inside the root", () => {
    expect(resolveInRoot(root, "/dangling")).toBe(`${root}/nowhere/file`);
    expect(() => resolveInRoot(root, "/dangling", { missing: "error" })).toThrow("/nowhere: no such file or directory");
  });

  it("maps a mount's destination to its source, and resolves links inside it against the container's root", () => {
    expect(resolveInRoot(root, "/data/x", { mounts: mounts() })).toBe(`${vol}/x`);
    expect(resolveInRoot(root, "/data/etc-link/passwd", { mounts: mounts() })).toBe(`${root}/etc/passwd`);
    expect(resolveInRoot(root, "/to-volume/f", { mounts: mounts() })).toBe(`${vol}/inner/f`);
    // Climbing out of a mount with .. lands in the container's root, not in the volume's parent.
    expect(resolveInRoot(root, "/data/../../etc/passwd", { mounts: mounts() })).toBe(`${root}/etc/passwd`);
    // The deepest mount wins.
    const deeper = [...mounts(), { destination: "/data/inner", source: host }];
    expect(resolveInRoot(root, "/data/inner/etc", { mounts: deeper })).toBe(`${host}/etc`);
  });

  it("says what is missing, and what is not a directory, when asked to", () => {
    expect(resolveInRoot(root, "/no/such/thing")).toBe(`${root}/no/such/thing`);
    expect(() => resolveInRoot(root, "/no/such", { missing: "error" })).toThrow("/no: no such file or directory");
    expect(() => resolveInRoot(root, "/etc/passwd/x", { missing: "error" })).toThrow("/etc/passwd: not a directory");
    expect(resolveInRoot(root, "/etc/passwd/x")).toBe(`${root}/etc/passwd/x`);
    try {
      resolveInRoot(root, "/no", { missing: "error" });
    } catch (e) {
      expect((e as PathError).status).toBe(404);
    }
  });

  it("refuses any link on the way when told to (a build context's members)", () => {
    expect(() => resolveInRoot(root, "/abs/passwd", { symlinks: "refuse" })).toThrow("/abs is a symbolic link");
    expect(resolveInRoot(root, "/etc/passwd", { symlinks: "refuse" })).toBe(`${root}/etc/passwd`);
  });

  it("makes missing directories inside the root, with the owner given, never through a link outside", () => {
    const me = { uid: process.getuid!(), gid: process.getgid!() };
    const made = resolveInRoot(root, "/abs-host/new/deeper", { missing: "mkdir", owner: me });
    expect(made).toBe(path.join(root, host, "etc/new/deeper"));
    expect(fs.statSync(made).isDirectory()).toBe(true);
    expect(fs.statSync(made).uid).toBe(me.uid);
    expect(fs.existsSync(`${host}/etc/new`)).toBe(false);
    expect(fs.readdirSync(`${host}/etc`)).toEqual(["passwd"]);
    expect(() => resolveInRoot(root, "/etc/passwd/sub", { missing: "mkdir" })).toThrow("not a directory");
  });
});
