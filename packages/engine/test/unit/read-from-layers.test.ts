/**
 * readFromLayers (snapshots/overlay.ts): a fresh container's /etc/passwd and /etc/group read
 * straight from its image layers, so the shim can mount the overlay later without a `mount`
 * process. Checked against overlayfs's rules: the topmost layer wins, a whiteout or an opaque
 * directory hides what is below, and whatever the layers alone cannot settle (a symlink on the
 * way, a container with changes of its own) is left to the kernel (undefined).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setAttributeSync } from "fs-xattr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFromLayers, type Snapshot } from "../../src/snapshots/overlay";

let base: string;
const snap = (lower: string[], upper = "upper"): Snapshot => ({ lower: lower.map((l) => path.join(base, l)), upper: path.join(base, upper), work: path.join(base, "work"), merged: path.join(base, "merged") });
const write = (rel: string, text: string) => {
  fs.mkdirSync(path.dirname(path.join(base, rel)), { recursive: true });
  fs.writeFileSync(path.join(base, rel), text);
};
const root = process.getuid?.() === 0;

beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), "berth-layers-"));
  for (const d of ["upper", "changed", "work", "merged"]) fs.mkdirSync(path.join(base, d));
  write("changed/etc/passwd", "mine\n");
  write("base/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  write("base/etc/group", "root:x:0:\n");
  write("top/etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n");
  fs.mkdirSync(path.join(base, "linked/etc"), { recursive: true });
  fs.symlinkSync("/etc/passwd", path.join(base, "linked/etc/passwd")); // would mean the container's own /etc/passwd
  fs.mkdirSync(path.join(base, "usrmerge"), { recursive: true });
  fs.symlinkSync("usr/etc", path.join(base, "usrmerge/etc"));
  write("filed/etc", "a file where a directory was\n");
  write("opaque/etc/hostname", "x\n");
  setAttributeSync(path.join(base, "opaque/etc"), "user.overlay.opaque", "y");
  if (root) {
    fs.mkdirSync(path.join(base, "whiteout/etc"), { recursive: true });
    fs.mkdirSync(path.join(base, "whiteout-dir"), { recursive: true });
    // An overlayfs whiteout is a character device 0/0; Node cannot make one, mknod(1) can.
    execFileSync("mknod", [path.join(base, "whiteout/etc/passwd"), "c", "0", "0"]);
    execFileSync("mknod", [path.join(base, "whiteout-dir/etc"), "c", "0", "0"]);
  }
});

afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

describe("readFromLayers", () => {
  it("reads the topmost layer that has the file, and says null when none has it", () => {
    expect(readFromLayers(snap(["top", "base"]), "etc/passwd")).toContain("app:x:1000");
    expect(readFromLayers(snap(["top", "base"]), "etc/group")).toBe("root:x:0:\n"); // only below
    expect(readFromLayers(snap(["base"]), "etc/passwd")).toBe("root:x:0:0:root:/root:/bin/sh\n");
    expect(readFromLayers(snap(["top", "base"]), "etc/shadow")).toBeNull();
    expect(readFromLayers(snap([]), "etc/passwd")).toBeNull();
  });

  it("leaves symlinks and a container's own changes to the kernel", () => {
    expect(readFromLayers(snap(["linked", "base"]), "etc/passwd")).toBeUndefined();
    expect(readFromLayers(snap(["usrmerge", "base"]), "etc/passwd")).toBeUndefined();
    expect(readFromLayers(snap(["base"], "changed"), "etc/passwd")).toBeUndefined();
  });

  it("a file in a higher layer hides a directory of the same name below", () => {
    expect(readFromLayers(snap(["filed", "base"]), "etc/passwd")).toBeNull();
  });

  it("an opaque directory hides what the layers below have in it", () => {
    expect(readFromLayers(snap(["opaque", "base"]), "etc/passwd")).toBeNull();
    expect(readFromLayers(snap(["top", "opaque", "base"]), "etc/passwd")).toContain("app:x:1000"); // above it: seen
  });

  it.skipIf(!root)("a whiteout (0/0 character device) deletes the file, or the directory, below it", () => {
    expect(readFromLayers(snap(["whiteout", "base"]), "etc/passwd")).toBeNull();
    expect(readFromLayers(snap(["whiteout", "base"]), "etc/group")).toBe("root:x:0:\n");
    expect(readFromLayers(snap(["whiteout-dir", "base"]), "etc/group")).toBeNull();
    expect(readFromLayers(snap(["top", "whiteout", "base"]), "etc/passwd")).toContain("app:x:1000");
  });
});
